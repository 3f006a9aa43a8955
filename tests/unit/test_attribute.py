from __future__ import annotations

from array import array

import pytest

from pytest_carbon.meter.attribute import (
    J_PER_KWH,
    Pricer,
    Rates,
    energy_of,
    is_regular,
    method_of,
    outcome_of,
    unattributed,
)
from pytest_carbon.meter.spans import END, PHASE_NAMES, UNKNOWN, SpanTable
from pytest_carbon.report.model import Energy, PhaseRecord, PowerModel, TestRecord


def spans(
    rows: list[tuple[str, str, float, float, float | None, float | None]],
    worker: str | None = None,
) -> SpanTable:
    """A span table from ``(nodeid, phase, wall s, cpu s, rapl J, gpu J)`` rows.

    Without energy, the phases of a test that follow each other share their boundaries, as the
    recorder writes them; otherwise every row is a phase with a boundary and an END of its own.
    """
    has_energy = any(row[4] is not None or row[5] is not None for row in rows)
    nodeids: list[str | None] = []
    codes = bytearray()
    clock: array[int] = array("q")
    energy: array[int] = array("q")
    wall_at = cpu_at = 0
    for index, (nodeid, phase, wall, cpu, rapl, gpu) in enumerate(rows):
        nodeids.append(nodeid)
        codes.append(PHASE_NAMES.index(phase))
        clock.extend((wall_at, cpu_at))
        energy.extend((UNKNOWN if rapl is None else 0, UNKNOWN if gpu is None else 0))
        wall_at += round(wall * 1e9)
        cpu_at += round(cpu * 1e9)
        following = rows[index + 1] if index + 1 < len(rows) else None
        chained = (
            not has_energy
            and following is not None
            and following[0] == nodeid
            and PHASE_NAMES.index(following[1]) > PHASE_NAMES.index(phase)
        )
        if not chained:
            nodeids.append(None)
            codes.append(END)
            clock.extend((wall_at, cpu_at))
            energy.extend(
                (
                    UNKNOWN if rapl is None else round(rapl * 1e6),
                    UNKNOWN if gpu is None else round(gpu * 1e3),
                )
            )
    return SpanTable(
        worker=worker,
        nodeids=nodeids,
        codes=bytes(codes),
        clock=clock,
        energy=energy if has_energy else None,
    )


def price(
    rows: list[tuple[str, str, float, float, float | None, float | None]],
    rates: Rates,
    g: float = 100.0,
    outcomes: dict[str, str] | None = None,
    worker: str | None = None,
) -> list[TestRecord]:
    return Pricer(rates, g).tests([spans(rows, worker)], outcomes or {})


def joules(energy: Energy) -> float:
    return energy.total_kwh * J_PER_KWH


def test_rates_split_power_into_active_and_idle(power: PowerModel) -> None:
    rates = Rates.from_model(power)
    assert rates.cpu_active_w == pytest.approx(3.6)  # 90 % of 4 W per busy vCPU
    assert rates.cpu_base_w == pytest.approx(0.8)  # 10 % of 8 W for the 2 vCPUs
    assert rates.ram_w == 20.0


def test_cpu_bound_test_costs_more_than_sleeping_test_of_same_wall(power: PowerModel) -> None:
    rates = Rates.from_model(power)
    busy = energy_of([1.0, 1.0, None, None], rates)
    asleep = energy_of([1.0, 0.0, None, None], rates)
    assert busy.cpu_kwh > asleep.cpu_kwh
    assert busy.ram_kwh == asleep.ram_kwh
    assert joules(busy) - joules(asleep) == pytest.approx(3.6)


def test_cpu_energy_is_linear_in_cpu_time(power: PowerModel) -> None:
    rates = Rates.from_model(power)
    base = energy_of([2.0, 0.0, None, None], rates).cpu_kwh
    once = energy_of([2.0, 0.5, None, None], rates).cpu_kwh - base
    twice = energy_of([2.0, 1.0, None, None], rates).cpu_kwh - base
    assert twice == pytest.approx(2 * once, rel=1e-9)


