"""What-if grids and the baseline comparison."""

from __future__ import annotations

import pytest

from carbon_factory import make_report
from pytest_carbon.meter.intensity import cloud_regions, country_intensity
from pytest_carbon.report.compare import (
    DEFAULT_REGIONS,
    UnknownRegionError,
    baseline_lines,
    compare_baseline,
    compare_regions,
    percent,
    region_keys,
    regions_lines,
    regression_failure,
    resolve_region,
)


def test_country_region_uses_codecarbon_country_data() -> None:
    region = resolve_region(" fra ")
    expected = country_intensity("FRA")
    assert (region.key, region.label, region.g_per_kwh) == (
        "FRA",
        expected.country_name,
        expected.g_per_kwh,
    )
    assert region.source == expected.source


def test_cloud_region_and_greenest_come_from_codecarbon_cloud_data() -> None:
    regions = cloud_regions()
    some = regions[len(regions) // 2]
    region = resolve_region(f"{some.provider.upper()}:{some.region}")
    assert region.key == f"{some.provider}:{some.region}"
    assert region.g_per_kwh == some.g_per_kwh
    greenest = resolve_region("Greenest")
    assert greenest.g_per_kwh == min(r.g_per_kwh for r in regions)
    assert greenest.key == "greenest"


@pytest.mark.parametrize("key", ["ZZZ", "gcp:nowhere-1", "nowhere:us-central1", ""])
def test_unknown_regions_are_refused(key: str) -> None:
    with pytest.raises(UnknownRegionError, match="unknown"):
        resolve_region(key)


def test_region_keys_accept_lists_and_commas_and_none() -> None:
    assert region_keys("fra, SWE,FRA") == ("FRA", "SWE")
    assert region_keys(["FRA,DEU", "greenest"]) == ("FRA", "DEU", "greenest")
    assert region_keys("None") == ()
    with pytest.raises(UnknownRegionError):
        region_keys("FRA,XX")


def test_default_regions_all_resolve() -> None:
    assert len(region_keys(list(DEFAULT_REGIONS))) == len(DEFAULT_REGIONS)


def test_compare_regions_prices_the_same_energy_greenest_first() -> None:
    figures = compare_regions(2e-3, ["IND", "FRA", "fra", "XX", "gcp:europe-west9"])
    assert [f.region.key for f in figures] == sorted(
        ["IND", "FRA", "gcp:europe-west9"], key=lambda k: resolve_region(k).g_per_kwh
    )
    for figure in figures:
        assert figure.emissions_g == pytest.approx(2e-3 * figure.region.g_per_kwh)
    assert figures[0].ratio_to(0.0) is None


def test_regions_lines_show_ratio_to_this_run() -> None:
    report = make_report()
    figures = compare_regions(report.energy_kwh, ["FRA"])
    lines = regions_lines(report, figures)
    ratio = figures[0].emissions_g / report.emissions_g
    assert lines[0].startswith("What if elsewhere (same ")
    assert lines[1].rstrip().endswith(f"×{ratio:.2g}")
    assert regions_lines(report, []) == []


def test_baseline_diff_matches_tests_by_node_id() -> None:
    report = make_report()
    nodeids = [t.nodeid for t in report.tests]
    baseline = make_report(nodeids=nodeids[1:], scale=0.5)
    baseline.tests.append(make_report(nodeids=nodeids[:1]).tests[0])
    baseline.tests[-1].nodeid = "tests/test_gone.py::test_old"
    diff = compare_baseline(report, baseline, "some/where/old.json")
    assert diff.baseline == "old.json"
    assert diff.added == (nodeids[0],)
    assert diff.removed == ("tests/test_gone.py::test_old",)
    assert len(diff.changes) == len(nodeids) - 1
    assert diff.common_change_pct == pytest.approx(100.0)  # every common test doubled
    assert diff.total_change_pct == pytest.approx(
        (report.energy_kwh - baseline.energy_kwh) / baseline.energy_kwh * 100
    )
    biggest = diff.biggest(2)
    assert [c.nodeid for c in biggest] == [
        c.nodeid for c in sorted(diff.changes, key=lambda c: -abs(c.delta_kwh))[:2]
    ]


def test_unchanged_tests_are_not_listed_as_movers() -> None:
    report = make_report()
    diff = compare_baseline(report, make_report(), "same.json")
    assert diff.biggest(5) == []
    assert diff.common_change_pct == 0.0


def test_regression_limit() -> None:
    report = make_report()
    diff = compare_baseline(report, make_report(scale=0.8), "old.json")  # +25 %
    failure = regression_failure(diff, 20.0)
    assert failure is not None
    assert "+25.0% energy" in failure
    assert "over the 20% limit of --carbon-fail-on-regression" in failure
    assert regression_failure(diff, 25.5) is None
    assert regression_failure(compare_baseline(report, make_report(scale=0.0), "z.json"), 0) is None


def test_percent_needs_a_positive_base() -> None:
    assert percent(2.0, 3.0) == pytest.approx(50.0)
    assert percent(0.0, 3.0) is None


def test_baseline_lines_summarise_the_diff() -> None:
    report = make_report()
    diff = compare_baseline(report, make_report(scale=0.5), "old.json")
    lines = baseline_lines(diff, top=2)
    assert lines[0].startswith("Against baseline old.json: session ")
    assert "(+100.0%)" in lines[1]
    assert len(lines) == 4
