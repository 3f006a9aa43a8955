"""Loading history: the CSV export, JSON reports, JUnit XML and GitHub jobs JSON."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from matrix_helpers import HEADER, csv_line

from pytest_carbon.errors import InputError
from pytest_carbon.matrix.history import (
    LoadNotes,
    group_runs,
    load_history,
    normalize_time,
)
from pytest_carbon.report.model import JobIdentity, SessionReport


def test_csv_rows_become_records_grouped_into_runs(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        [
            csv_line(1, "a", "passed", status="failed"),
            csv_line(1, "b", "failed", status="failed", failed="t1#t2"),
            csv_line(2, "a", "passed", duration=""),
        ]
    )
    records = load_history([path])
    assert [r.outcome for r in records] == ["passed", "failed", "passed"]
    assert records[1].failed_tests == ("t1", "t2")
    assert records[2].duration_s is None
    runs = group_runs(records)
    assert [run.run_id for run in runs] == ["1", "2"]
    assert runs[0].status == "failed"
    assert runs[0].started_at == "2020-01-01T00:00:01Z"


def test_gzip_csv_is_read_like_plain_csv(tmp_path: Path) -> None:
    path = tmp_path / "h.csv.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write(HEADER + "\n" + csv_line(7, "a", "failed", status="failed") + "\n")
    (record,) = load_history([path])
    assert (record.run_id, record.outcome) == ("7", "failed")


def test_only_the_four_required_columns_are_needed(write_csv: Callable[..., Path]) -> None:
    path = write_csv(
        ["r1,2021-05-01T10:00:00Z,py311,success"], header="run_id,started_at,job,outcome"
    )
    (record,) = load_history([path])
    assert (record.project, record.outcome, record.run_status) == ("", "passed", None)


def test_missing_required_column_names_line_one(write_csv: Callable[..., Path]) -> None:
    path = write_csv(["r1,py311,passed"], header="run_id,job,outcome")
    with pytest.raises(InputError, match="started_at") as info:
        load_history([path])
    assert info.value.line == 1


def test_unknown_outcome_names_its_line(write_csv: Callable[..., Path]) -> None:
    path = write_csv([csv_line(1, "a", "passed"), csv_line(1, "b", "exploded")])
    with pytest.raises(InputError, match="unknown outcome 'exploded'") as info:
        load_history([path])
    assert info.value.line == 3
    assert str(path) in str(info.value)


def test_row_with_wrong_field_count_names_its_line(write_csv: Callable[..., Path]) -> None:
    path = write_csv([csv_line(1, "a", "passed"), "acme,1,2020-01-01 00:00:00 UTC,x"])
    with pytest.raises(InputError, match="4 fields") as info:
        load_history([path])
    assert info.value.line == 3


def test_truncated_gzip_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.csv.gz"
    body = HEADER + "\n" + "\n".join(csv_line(i, "a", "passed") for i in range(2000)) + "\n"
    path.write_bytes(gzip.compress(body.encode())[:3000])
    with pytest.raises(InputError, match="damaged or truncated"):
        load_history([path])


def test_rows_without_start_time_are_left_out_and_counted(write_csv: Callable[..., Path]) -> None:
    line = csv_line(1, "a", "unknown", status="canceled").replace("2020-01-01 00:00:01 UTC", "")
    path = write_csv([line, csv_line(2, "a", "passed")])
    notes = LoadNotes()
    records = load_history([path], notes=notes)
    assert [r.run_id for r in records] == ["2"]
    assert notes.skipped_rows == 1
    assert notes.summary() is not None
    assert ":2" in notes.summary()


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_history([tmp_path / "absent.csv"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2019-07-19 15:32:41 UTC", "2019-07-19T15:32:41Z"),
        ("2019-07-19T17:32:41+02:00", "2019-07-19T15:32:41Z"),
        ("2019-07-19T15:32:41Z", "2019-07-19T15:32:41Z"),
        ("yesterday", None),
        ("", None),
    ],
)
def test_times_are_normalised_to_utc(raw: str, expected: str | None) -> None:
    assert normalize_time(raw) == expected


def write_report(folder: Path, sample: SessionReport, job: str | None, exit_status: int) -> Path:
    """A JSON report of one job of run 42."""
    sample.identity = JobIdentity(
        job=job, matrix={"python": "3.12", "db": "pg"}, run_id="42", project="acme/app"
    )
    sample.exit_status = exit_status
    path = folder / f"{job or 'matrix'}.json"
    path.write_text(sample.to_json(), encoding="utf-8")
    return path


def test_report_folder_gives_one_record_per_job(
    tmp_path: Path, sample_report: SessionReport
) -> None:
    write_report(tmp_path, sample_report, "py312-pg", 1)
    write_report(tmp_path, sample_report, None, 0)
    records = sorted(load_history([tmp_path]), key=lambda r: r.job)
    assert [r.job for r in records] == ["pg-3.12", "py312-pg"]
    assert [r.outcome for r in records] == ["passed", "failed"]
    failed = records[1]
    assert failed.run_id == "42"
    assert failed.project == "acme/app"
    assert failed.test_outcomes is not None
    assert set(failed.failed_tests) == {
        t for t, o in failed.test_outcomes.items() if o in ("failed", "error")
    }
    assert failed.energy_kwh == pytest.approx(sample_report.energy_kwh)


def test_report_exit_status_other_than_0_or_1_is_an_error(
    tmp_path: Path, sample_report: SessionReport
) -> None:
    write_report(tmp_path, sample_report, "py312", 2)
    (record,) = load_history([tmp_path])
    assert record.outcome == "error"


def test_corrupt_report_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"schema_version": 1,\n "tool_version": }', encoding="utf-8")
    with pytest.raises(InputError, match="bad.json:2"):
        load_history([tmp_path])


JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="pytest" timestamp="2021-03-04T05:06:07" time="3.5">
{props}
<testcase classname="tests.test_a" name="test_ok" time="1"/>
<testcase classname="tests.test_a" name="test_bad" time="1"><failure message="x"/></testcase>
</testsuite></testsuites>
"""