def test_share_divides_machine_level_power_but_not_own_cpu(power: PowerModel) -> None:
    rates = Rates.from_model(power)
    alone = energy_of([1.0, 0.5, None, None], rates, share=1.0)
    half = energy_of([1.0, 0.5, None, None], rates, share=0.5)
    assert half.ram_kwh == pytest.approx(alone.ram_kwh / 2)
    own_cpu = 3.6 * 0.5 / J_PER_KWH
    assert half.cpu_kwh - own_cpu == pytest.approx((alone.cpu_kwh - own_cpu) / 2)


def test_measured_counters_replace_the_model(power: PowerModel) -> None:
    rates = Rates.from_model(power)
    energy = energy_of([1.0, 0.9, 12.0, 30.0], rates)
    assert energy.cpu_kwh * J_PER_KWH == pytest.approx(12.0)
    assert energy.gpu_kwh * J_PER_KWH == pytest.approx(30.0)
    assert method_of([1.0, 0.9, 12.0, 30.0]) == "rapl+nvml"
    assert method_of([1.0, 0.9, None, None]) == "cpu-time-model"


def test_pue_scales_every_component(power: PowerModel) -> None:
    power.pue = 1.5
    plain = energy_of(
        [1.0, 1.0, None, 2.0], Rates.from_model(PowerModel(**{**vars(power), "pue": 1.0}))
    )
    scaled = energy_of([1.0, 1.0, None, 2.0], Rates.from_model(power))
    assert scaled.total_kwh == pytest.approx(1.5 * plain.total_kwh)


def test_tests_plus_unattributed_equal_session(power: PowerModel) -> None:
    rates = Rates.from_model(power)
    rows: list[tuple[str, str, float, float, float | None, float | None]] = []
    for i in range(1, 6):
        rows.append((f"t.py::test_{i}", "setup", 0.01, 0.005, None, None))
        rows.append((f"t.py::test_{i}", "call", 0.2 * i, 0.1 * i, None, None))
        rows.append((f"t.py::test_{i}", "teardown", 0.001, 0.001, None, None))
    tests = price(rows, rates)
    assert len(tests) == 5
    session = energy_of([10.0, 4.0, None, None], rates)
    rest, overshoot = unattributed(session, tests)
    total = sum(t.energy_kwh for t in tests) + rest.total_kwh
    assert total == pytest.approx(session.total_kwh, rel=0.01)
    assert overshoot == 0.0
    assert rest.total_kwh > 0


def test_overshoot_is_clamped_and_reported(power: PowerModel) -> None:
    rates = Rates.from_model(power)
    (test,) = price([("a", "call", 5.0, 5.0, None, None)], rates, g=1.0)
    rest, overshoot = unattributed(energy_of([1.0, 1.0, None, None], rates), [test])
    assert rest.total_kwh == 0.0
    assert overshoot > 0


def test_pricer_prices_emissions_and_keeps_phases(power: PowerModel) -> None:
    rates = Rates.from_model(power)
    (record,) = price(
        [
            ("pkg/test_x.py::test_a", "setup", 0.1, 0.0, None, None),
            ("pkg/test_x.py::test_a", "call", 1.0, 1.0, None, None),
        ],
        rates,
        g=400.0,
        outcomes={"pkg/test_x.py::test_a": "failed"},
        worker="gw1",
    )
    assert record.path == "pkg/test_x.py"
    assert record.worker == "gw1"
    assert record.outcome == "failed"
    assert record.method == "cpu-time-model"
    assert set(record.phases) == {"setup", "call"}
    assert record.phases["call"].wall_s == pytest.approx(1.0)
    assert record.phases["call"].cpu_s == pytest.approx(1.0)
    assert record.emissions_g == pytest.approx(record.energy_kwh * 400.0)
    assert record.phases["call"].energy_kwh > record.phases["setup"].energy_kwh
    expected = energy_of([1.0, 1.0, None, None], rates)
    assert record.phases["call"].energy.cpu_kwh == pytest.approx(expected.cpu_kwh)
    assert record.phases["call"].energy.ram_kwh == pytest.approx(expected.ram_kwh)


