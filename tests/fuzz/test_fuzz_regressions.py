"""The inputs the fuzzers found that crashed a loader, each kept as an explicit test."""

from __future__ import annotations

import gzip
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fuzz_helpers import PATTERNS, check_input_error, make_runs

from carbon_factory import make_report
from pytest_carbon.errors import InputError
from pytest_carbon.matrix.baseline import MozillaBaseline
from pytest_carbon.matrix.history import JobResult, iter_source, load_github_jobs_data
from pytest_carbon.matrix.selector import MatrixSelector
from pytest_carbon.matrix.store import HistoryStore
from pytest_carbon.matrix.tests_plan import PlannedJob, TestPlan, load_plan
from pytest_carbon.report.model import load_report

CSV_HEADER = "run_id,started_at,job,outcome\n"


def refused(path: Path, load: Any) -> InputError:
    """The InputError ``load(path)`` raises, checked to name ``path``."""
    with pytest.raises(InputError) as caught:
        load(path)
    check_input_error(caught.value, path)
    return caught.value


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, '{"a":' * 50_000, "1" * 5_000, '{"schema_version": 1, "x": ' + "9" * 4_400],
    ids=["deep-array", "deep-object", "long-integer", "long-integer-in-report"],
)
def test_json_too_deep_or_too_long(tmp_path: Path, text: str) -> None:
    """RecursionError and the integer digit limit's ValueError escaped the JSON readers."""
    path = tmp_path / "report.json"
    path.write_text(text, encoding="utf-8")
    assert "unreadable JSON" in refused(path, load_report).message
    assert "unreadable JSON" in refused(path, lambda p: list(iter_source(p))).message
    assert "unreadable JSON" in refused(path, load_plan).message


def test_report_number_out_of_float_range(tmp_path: Path) -> None:
    """A 401-digit integer where a float belongs raised OverflowError."""
    path = tmp_path / "report.json"
    path.write_text(json.dumps({**make_report().to_dict(), "wall_s": 10**400}), encoding="utf-8")
    assert refused(path, load_report).message == "wall_s: number out of range"


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_time_shifted_out_of_range(tmp_path: Path, moment: str) -> None:
    """Converting to UTC overflowed past year 1 or 9999; such a row has no usable start now."""
    path = tmp_path / "history.csv"
    path.write_text(f"{CSV_HEADER}1,{moment},a,passed\n2,2020-01-01T00:00:00Z,a,passed\n")
    assert [record.run_id for record in iter_source(path)] == ["2"]
    report = tmp_path / "report.json"
    report.write_text(json.dumps({**make_report().to_dict(), "started_at": moment}))
    assert "is not an ISO 8601 time" in refused(report, lambda p: list(iter_source(p))).message


def test_csv_column_named_twice(tmp_path: Path) -> None:
    """A header naming a column twice made rows index past their end (IndexError)."""
    path = tmp_path / "history.csv"
    path.write_text("run_id,started_at,job,outcome,job\n1,2020-01-01T00:00:00Z,a,passed\n")
    error = refused(path, lambda p: list(iter_source(p)))
    assert (error.line, error.message) == (1, "CSV header names column 'job' twice")


def test_csv_column_named_twice_gzip(tmp_path: Path) -> None:
    path = tmp_path / "history.csv.gz"
    path.write_bytes(gzip.compress(b"run_id,started_at,job,outcome, Job \n1,x,a,passed\n"))
    assert refused(path, lambda p: list(iter_source(p))).line == 1


def test_github_times_with_and_without_zone() -> None:
    """A zoned start and a naive end raised TypeError when subtracted."""
    job = {
        "run_id": 1,
        "name": "a",
        "started_at": "2024-01-02T03:04:05Z",
        "completed_at": "2024-01-02T03:14:05",
    }
    (record,) = load_github_jobs_data({"jobs": [job]}, "jobs.json")
    assert isinstance(record, JobResult)
    assert record.duration_s is None