def test_junit_folder_job_from_stem_and_run_from_folder(tmp_path: Path) -> None:
    run = tmp_path / "run-77"
    run.mkdir()
    (run / "py311.xml").write_text(JUNIT.format(props=""), encoding="utf-8")
    passing = JUNIT.format(props="").replace('<failure message="x"/>', "")
    (run / "py312.xml").write_text(passing, encoding="utf-8")
    records = sorted(load_history([tmp_path]), key=lambda r: r.job)
    assert [(r.job, r.run_id, r.outcome) for r in records] == [
        ("py311", "run-77", "failed"),
        ("py312", "run-77", "passed"),
    ]
    assert records[0].failed_tests == ("tests.test_a::test_bad",)
    assert records[0].duration_s == pytest.approx(3.5)


def test_junit_properties_override_job_and_run(tmp_path: Path) -> None:
    props = (
        '<properties><property name="job" value="lint"/>'
        '<property name="run_id" value="9"/></properties>'
    )
    (tmp_path / "x.xml").write_text(JUNIT.format(props=props), encoding="utf-8")
    (record,) = load_history([tmp_path])
    assert (record.job, record.run_id) == ("lint", "9")


def test_malformed_junit_names_its_line(tmp_path: Path) -> None:
    (tmp_path / "x.xml").write_text("<testsuite>\n<testcase>\n</testsuite>", encoding="utf-8")
    with pytest.raises(InputError, match="malformed XML") as info:
        load_history([tmp_path])
    assert info.value.line == 3


def github_listing() -> dict[str, object]:
    """A GitHub Actions jobs listing with two jobs."""
    base = {
        "run_id": 5,
        "head_sha": "abc",
        "head_branch": "main",
        "status": "completed",
        "run_url": "https://api.github.com/repos/acme/app/actions/runs/5",
    }
    return {
        "total_count": 2,
        "jobs": [
            dict(base, id=1, name="test (3.12)", conclusion="success",
                 started_at="2024-01-01T10:00:00Z", completed_at="2024-01-01T10:02:30Z"),
            dict(base, id=2, name="test (3.13)", conclusion="failure",
                 started_at="2024-01-01T10:00:00Z", completed_at=None),
        ],
    }  # fmt: skip


def test_github_jobs_listing(tmp_path: Path) -> None:
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(github_listing()), encoding="utf-8")
    first, second = load_history([path])
    assert (first.project, first.run_id, first.job) == ("acme/app", "5", "test (3.12)")
    assert first.duration_s == pytest.approx(150.0)
    assert (second.outcome, second.duration_s) == ("failed", None)
    (run,) = group_runs([first, second])
    assert run.status == "failed"


def test_github_job_without_name_is_an_input_error(tmp_path: Path) -> None:
    listing = github_listing()
    del listing["jobs"][1]["name"]  # type: ignore[index]
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(listing), encoding="utf-8")
    with pytest.raises(InputError, match=r"jobs\[1\] lacks 'name'"):
        load_history([path])


def test_unrelated_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InputError, match="neither"):
        load_history([path])
