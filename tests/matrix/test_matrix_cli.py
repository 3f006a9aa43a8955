"""``pytest-carbon matrix`` end to end through the command's ``main``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from matrix_helpers import csv_line

from pytest_carbon.cli import main
from pytest_carbon.matrix.selector import MatrixSelector, RunContext


def history_lines(runs: int = 120) -> list[str]:
    """cell a and b fail together every 8th run; c never fails."""
    lines = []
    for run in range(runs):
        bad = run % 8 == 5
        status = "failed" if bad else "passed"
        for job in ("a", "b", "c"):
            outcome = "failed" if bad and job != "c" else "passed"
            lines.append(csv_line(run, job, outcome, status=status))
    return lines


@pytest.fixture
def history(write_csv: Callable[..., Path]) -> Path:
    """A CSV history of one project."""
    return write_csv(history_lines())


def test_ingest_fit_plan_round_trip(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "h.sqlite"
    assert main(["matrix", "ingest", str(history), "--db", str(db)]) == 0
    assert main(["matrix", "ingest", str(history), "--db", str(db)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("360 new job row(s) of 360 read")
    assert out[1].endswith("0 new job row(s) of 360 read")
    model = tmp_path / "model.json"
    assert main(["matrix", "fit", str(db), "-o", str(model), "--target-recall", "0.9"]) == 0
    fitted = capsys.readouterr().out
    assert "fitted MatrixSelector on 120 run(s)" in fitted
    # 15 failing runs of two jobs: too few failures to learn trees from
    assert "risk model: chain (30 failing job outcome(s) learned from): too few" in fitted
    assert re.search(r"target_recall 0\.9: risk threshold 0\.\d{4}; on \d+ sampled run", fitted)
    argv = ["matrix", "plan", "--model", str(model), "--jobs", "a,b,c", "--project", "acme@app"]
    assert main([*argv, "--format", "json"]) == 0
    matrix = json.loads(capsys.readouterr().out)
    assert set(matrix) == {"include"}
    ran = {entry["job"] for entry in matrix["include"]}
    assert ran
    assert ran < {"a", "b", "c"}
    assert main([*argv, "--format", "table"]) == 0
    table = capsys.readouterr().out
    assert "skip" in table
    assert f"{len(ran)} of 3 job(s) run" in table


def test_plan_from_a_github_matrix_keeps_its_entries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path]
) -> None:
    names = ("pg-3.11", "sqlite-3.11", "pg-3.12", "sqlite-3.12", "mysql-3.13")
    lines = [csv_line(run, job, "passed") for run in range(30) for job in names]
    model = tmp_path / "model.json"
    assert main(["matrix", "fit", str(write_csv(lines)), "-o", str(model)]) == 0
    spec = tmp_path / "matrix.json"
    spec.write_text(
        json.dumps(
            {
                "python": ["3.11", "3.12"],
                "db": ["pg", "sqlite"],
                "exclude": [{"python": "3.11", "db": "sqlite"}],
                "include": [{"python": "3.13", "db": "mysql"}],
            }
        ),
        encoding="utf-8",
    )
    capsys.readouterr()
    argv = ["matrix", "plan", "--model", str(model), "--matrix-json", str(spec)]
    assert main([*argv, "--format", "plan-json", "--target-recall", "1.0"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert sorted(plan["run"] + [s["job"] for s in plan["skip"]]) == sorted(
        ["pg-3.11", "pg-3.12", "sqlite-3.12", "mysql-3.13"]
    )
    assert plan["skip"] == []  # target_recall 1.0 leaves no risk budget
    assert {"python": "3.13", "db": "mysql"} in plan["include"]
    assert len(plan["include"]) == 4
    assert all(set(entry) == {"python", "db"} for entry in plan["include"])


def test_evaluate_json_has_the_promised_fields(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["matrix", "evaluate", str(history), "--min-runs", "50", "--format", "json"]
    assert main([*argv, "--target-recall", "0.9", "--curve", "0.8", "--baseline", "0.9"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("failing_run_recall", "jobs_skipped_share", "failing_runs", "projects"):
        assert key in report
    assert report["projects"] == 1
    assert report["failing_runs"] == 3  # runs 101, 109, 117 of the last 24
    assert [entry["target_recall"] for entry in report["curve"]] == [0.8, 0.9]
    assert [entry["min_confidence"] for entry in report["baseline"]] == [0.9]
    assert 0.0 <= report["jobs_skipped_share"] <= 1.0


def test_evaluate_table(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "evaluate", str(history), "--curve", "", "--baseline", "0.9"]) == 0
    out = capsys.readouterr().out
    assert "selector  0.99" in out
    assert "baseline  0.9" in out


def test_corrupt_history_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path]
) -> None:
    path = write_csv([csv_line(1, "a", "passed"), csv_line(1, "b", "exploded")])
    assert main(["matrix", "ingest", str(path), "--db", str(tmp_path / "h.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{path}:3: unknown outcome 'exploded'" in err


def test_evaluate_without_enough_runs_says_how_to_fix(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["matrix", "evaluate", str(history), "--min-runs", "500"]) == 2
    assert "lower --min-runs" in capsys.readouterr().err


def test_plan_takes_the_run_start_time(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.json"
    assert main(["matrix", "fit", str(history), "-o", str(model), "--target-recall", "0.9"]) == 0
    capsys.readouterr()
    argv = ["matrix", "plan", "--model", str(model), "--jobs", "a,b,c", "--project", "acme@app"]
    start = "2020-01-01T00:02:10Z"
    assert main([*argv, "--format", "plan-json", "--started-at", start]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = MatrixSelector.load(model).plan(
        ["a", "b", "c"], RunContext("acme@app", started_at=start)
    )
    assert printed.pop("include") == [{"job": job} for job in expected.run]
    assert printed == json.loads(json.dumps(expected.to_dict()))
    assert main([*argv, "--started-at", "yesterday"]) == 2
    assert "--started-at: 'yesterday' is not a time" in capsys.readouterr().err


def test_bad_target_recall_is_refused(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["matrix", "evaluate", str(history), "--target-recall", "2"]) == 2
    assert "--target-recall: 2.0 is not in (0, 1]" in capsys.readouterr().err


def test_plan_with_a_bad_matrix_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "model.json"
    lines = [csv_line(run, "a", "passed") for run in range(3)]
    history = tmp_path / "h.csv"
    history.write_text("\n".join([HEADER_LINE, *lines]) + "\n", encoding="utf-8")
    assert main(["matrix", "fit", str(history), "-o", str(model)]) == 0
    spec = tmp_path / "matrix.json"
    spec.write_text('{"python": "3.12"}', encoding="utf-8")
    argv = ["matrix", "plan", "--model", str(model), "--matrix-json", str(spec)]
    assert main(argv) == 2
    assert "matrix axis 'python' must be a non-empty list" in capsys.readouterr().err


HEADER_LINE = (
    "project,run_id,started_at,commit,branch,event,run_status,job,job_index,n_jobs,outcome,"
    "tests_run,tests_failed,test_duration_s,failed_tests"
)


def test_evaluate_with_the_counting_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], write_csv: Callable[..., Path]
) -> None:
    history = write_csv(history_lines(240))
    argv = ["matrix", "evaluate", str(history), "--min-runs", "20", "--format", "json"]
    assert main([*argv, "--risk-model", "chain", "--baseline", ""]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["risk_model"] == "chain"
    assert report["failing_run_recall"] == 1.0
    assert {"calibrated_recall", "calibrated_skipped_share"} <= set(report["curve"][0])
    with pytest.raises(SystemExit):
        main([*argv, "--risk-model", "forest"])


def test_a_plan_in_waves_prints_each_wave_as_a_matrix(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.json"
    assert main(["matrix", "fit", str(history), "-o", str(model), "--waves", "2"]) == 0
    assert json.loads(model.read_text(encoding="utf-8"))["params"]["waves"] == 2
    argv = ["matrix", "plan", "--model", str(model), "--jobs", "a,b,c", "--project", "acme@app"]
    argv += ["--target-recall", "1.0"]
    capsys.readouterr()
    assert main([*argv, "--format", "plan-json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    first, then = plan["waves"]
    assert len(first) == 1
    assert first[0] in ("a", "b")  # c never failed
    assert sorted(first + then) == ["a", "b", "c"]
    assert main([*argv, "--format", "waves"]) == 0
    waves = json.loads(capsys.readouterr().out)
    assert [[entry["job"] for entry in wave["include"]] for wave in waves["waves"]] == [first, then]
    assert main([*argv[:-1], "0.01", "--format", "waves"]) == 0  # one job runs: one wave
    one = json.loads(capsys.readouterr().out)
    assert len(one["waves"]) == 1
    assert len(one["waves"][0]["include"]) == 1
    assert main([*argv, "--format", "table"]) == 0
    table = capsys.readouterr().out
    assert re.search(rf"{first[0]}\s+run, wave 1\s+wave 1, the likeliest to fail", table)
    assert f"in 2 waves: {first[0]}, then the other 2, each wave only when" in table


def test_evaluate_in_waves(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["matrix", "evaluate", str(history), "--curve", "", "--baseline", "0.9"]
    assert main([*argv, "--target-recall", "0.9", "--format", "json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert main([*argv, "--target-recall", "0.9", "--format", "json", "--waves", "2"]) == 0
    two = json.loads(capsys.readouterr().out)
    assert one["definitions"]["waves"].startswith("1:")
    assert two["definitions"]["waves"].startswith("2:")
    assert (one["waves"], two["waves"]) == (1, 2)
    assert two["failing_runs"] == one["failing_runs"] == 3
    assert two["failing_run_recall"] == 1.0
    assert one["second_waves"] == 0
    assert one["waves_run"] == one["runs"]
    assert 0 < two["second_waves"] < two["runs"]
    assert two["waves_run"] == two["runs"] + two["second_waves"]
    assert two["baseline"][0]["second_waves"] > 0
    assert main([*argv, "--waves", "2"]) == 0
    assert "second waves" in capsys.readouterr().out
    assert main([*argv, "--waves", "0"]) == 2
    assert "--waves: 0 is not a number of waves. Fix: pass 1, 2 or 3" in capsys.readouterr().err
