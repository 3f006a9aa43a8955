from __future__ import annotations

from array import array

import pytest

from pytest_carbon.meter.attribute import (
    J_PER_KWH,
    Pricer,
    Rates,
    energy_of,
    method_of,
    outcome_of,
    unattributed,
)
from pytest_carbon.meter.spans import PHASE_NAMES, UNKNOWN, SpanTable
from pytest_carbon.report.model import Energy, PowerModel, TestRecord


def spans(
    rows: list[tuple[str, str, float, float, float | None, float | None]],
    worker: str | None = None,
) -> SpanTable:
    """A span table from ``(nodeid, phase, wall s, cpu s, rapl J, gpu J)`` rows."""
    clock: array[int] = array("q")
    energy: array[int] = array("q")
    at = 0
    for _, _, wall, cpu, rapl, gpu in rows:
        clock.extend((at, 0, at + round(wall * 1e9), round(cpu * 1e9)))
        energy.extend(
            (
                UNKNOWN if rapl is None else 0,
                UNKNOWN if rapl is None else round(rapl * 1e6),
                UNKNOWN if gpu is None else 0,
                UNKNOWN if gpu is None else round(gpu * 1e3),
            )
        )
        at += round(wall * 1e9)
    has_energy = any(row[4] is not None or row[5] is not None for row in rows)
    return SpanTable(
        worker=worker,
        nodeids=[row[0] for row in rows],
        phases=bytes(PHASE_NAMES.index(row[1]) for row in rows),
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