def test_pricer_sums_a_phase_run_twice_and_keeps_test_order(power: PowerModel) -> None:
    rates = Rates.from_model(power)
    tests = price(
        [
            ("b.py::t", "setup", 0.1, 0.1, None, None),
            ("b.py::t", "call", 0.5, 0.2, None, None),
            ("b.py::t", "call", 0.5, 0.3, None, None),  # a rerun
            ("a.py::t", "call", 0.1, 0.1, None, None),
        ],
        rates,
    )
    assert [t.nodeid for t in tests] == ["b.py::t", "a.py::t"]
    assert tests[0].phases["call"].wall_s == pytest.approx(1.0)
    assert tests[0].phases["call"].cpu_s == pytest.approx(0.5)
    assert tests[1].outcome == "unknown"  # no report arrived for it


@pytest.mark.parametrize("share", [1.0, 0.5])
def test_pricer_gives_each_phase_the_figures_of_a_phase_priced_alone(
    power: PowerModel, share: float
) -> None:
    """The pricing loop computes the model inline; it must agree to the last digit."""
    pricer = Pricer(Rates.from_model(power), 475.0, share)
    rows: list[tuple[str, str, float, float, float | None, float | None]] = [
        ("t.py::a", "setup", 0.013, 0.007, None, None),
        ("t.py::a", "call", 1.7, 0.9, None, None),
        ("t.py::a", "call", 0.3, 0.2, None, None),
        ("t.py::a", "teardown", 0.0021, 0.0, None, None),
        ("t.py::b", "call", 2e-6, 1e-6, None, None),
    ]
    table = spans(rows)
    (a, b) = pricer.tests([table], {})
    deltas = list(table.deltas())
    expected = {
        "setup": pricer.phase(*deltas[0][2:]),
        "call": merged(pricer.phase(*deltas[1][2:]), pricer.phase(*deltas[2][2:])),
        "teardown": pricer.phase(*deltas[3][2:]),
    }
    assert a.phases == expected
    assert b.phases == {"call": pricer.phase(*deltas[4][2:])}
    assert a.path == "t.py"
    assert a.emissions_g == sum(phase.emissions_g for phase in expected.values())


@pytest.mark.parametrize("share", [1.0, 0.25])
def test_tests_of_one_run_each_are_priced_column_by_column_to_the_same_figures(
    power: PowerModel, share: float
) -> None:
    pricer = Pricer(Rates.from_model(power), 56.0, share)
    rows: list[tuple[str, str, float, float, float | None, float | None]] = []
    for index in range(50):
        for phase, scale in (("setup", 0.001), ("call", 0.37), ("teardown", 0.0002)):
            wall = scale * (index + 1) ** 1.5
            rows.append((f"pkg/t{index % 7}.py::test_{index}", phase, wall, wall / 3, None, None))
    first, second = spans(rows[:60], worker="gw0"), spans(rows[60:], worker="gw1")
    assert is_regular(first)
    assert is_regular(second)
    outcomes = {"pkg/t0.py::test_0": "failed"}
    fast = pricer.tests([first, second], outcomes)
    slow = pricer._price_any([first, second], outcomes)
    assert fast == slow
    for a, b in zip(fast, slow, strict=True):
        # the fast path prices a test's whole span at once: its sums agree up to rounding
        assert a.totals() == pytest.approx(b.totals(), rel=1e-12, abs=1e-30)
        assert a.worker == b.worker
    deltas = list(first.deltas())
    assert fast[0].phases["call"] == pricer.phase(*deltas[1][2:])
    assert fast[0].outcome == "failed"
    assert fast[1].outcome == "unknown"
    assert [test.nodeid for test in fast] == [f"pkg/t{i % 7}.py::test_{i}" for i in range(50)]


def test_only_tables_of_one_run_per_test_and_no_counter_are_regular() -> None:
    once = [("a", phase, 1.0, 0.5, None, None) for phase in PHASE_NAMES]
    assert is_regular(spans(once))
    assert is_regular(spans([]))
    assert not is_regular(spans([*once, ("a", "call", 1.0, 0.5, None, None)]))  # a rerun
    assert not is_regular(spans([("a", "setup", 1.0, 0.5, None, None)]))  # a phase missing
    assert not is_regular(spans([("a", p, 1.0, 0.5, 3.0, None) for p in PHASE_NAMES]))  # RAPL
    mixed = [("a", "setup", 1.0, 0.5, None, None), ("b", "call", 1.0, 0.5, None, None)]
    assert not is_regular(spans([*mixed, ("a", "teardown", 1.0, 0.5, None, None)]))


