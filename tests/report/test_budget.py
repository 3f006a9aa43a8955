"""Test budgets, their run-time gate and the final check, and the session emissions limit."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from carbon_factory import make_report
from pytest_carbon.meter.counters import usable_vcpus
from pytest_carbon.options import Settings
from pytest_carbon.report.budget import (
    REPORT_ATTRIBUTE,
    BudgetError,
    BudgetGate,
    RuntimePricer,
    apply_budgets,
    budget_from_marker,
    emissions_failure,
    over_budget,
    spent_by,
)


def test_budget_from_marker_reads_keyword_limits() -> None:
    assert budget_from_marker((), {"energy_kwh": 1e-6, "emissions_g": 2}) == {
        "energy_kwh": 1e-6,
        "emissions_g": 2.0,
    }
    assert budget_from_marker((), {"energy_kwh": 1, "emissions_g": None}) == {"energy_kwh": 1.0}


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((1e-6,), {}, "keyword arguments only"),
        ((), {"energy": 1}, "unknown limit 'energy'"),
        ((), {"energy_kwh": -1}, "must be a number ≥ 0"),
        ((), {"energy_kwh": True}, "must be a number ≥ 0"),
        ((), {"emissions_g": "1"}, "must be a number ≥ 0"),
        ((), {}, "no limit given"),
    ],
)
def test_bad_markers_name_the_fix(
    args: tuple[Any, ...], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(BudgetError, match=message) as info:
        budget_from_marker(args, kwargs)
    assert "@pytest.mark.carbon_budget(" in str(info.value) or "≥ 0" in str(info.value)


def test_over_budget_names_spent_limit_and_option() -> None:
    assert over_budget({"energy_kwh": 2 / 3.6e6}, 3.2 / 3.6e6, 0.0) == (
        "carbon budget exceeded: 3.2 J > 2 J (energy_kwh=5.55556e-07)"
    )
    message = over_budget({"energy_kwh": 1.0, "emissions_g": 0.001}, 0.5, 0.002)
    assert message == "carbon budget exceeded: 2 mg CO2e > 1 mg CO2e (emissions_g=0.001)"
    assert over_budget({"energy_kwh": 1.0}, 1.0, 5.0) is None


def test_over_budget_shows_more_digits_when_rounding_hides_the_excess() -> None:
    message = over_budget({"energy_kwh": 1e-6}, 1.0001e-6, 0.0)
    assert message is not None
    assert "1.0001e-06 kWh > 1e-06 kWh" in message


def raw_phases(wall: float, cpu: float) -> dict[str, list[Any]]:
    return {
        "setup": [wall, cpu, None, None],
        "call": [wall, cpu, None, None],
        "teardown": [100.0, 100.0, None, None],  # not covered by a budget
    }


def test_runtime_pricer_follows_the_cpu_time_model_with_overrides() -> None:
    watts, ram = 40.0, 6.0
    settings = Settings(cpu_watts=watts, ram_watts=ram, intensity=300.0)
    energy, grams = RuntimePricer(settings, (), share=0.5).price(raw_phases(2.0, 1.0))
    vcpus = usable_vcpus()[0]
    active = 0.9 * watts / vcpus  # codecarbon's 10 % idle floor, the rest per busy vCPU
    per_phase_j = active * 1.0 + 0.1 * watts * 2.0 * 0.5 + ram * 2.0 * 0.5
    assert energy == pytest.approx(2 * per_phase_j / 3.6e6)
    assert grams == pytest.approx(energy * 300.0)


def fake_report(outcome: str = "passed", **extra: Any) -> SimpleNamespace:
    report = SimpleNamespace(outcome=outcome, longrepr=None, passed=outcome == "passed")
    for name, value in extra.items():
        setattr(report, name, value)
    return report


def marker(**kwargs: Any) -> SimpleNamespace:
    return SimpleNamespace(args=(), kwargs=kwargs)


def test_runtime_pricing_uses_codecarbons_cached_detection_when_there_is_one() -> None:
    settings = Settings(intensity=100.0)
    fallback = RuntimePricer(settings, ()).price(raw_phases(1.0, 0.0))[0]
    detected = {"cpu_model": "X", "cpu_tdp_w": None, "ram_watts": 50.0}
    with_cache = RuntimePricer(settings, (), hardware=detected).price(raw_phases(1.0, 0.0))[0]
    cpu_only = RuntimePricer(Settings(intensity=100.0, ram_watts=0.0), ()).price(
        raw_phases(1.0, 0.0)
    )[0]
    # two phases of one second each: the detected 50 W of RAM replace the fallback figure
    assert with_cache - cpu_only == pytest.approx(2 * 50.0 / 3.6e6)
    assert with_cache != pytest.approx(fallback)


@pytest.fixture
def gate() -> BudgetGate:
    return BudgetGate(RuntimePricer(Settings(cpu_watts=8.0, ram_watts=4.0, intensity=100.0), ()))


def test_gate_fails_a_passing_test_over_budget(gate: BudgetGate) -> None:
    report = fake_report()
    gate.check(marker(energy_kwh=1e-15), report, raw_phases(0.1, 0.1))
    assert report.outcome == "failed"
    assert str(report.longrepr).startswith("carbon budget exceeded: ")
    assert "(energy_kwh=1e-15)" in str(report.longrepr)
    assert getattr(report, REPORT_ATTRIBUTE) == {"limits": {"energy_kwh": 1e-15}, "exceeded": True}


def test_gate_keeps_tests_within_budget_and_other_outcomes(gate: BudgetGate) -> None:
    within = fake_report()
    gate.check(marker(energy_kwh=1.0), within, raw_phases(0.1, 0.1))
    assert (within.outcome, within.longrepr) == ("passed", None)
    assert getattr(within, REPORT_ATTRIBUTE)["exceeded"] is False

    failed = fake_report("failed", longrepr="assert 1 == 2")
    gate.check(marker(energy_kwh=1e-15), failed, raw_phases(0.1, 0.1))
    assert failed.longrepr == "assert 1 == 2"
    assert getattr(failed, REPORT_ATTRIBUTE)["exceeded"] is True

    xpassed = fake_report(wasxfail="")
    gate.check(marker(energy_kwh=1e-15), xpassed, raw_phases(0.1, 0.1))
    assert xpassed.outcome == "passed"

    unmarked = fake_report()
    gate.check(None, unmarked, raw_phases(0.1, 0.1))
    assert not hasattr(unmarked, REPORT_ATTRIBUTE)


def test_gate_fails_a_test_with_an_invalid_budget(gate: BudgetGate) -> None:
    report = fake_report()
    gate.check(SimpleNamespace(args=(1,), kwargs={}), report, {})
    assert report.outcome == "failed"
    assert str(report.longrepr).startswith("invalid carbon budget: ")


def test_final_check_uses_the_report_figures() -> None:
    report = make_report()
    first, second, third = report.tests[:3]
    spent_first = spent_by(first)[0]
    budgets = {
        first.nodeid: {"limits": {"energy_kwh": spent_first / 2}, "exceeded": False},
        second.nodeid: {"limits": {"energy_kwh": 1.0}, "exceeded": True},
        third.nodeid: {"limits": {"emissions_g": 0.0}, "exceeded": True},
    }
    results = apply_budgets(report, budgets)
    assert first.budget_exceeded
    assert first.budget == {"energy_kwh": spent_first / 2}
    assert not second.budget_exceeded
    assert third.budget_exceeded
    assert [line.split(": carbon")[0] for line in results.exceeded] == [
        first.nodeid,
        third.nodeid,
    ]
    assert results.late == [
        f"{first.nodeid}: {over_budget(first.budget, *spent_by(first))} "
        "(by the report's final figures)"
    ]
    assert results.cleared[0].startswith(f"{second.nodeid}: over its carbon budget at run time")
    assert report.tests[3].budget is None


def test_budget_covers_setup_and_call_only() -> None:
    test = make_report().tests[1]  # has a teardown phase
    energy, grams = spent_by(test)
    assert energy == pytest.approx(test.phases["call"].energy_kwh)
    assert energy < test.energy_kwh
    assert grams == pytest.approx(test.phases["call"].emissions_g)


def test_emissions_limit() -> None:
    report = make_report()
    failure = emissions_failure(report, report.emissions_g / 2)
    assert failure is not None
    assert failure.startswith("carbon limit exceeded: the session emitted ")
    assert failure.endswith("limit of --carbon-max-emissions")
    assert emissions_failure(report, report.emissions_g) is None