@pytest.mark.parametrize("encoding", ["bogus", "utf-32", "rot13", "idna", "shift_jis"])
def test_xml_encoding_python_cannot_decode(tmp_path: Path, encoding: str) -> None:
    """An XML declaration naming an unknown or multi-byte encoding raised LookupError or
    ValueError."""
    path = tmp_path / "job.xml"
    path.write_bytes(f'<?xml version="1.0" encoding="{encoding}"?><testsuite/>'.encode())
    assert "encoding" in refused(path, lambda p: list(iter_source(p))).message


@pytest.fixture
def selector_document(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "model.json"
    MatrixSelector(min_history=2).fit(make_runs(PATTERNS)).save(path)
    document: dict[str, Any] = json.loads(path.read_text())
    return document


@pytest.mark.parametrize("value", [float("inf"), float("-inf")])
def test_selector_count_infinite(
    tmp_path: Path, selector_document: dict[str, Any], value: float
) -> None:
    """An infinite count raised OverflowError in int()."""
    selector_document["state"]["projects"]["acme/app"]["counts"][0] = value
    path = tmp_path / "model.json"
    path.write_text(json.dumps(selector_document))
    assert "model state is damaged" in refused(path, MatrixSelector.load).message


def test_selector_negative_job_count(tmp_path: Path, selector_document: dict[str, Any]) -> None:
    """A job seen -2 times made planning take the logarithm of a negative number."""
    selector_document["state"]["projects"]["acme/app"]["jobs"]["c"][1] = -2
    path = tmp_path / "model.json"
    path.write_text(json.dumps(selector_document))
    error = refused(path, MatrixSelector.load)
    assert "counts are negative" in error.message
    assert error.fix == "re-create the model with pytest-carbon matrix fit"


def test_baseline_count_infinite(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    MozillaBaseline(min_support=1).fit(make_runs(PATTERNS)).save(path)
    document = json.loads(path.read_text())
    first = next(iter(document["state"]["acme/app"]["pairs"].values()))
    first[next(iter(first))][0] = float("inf")
    path.write_text(json.dumps(document))
    assert "model state is damaged" in refused(path, MozillaBaseline.load).message


@pytest.mark.parametrize("field", ["min_runs", "kept", "load"])
def test_plan_number_out_of_range(tmp_path: Path, field: str) -> None:
    """An infinite count or a 401-digit load raised OverflowError."""
    data = json.loads(TestPlan("2026-01-02T03:04:05+00:00", [PlannedJob("a")]).to_json())
    if field == "min_runs":
        data["min_runs"] = float("inf")
    elif field == "kept":
        data["kept"] = {"t": float("-inf")}
    else:
        data["jobs"][0]["load"] = 10**400
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    assert "damaged test plan (OverflowError" in refused(path, load_plan).message


@pytest.fixture
def store_file(tmp_path: Path) -> Path:
    """A store of 40 job records."""
    source = tmp_path / "history.csv"
    lines = [f"{n},2020-01-01T00:00:{n:02d}Z,{job},passed" for n in range(20) for job in "ab"]
    source.write_text(CSV_HEADER + "\n".join(lines) + "\n")
    path = tmp_path / "history.sqlite"
    with HistoryStore(path) as store:
        store.ingest(source)
    return path


def test_store_with_damaged_table_page(store_file: Path) -> None:
    """A damaged page of the jobs table raised sqlite3.DatabaseError while reading records."""
    with sqlite3.connect(store_file) as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        root = connection.execute("SELECT rootpage FROM sqlite_master WHERE name='jobs'").fetchone()
    connection.close()
    data = bytearray(store_file.read_bytes())
    data[(root[0] - 1) * page_size] = 0x42  # no valid b-tree page type
    store_file.write_bytes(bytes(data))
    error = refused(store_file, lambda p: list(iter_source(p)))
    assert "history database is damaged" in error.message


def test_store_with_schema_text_not_utf8(store_file: Path) -> None:
    """A schema object whose name is not UTF-8 raised UnicodeDecodeError opening the store.

    SQLite names the object in its "malformed database schema" message, which Python decodes.
    """
    data = store_file.read_bytes()
    at = data.index(b"indexsqlite_autoindex_meta_1") + len(b"index")
    store_file.write_bytes(data[:at] + b"\xaa" + data[at + 1 :])
    error = refused(store_file, lambda p: list(iter_source(p)))
    assert "not a usable history database" in error.message