def test_a_test_in_two_tables_is_priced_once(power: PowerModel) -> None:
    """Two regular tables with the same test (never from xdist, but possible): summed."""
    pricer = Pricer(Rates.from_model(power), 100.0)
    once = [("a", phase, 1.0, 0.5, None, None) for phase in PHASE_NAMES]
    (test,) = pricer.tests([spans(once), spans(once)], {})
    assert test.wall_s == pytest.approx(6.0)


def merged(a: PhaseRecord, b: PhaseRecord) -> PhaseRecord:
    return PhaseRecord(
        a.wall_s + b.wall_s, a.cpu_s + b.cpu_s, a.energy + b.energy, a.emissions_g + b.emissions_g
    )


def test_pricer_uses_measured_joules_and_names_the_methods(power: PowerModel) -> None:
    rates = Rates.from_model(power)
    (test,) = price(
        [
            ("t.py::a", "setup", 1.0, 1.0, None, None),  # RAPL unreadable for this span
            ("t.py::a", "call", 1.0, 1.0, 12.0, 30.0),
        ],
        rates,
    )
    assert test.method == "cpu-time-model+rapl+nvml"
    assert test.phases["call"].energy.cpu_kwh * J_PER_KWH == pytest.approx(12.0)
    assert test.phases["call"].energy.gpu_kwh * J_PER_KWH == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("reports", "expected"),
    [
        (
            [("setup", "passed", False), ("call", "passed", False), ("teardown", "passed", False)],
            "passed",
        ),
        (
            [("setup", "passed", False), ("call", "failed", False), ("teardown", "passed", False)],
            "failed",
        ),
        ([("setup", "failed", False), ("teardown", "passed", False)], "error"),
        (
            [("setup", "passed", False), ("call", "passed", False), ("teardown", "failed", False)],
            "error",
        ),
        ([("setup", "skipped", False), ("teardown", "passed", False)], "skipped"),
        (
            [("setup", "passed", False), ("call", "skipped", True), ("teardown", "passed", False)],
            "xfailed",
        ),
        (
            [("setup", "passed", False), ("call", "passed", True), ("teardown", "passed", False)],
            "xpassed",
        ),
        ([("setup", "skipped", True)], "xfailed"),
    ],
)
def test_outcome_of_phase_reports(reports: list[tuple[str, str, bool]], expected: str) -> None:
    assert outcome_of(reports) == expected


def test_regular_tests_among_others_are_priced_to_the_same_figures_in_order(
    power: PowerModel,
) -> None:
    """A skipped test (setup and teardown only) among regular ones: the regular runs are still
    priced column by column, and every record matches the general path, in the order run."""
    pricer = Pricer(Rates.from_model(power), 56.0, 0.5)
    rows: list[tuple[str, str, float, float, float | None, float | None]] = []
    for index in range(9):
        phases = ("setup", "teardown") if index in (0, 4, 5) else PHASE_NAMES
        for phase in phases:
            rows.append(
                (f"t{index % 2}.py::test_{index}", phase, 0.01 * (index + 1), 0.004, None, None)
            )
    table = spans(rows)
    assert not is_regular(table)
    # an interrupted test: its setup ended, its call never did
    table = SpanTable(
        None,
        [*table.nodeids, "t.py::cut", "t.py::cut"],
        table.codes + bytes([0, 1]),
        table.clock + array("q", [10**10, 10**9, 2 * 10**10, 2 * 10**9]),
    )
    fast = pricer.tests([table], {"t0.py::test_4": "skipped"})
    slow = pricer._price_any([table], {"t0.py::test_4": "skipped"})
    assert [t.nodeid for t in fast] == [*(f"t{i % 2}.py::test_{i}" for i in range(9)), "t.py::cut"]
    assert fast == slow
    for a, b in zip(fast, slow, strict=True):
        assert a.totals() == pytest.approx(b.totals(), rel=1e-12, abs=1e-30)
    assert fast[4].outcome == "skipped"
    assert set(fast[4].phases) == {"setup", "teardown"}
    assert set(fast[9].phases) == {"setup"}
