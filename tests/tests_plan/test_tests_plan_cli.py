"""``pytest-carbon matrix plan-tests`` and ``matrix evaluate-tests``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from tests_plan_helpers import matrix_command as run_command
from tests_plan_helpers import write_report

from pytest_carbon.cli import build_parser, main
from pytest_carbon.errors import CarbonError
from pytest_carbon.matrix.tests_plan import load_plan

MATRIX = {
    "pg-3.11": {"db": "pg", "python": "3.11"},
    "pg-3.12": {"db": "pg", "python": "3.12"},
    "my-3.11": {"db": "my", "python": "3.11"},
    "my-3.12": {"db": "my", "python": "3.12"},
}
PURE = [f"tests/test_pure.py::test_{i}" for i in range(4)]
DB = "tests/test_db.py::test_query"


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """Six runs of a 2 x 2 matrix; in run 2 the database test fails on mysql only."""
    folder = tmp_path / "reports"
    for run in range(1, 7):
        for job, matrix in MATRIX.items():
            failing = run == 2 and matrix["db"] == "my"
            outcomes = dict.fromkeys(PURE, "passed") | {DB: "failed" if failing else "passed"}
            outcomes["tests/test_skip.py::test_later"] = "skipped"
            write_report(folder, run=run, job=job, matrix=matrix, outcomes=outcomes)
    return folder


def test_plan_tests_writes_a_plan_and_prints_what_each_job_skips(
    reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "test-plan.json"
    assert run_command(["plan-tests", str(reports), "-o", str(out), "--min-runs", "3"]) == 0
    text = capsys.readouterr().out
    assert "job" in text.splitlines()[0]
    assert "learned from 6 run(s); 14 test execution(s) skipped across 4 job(s)" in text
    assert "1 test(s) depend on the matrix" in text
    assert f"plan written to {out}" in text
    plan = load_plan(out)
    assert plan.source_run_ids == [str(run) for run in range(1, 7)]
    assert sum(len(job.skip) for job in plan.jobs) == 3 * 4 + 2  # pure: 3 of 4; db: 1 per db
    assert all(item.energy_kwh == pytest.approx(1e-6) for job in plan.jobs for item in job.skip)
    assert plan.sensitive == {DB: ["db"]}
    skipped = {item.nodeid for job in plan.jobs for item in job.skip}
    assert "tests/test_skip.py::test_later" not in skipped


def test_plan_tests_honours_changes_jobs_and_json_output(
    reports: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    changed = tmp_path / "changed.txt"
    changed.write_text("src/shop/pure.py\n", encoding="utf-8")
    out = tmp_path / "plan.json"
    argv = ["plan-tests", str(reports), "-o", str(out), "--min-runs", "3", "--format", "json"]
    argv += ["--changed-files", str(changed), "--changed", "tests/test_db.py"]
    argv += ["--jobs", "pg-3.11,my-3.12"]
    assert run_command(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kept"] == {"changed": 5}
    assert [job["job"] for job in summary["jobs"]] == [
        "my-3.12[db=my,python=3.12]",
        "pg-3.11[db=pg,python=3.11]",
    ]
    assert all(not job.skip for job in load_plan(out).jobs)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--jobs", "py39"], "--jobs: no report of job 'py39'. Fix: use one of my-3.11"),
        (["--jobs", ","], "--jobs: no job names given"),
        (["--min-runs", "-1"], "--min-runs: -1 is negative"),
        (["--changed-files", "nope.txt"], "nope.txt: cannot read the changed-files list"),
    ],
)
def test_plan_tests_refuses_bad_input_in_one_line(
    reports: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    with pytest.raises(CarbonError, match=message):
        run_command(["plan-tests", str(reports), "-o", str(tmp_path / "p.json"), *extra])


def test_plan_tests_refuses_reports_of_several_projects(reports: Path, tmp_path: Path) -> None:
    write_report(reports, run=9, job="x", matrix={}, outcomes={}, project="other/repo")
    with pytest.raises(CarbonError, match=r"reports of 2 projects \(acme/shop, other/repo\)"):
        run_command(["plan-tests", str(reports), "-o", str(tmp_path / "p.json")])


def test_plan_tests_passes_over_plans_and_groups_reports_without_run_id_by_folder(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "reports"
    for run in range(1, 5):
        for job in ("a", "b"):
            write_report(
                folder, run=run, job=job, matrix={}, outcomes={PURE[0]: "passed"}, run_id=""
            )
    out = folder / "plan.json"
    assert run_command(["plan-tests", str(folder), "-o", str(out), "--min-runs", "3"]) == 0
    assert run_command(["plan-tests", str(folder), "-o", str(out), "--min-runs", "3"]) == 0
    plan = load_plan(out)
    assert plan.source_run_ids == ["run1", "run2", "run3", "run4"]
    assert sum(len(job.skip) for job in plan.jobs) == 1


def test_deselected_tests_in_reports_stay_covered(reports: Path, tmp_path: Path) -> None:
    from pytest_carbon.matrix.tests_plan import read_report_runs
    from pytest_carbon.report.model import Deselection, load_report

    path = reports / "run6" / "pg-3.11.json"
    report = load_report(path)
    report.tests = [test for test in report.tests if test.nodeid != PURE[0]]
    report.deselection = Deselection("plan.json", 1, 1e-6, [PURE[0]])
    path.write_text(report.to_json(), encoding="utf-8")
    last = read_report_runs([reports])[-1]
    job = next(job for job in last.jobs if job.cell.name == "pg-3.11")
    assert job.deselected == {PURE[0]}
    assert PURE[0] not in job.outcomes
    out = tmp_path / "plan.json"
    assert run_command(["plan-tests", str(reports), "-o", str(out), "--min-runs", "3"]) == 0
    assert sum(len(job.skip) for job in load_plan(out).jobs) == 3 * 4 + 2


def test_evaluate_tests_on_reports(reports: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["evaluate-tests", str(reports), "--min-runs", "2", "--min-history", "4"]
    assert run_command([*argv, "--train-share", "0.5", "--full-every", "0"]) == 0
    table = capsys.readouterr().out
    assert "failing (test, job) pairs caught" in table
    assert "energy saved" in table
    assert run_command([*argv, "--format", "json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["projects"] == 1
    assert figures["runs"] == 3
    assert figures["skipped"] > 0
    assert 0 < figures["energy_saved_share"] < 1
    assert figures["settings"]["min_runs"] == 2


def test_evaluate_tests_on_a_history_csv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = (
        "project,run_id,started_at,commit,branch,event,run_status,job,job_index,n_jobs,outcome,"
        "tests_run,tests_failed,test_duration_s,failed_tests"
    )
    lines = [header]
    for run in range(1, 31):
        failing = run % 10 == 3
        for job in ("cell1of2", "cell2of2"):
            outcome = "failed" if failing else "passed"
            names = "test_a#test_b" if failing else ""
            lines.append(
                f"acme@app,{run},2020-01-01 00:00:{run:02d} UTC,c{run},master,push,"
                f"{outcome},{job},1,2,{outcome},5,0,1.0,{names}"
            )
    path = tmp_path / "history.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["evaluate-tests", str(path), "--min-runs", "2", "--format", "json"]
    assert run_command([*argv, "--full-every", "0", "--train-share", "0.2"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["runs"] == 24  # runs 1-6 learned as they happened
    assert figures["failing_pairs"] == 2 * 2 * 2  # runs 13 and 23: two tests in two jobs
    assert figures["pair_recall"] == 1.0
    assert figures["skipped"] > 0
    assert figures["energy_saved_share"] is None
    with pytest.raises(CarbonError, match="no project has 99 runs"):
        run_command([*argv, "--min-history", "99"])
    with pytest.raises(CarbonError, match="--train-share: 1.0 is not in"):
        run_command([*argv, "--train-share", "1"])


def test_the_pytest_carbon_command_has_the_test_commands_once_wired() -> None:
    parser = build_parser()
    matrix = next(
        action
        for action in parser._subparsers._group_actions  # type: ignore[union-attr]
        if isinstance(action, argparse._SubParsersAction)
    ).choices["matrix"]
    commands = next(
        action
        for action in matrix._subparsers._group_actions  # type: ignore[union-attr]
        if isinstance(action, argparse._SubParsersAction)
    ).choices
    if "plan-tests" not in commands:
        pytest.skip("matrix/cli.py does not call register_test_commands(sub) yet")
    assert "evaluate-tests" in commands
    assert main(["matrix", "plan-tests", "missing-folder", "-o", "plan.json"]) == 2
