"""What a finished session adds to its report and writes: comparisons, limits, the report files.

:func:`judge` prices the report on other grids, compares it with a baseline and checks budgets and
limits; :func:`planned_files` lists the files to write atomically; the job summary is appended.
Nothing here raises for bad input: problems become one-line errors and the session still reports.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_carbon.errors import CarbonError
from pytest_carbon.options import Settings
from pytest_carbon.report.budget import BudgetResults, apply_budgets, emissions_failure
from pytest_carbon.report.compare import (
    BaselineDiff,
    RegionFigure,
    baseline_lines,
    compare_baseline,
    compare_regions,
    regions_lines,
    regression_failure,
)
from pytest_carbon.report.io import OutputError
from pytest_carbon.report.model import SessionReport, load_report

#: pytest's exit status when tests failed; a limit the user set turns a passing session into it.
TESTS_FAILED = 1


@dataclass
class Verdict:
    """Comparisons and limit verdicts of one report."""

    regions: list[RegionFigure] = field(default_factory=list)
    diff: BaselineDiff | None = None
    budgets: BudgetResults = field(default_factory=BudgetResults)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def judge(
    report: SessionReport, settings: Settings, budgets: Mapping[str, Mapping[str, Any]]
) -> Verdict:
    """Compare and check ``report``; a failed limit sets its exit status to failed."""
    verdict = Verdict(regions=compare_regions(report.energy_kwh, settings.compare_regions))
    if settings.baseline_path:
        try:
            baseline = load_report(settings.baseline_path)
        except CarbonError as exc:
            verdict.errors.append(f"baseline not compared: {exc}")
        else:
            verdict.diff = compare_baseline(report, baseline, settings.baseline_path)
    verdict.budgets = apply_budgets(report, budgets)
    verdict.failures += verdict.budgets.late
    if settings.max_emissions is not None:
        failure = emissions_failure(report, settings.max_emissions)
        if failure:
            verdict.failures.append(failure)
    if verdict.diff is not None and settings.fail_on_regression is not None:
        failure = regression_failure(verdict.diff, settings.fail_on_regression)
        if failure:
            verdict.failures.append(failure)
    if verdict.failures and report.exit_status == 0:
        report.exit_status = TESTS_FAILED
    return verdict


def verdict_lines(report: SessionReport, verdict: Verdict | None) -> list[str]:
    """Terminal lines after the report: other grids, the baseline, budget notes."""
    if verdict is None:
        return []
    lines = regions_lines(report, verdict.regions)
    if verdict.diff is not None:
        lines += baseline_lines(verdict.diff)
    lines += [f"note: {line}" for line in verdict.budgets.cleared]
    return lines


def planned_files(
    report: SessionReport, settings: Settings, verdict: Verdict
) -> list[tuple[str, Callable[[], str]]]:
    """``(path, render)`` of every report file the settings ask for, replaced atomically.

    Each renderer is imported only when its file is asked for: the end of a session that writes
    no file imports none of them.
    """
    files: list[tuple[str, Callable[[], str]]] = []
    if settings.pr_comment_path:
        from pytest_carbon.report.markdown import render_pr_comment

        files.append(
            (
                settings.pr_comment_path,
                lambda: render_pr_comment(report, diff=verdict.diff, failures=verdict.failures),
            )
        )
    if settings.csv_path:
        from pytest_carbon.report.csvfile import render_csv

        files.append((settings.csv_path, lambda: render_csv(report)))
    if settings.gitlab_metrics_path:
        from pytest_carbon.report.gitlab import render_metrics

        files.append((settings.gitlab_metrics_path, lambda: render_metrics(report)))
    if settings.html_path:
        from pytest_carbon.report.html import render_html

        files.append(
            (
                settings.html_path,
                lambda: render_html(
                    report,
                    top=settings.top,
                    regions=verdict.regions,
                    diff=verdict.diff,
                    failures=verdict.failures,
                ),
            )
        )
    return files


def summary_text(report: SessionReport, settings: Settings, verdict: Verdict) -> str:
    """The job summary markdown."""
    from pytest_carbon.report.markdown import render_summary

    return render_summary(
        report,
        top=settings.top,
        regions=verdict.regions,
        diff=verdict.diff,
        failures=verdict.failures,
    )


def append_text(path: str, text: str) -> None:
    """Append ``text`` with one write call (GitHub's job summary is shared by a job's steps)."""
    try:
        with Path(path).open("a", encoding="utf-8", newline="\n") as handle:
            handle.write(text if text.endswith("\n") else text + "\n")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise OutputError(
            f"{path}: cannot append the job summary ({reason}). Fix: choose a writable path "
            "with --carbon-summary, or --carbon-summary=none."
        ) from None
