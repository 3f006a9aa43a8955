"""Golden files of the text views, rendered from a fixed report (``carbon_factory``).

After an intended change of a view, regenerate the files and review the diff:

    PYTEST_CARBON_REGEN_GOLDEN=1 python -m pytest tests/report/test_golden.py -p no:cacheprovider
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from carbon_factory import fixed_regions, make_report
from pytest_carbon.report.compare import compare_baseline
from pytest_carbon.report.csvfile import render_csv
from pytest_carbon.report.gitlab import render_metrics
from pytest_carbon.report.markdown import render_pr_comment, render_summary
from pytest_carbon.report.merge import merge_reports, render_merged_markdown
from pytest_carbon.report.model import SessionReport

GOLDEN = Path(__file__).parent / "golden"
REGENERATE = os.environ.get("PYTEST_CARBON_REGEN_GOLDEN") == "1"


def summary(report: SessionReport) -> str:
    baseline = make_report(nodeids=list(report_nodeids())[1:], scale=0.8)
    return render_summary(
        report,
        top=3,
        regions=fixed_regions(report.energy_kwh),
        diff=compare_baseline(report, baseline, "ci/baseline.json"),
        failures=["carbon limit exceeded: example"],
    )


def report_nodeids() -> list[str]:
    return [test.nodeid for test in make_report().tests]


def pr_comment(report: SessionReport) -> str:
    baseline = make_report(nodeids=report_nodeids()[1:], scale=0.8)
    return render_pr_comment(report, diff=compare_baseline(report, baseline, "baseline.json"))


def merged(report: SessionReport) -> str:
    other = make_report(scale=2.0)
    other.identity.job = "py310-sqlite"
    other.identity.matrix = {}
    other.identity.run_id = "43"
    return render_merged_markdown(merge_reports([("a.json", report), ("b.json", other)]), top=3)


VIEWS: dict[str, Callable[[SessionReport], str]] = {
    "summary.md": summary,
    "pr-comment.md": pr_comment,
    "pr-comment-no-baseline.md": lambda report: render_pr_comment(report, top=2),
    "merged.md": merged,
    "report.csv": render_csv,
    "metrics.txt": render_metrics,
}


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_view_matches_golden_file(name: str, report: SessionReport) -> None:
    text = VIEWS[name](report)
    path = GOLDEN / name
    if REGENERATE:
        path.write_text(text, encoding="utf-8", newline="\n")
        pytest.skip(f"regenerated {name}")
    assert text == path.read_text(encoding="utf-8")
