"""CI matrix history: one record per job, grouped into runs, loaded from four kinds of source.

Sources: the canonical CSV export (optionally gzip-compressed), folders of pytest-carbon JSON
session reports, folders of JUnit XML files and GitHub Actions "list jobs for a workflow run"
JSON. Every loader raises :class:`~pytest_carbon.errors.InputError` naming the file and line
on input it cannot read; none of them ever lets a traceback reach the user.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Final, final

from pytest_carbon.errors import InputError

#: Job outcomes this package knows.
PASSED: Final = "passed"
FAILED: Final = "failed"
ERROR: Final = "error"
CANCELLED: Final = "cancelled"
UNKNOWN: Final = "unknown"
OUTCOMES: Final = (PASSED, FAILED, ERROR, CANCELLED, UNKNOWN)
#: Outcomes that say the job broke.
FAILING_OUTCOMES: Final = frozenset({FAILED, ERROR})
#: Outcomes that say something about the code (the job ran to an end).
KNOWN_OUTCOMES: Final = frozenset({PASSED, FAILED, ERROR})

#: Run statuses this package knows (``errored``: the run broke before or outside its tests).
RUN_STATUSES: Final = frozenset({"passed", "failed", "errored", "canceled"})

REQUIRED_COLUMNS: Final = ("run_id", "started_at", "job", "outcome")

_OUTCOME_ALIASES: Final[Mapping[str, str]] = {
    "passed": PASSED,
    "pass": PASSED,
    "success": PASSED,
    "succeeded": PASSED,
    "neutral": PASSED,
    "failed": FAILED,
    "fail": FAILED,
    "failure": FAILED,
    "error": ERROR,
    "errored": ERROR,
    "timed_out": ERROR,
    "timeout": ERROR,
    "cancelled": CANCELLED,
    "canceled": CANCELLED,
    "unknown": UNKNOWN,
    "": UNKNOWN,
    "skipped": UNKNOWN,
    "action_required": UNKNOWN,
    "stale": UNKNOWN,
}

_STATUS_ALIASES: Final[Mapping[str, str]] = {
    "passed": "passed",
    "success": "passed",
    "failed": "failed",
    "failure": "failed",
    "errored": "errored",
    "error": "errored",
    "canceled": "canceled",
    "cancelled": "canceled",
}

_TRAVIS_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.\d+)?(?: ?UTC|Z)?$")


@final
@dataclass(frozen=True, slots=True)
class JobResult:
    """One job of one CI run: its outcome, its cost and, where known, the tests behind it.

    ``failed_tests`` lists the names of the tests that failed; ``test_outcomes`` maps every test
    name to its outcome when the source knows them (pytest-carbon reports, JUnit XML).
    """

    project: str
    run_id: str
    started_at: str
    job: str
    outcome: str
    run_status: str | None = None
    commit: str | None = None
    branch: str | None = None
    event: str | None = None
    duration_s: float | None = None
    energy_kwh: float | None = None
    failed_tests: tuple[str, ...] = ()
    test_outcomes: Mapping[str, str] | None = field(default=None, compare=False)
    matrix: Mapping[str, str] | None = field(default=None, compare=False)

    @property
    def failed(self) -> bool:
        """Whether the job broke (failed or errored)."""
        return self.outcome in FAILING_OUTCOMES

    @property
    def known(self) -> bool:
        """Whether the job ran to an end with a readable outcome."""
        return self.outcome in KNOWN_OUTCOMES


@final
@dataclass(frozen=True, slots=True)
class Run:
    """One CI run of a whole matrix: the jobs of one ``(project, run_id)``."""

    project: str
    run_id: str
    started_at: str
    jobs: tuple[JobResult, ...]
    run_status: str | None = None
    branch: str | None = None
    event: str | None = None
    commit: str | None = None

    @property
    def job_names(self) -> tuple[str, ...]:
        """Names of the run's jobs, in matrix order."""
        return tuple(job.job for job in self.jobs)

    @property
    def status(self) -> str:
        """The run's status: as recorded, else derived from its jobs (any failure fails it)."""
        if self.run_status is not None:
            return self.run_status
        if any(job.failed for job in self.jobs):
            return "failed"
        if any(job.outcome == CANCELLED for job in self.jobs):
            return "canceled"
        return "passed"

    @property
    def known_jobs(self) -> int:
        """How many jobs have a readable outcome."""
        return sum(1 for job in self.jobs if job.known)


@final
@dataclass(slots=True)
class LoadNotes:
    """What a loader left out, for the command to tell the user."""

    skipped_rows: int = 0
    first_skipped: str | None = None

    def skip(self, where: str) -> None:
        """Count one unusable row found at ``where``."""
        self.skipped_rows += 1
        if self.first_skipped is None:
            self.first_skipped = where

    def summary(self) -> str | None:
        """One line about what was left out, or None when nothing was."""
        if not self.skipped_rows:
            return None
        return (
            f"left out {self.skipped_rows} row(s) with no readable start time "
            f"(runs that never started; first at {self.first_skipped})"
        )


# --------------------------------------------------------------------------- normalisation


def normalize_outcome(value: str) -> str | None:
    """The canonical outcome for ``value``, or None when the word is not an outcome."""
    return _OUTCOME_ALIASES.get(value.strip().lower())


def normalize_status(value: str | None) -> str | None:
    """The canonical run status for ``value`` (None when absent or not a status)."""
    if value is None:
        return None
    return _STATUS_ALIASES.get(value.strip().lower())


def normalize_time(value: str) -> str | None:
    """``value`` as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC, or None when it is not a timestamp."""
    text = value.strip()
    match = _TRAVIS_TIME.match(text)
    if match:
        return f"{match.group(1)}T{match.group(2)}Z"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(timezone.utc)
        except OverflowError:  # year 1 or 9999 shifted out of range
            return None
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_float(value: str | None) -> float | None:
    """A non-negative float from ``value``; None when empty or not a number."""
    if value is None or not value.strip():
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number >= 0 and number == number else None


# --------------------------------------------------------------------------- grouping


def group_runs(records: Iterable[JobResult]) -> list[Run]:
    """Group job records into runs, oldest first (ties broken by project and run id)."""
    buckets: dict[tuple[str, str], list[JobResult]] = {}
    for record in records:
        buckets.setdefault((record.project, record.run_id), []).append(record)
    runs = [make_run(jobs) for jobs in buckets.values()]
    runs.sort(key=lambda run: (run.started_at, run.project, run.run_id))
    return runs


def make_run(jobs: Sequence[JobResult]) -> Run:
    """One run from the records of its jobs (the last record of a job name wins)."""
    by_name: dict[str, JobResult] = {}
    for job in jobs:
        by_name[job.job] = job
    ordered = tuple(sorted(by_name.values(), key=lambda job: job.job))
    first = jobs[0]
    status = next((job.run_status for job in jobs if job.run_status), None)
    return Run(
        project=first.project,
        run_id=first.run_id,
        started_at=min(job.started_at for job in jobs),
        jobs=ordered,
        run_status=status,
        branch=first.branch,
        event=first.event,
        commit=first.commit,
    )


# --------------------------------------------------------------------------- source dispatch


def load_history(
    sources: Iterable[str | Path], *, with_tests: bool = True, notes: LoadNotes | None = None
) -> list[JobResult]:
    """Load job records from every source: CSV files, report or JUnit folders, GitHub JSON.

    A ``.sqlite`` or ``.db`` file is read as a store written by ``pytest-carbon matrix ingest``.
    """
    records: list[JobResult] = []
    for source in sources:
        records.extend(iter_source(Path(source), with_tests=with_tests, notes=notes))
    return records


def iter_source(
    path: Path, *, with_tests: bool = True, notes: LoadNotes | None = None
) -> Iterator[JobResult]:
    """Job records from one source, whatever its kind."""
    if not path.exists():
        raise InputError(str(path), "no such file or folder", fix="check the path")
    if path.is_dir():
        yield from iter_folder(path, with_tests=with_tests)
        return
    name = path.name.lower()
    if name.endswith((".sqlite", ".sqlite3", ".db")):
        from pytest_carbon.matrix.store import HistoryStore

        with HistoryStore(path, create=False) as store:
            yield from store.records()
        return
    if name.endswith(".xml"):
        yield from load_junit_file(path, run_id=path.parent.name, with_tests=with_tests)
        return
    if name.endswith(".json"):
        yield from load_json_file(path, with_tests=with_tests)
        return
    yield from iter_csv(path, with_tests=with_tests, notes=notes)


def iter_folder(folder: Path, *, with_tests: bool = True) -> Iterator[JobResult]:
    """Job records from a folder of JSON reports, GitHub JSON or JUnit XML (searched deeply)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    usable = [p for p in files if p.suffix.lower() in (".json", ".xml")]
    if not usable:
        raise InputError(
            str(folder),
            "folder holds no .json reports and no .xml JUnit files",
            fix="pass a folder of pytest-carbon JSON reports or JUnit XML files",
        )
    for path in usable:
        if path.suffix.lower() == ".xml":
            yield from load_junit_file(path, run_id=path.parent.name, with_tests=with_tests)
        else:
            yield from load_json_file(path, with_tests=with_tests)


def load_json_file(path: Path, *, with_tests: bool = True) -> list[JobResult]:
    """Job records from a JSON file: a pytest-carbon report or a GitHub Actions jobs listing."""
    data = read_json(path)
    if isinstance(data, dict) and "jobs" in data and "schema_version" not in data:
        return load_github_jobs_data(data, str(path))
    if isinstance(data, dict) and "schema_version" in data:
        return [load_report_file(path, with_tests=with_tests)]
    raise InputError(
        str(path),
        "JSON is neither a pytest-carbon report nor a GitHub Actions jobs listing",
        fix="pass reports written by --carbon-json or the output of the GitHub jobs API",
    )


def read_json(path: Path) -> Any:
    """Parse a JSON file, raising InputError with the line of a syntax error."""
    try:
        # Decoded without newline translation: lines as JSON counts them (a "\r" is none).
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(str(path), f"cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(str(path), "file is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"malformed JSON: {exc.msg}", line=exc.lineno) from None
    except (ValueError, RecursionError) as exc:  # an integer too long, nesting too deep
        raise InputError(str(path), f"unreadable JSON: {exc}") from None


# --------------------------------------------------------------------------- CSV


def open_text(path: Path) -> IO[str]:
    """Open a text file, decompressing gzip transparently (detected by its magic bytes)."""
    try:
        with path.open("rb") as probe:
            magic = probe.read(2)
        if magic == b"\x1f\x8b":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
        return path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(str(path), f"cannot read file: {exc.strerror or exc}") from None


def iter_csv(
    path: Path, *, with_tests: bool = True, notes: LoadNotes | None = None
) -> Iterator[JobResult]:
    """Job records from the canonical CSV export; corrupt rows raise InputError with the line."""
    csv.field_size_limit(1 << 30)
    name = str(path)
    handle = open_text(path)
    reader = csv.reader(handle)
    line = 1
    try:
        with handle:
            header = next(reader, None)
            if header is None:
                raise InputError(name, "file is empty", fix="pass a CSV with a header row")
            columns = read_header(header, name)
            parse = _RowParser(name, columns, with_tests, notes or LoadNotes())
            for row in reader:
                line = reader.line_num
                record = parse(row, line)
                if record is not None:
                    yield record
    except csv.Error as exc:
        raise InputError(name, f"malformed CSV: {exc}", line=reader.line_num) from None
    except UnicodeDecodeError:
        raise InputError(name, "file is not UTF-8 text", line=line + 1) from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(
            name, f"compressed file is damaged or truncated ({exc})", line=line + 1
        ) from None
    except OSError as exc:
        raise InputError(name, f"cannot read file: {exc.strerror or exc}", line=line + 1) from None


def read_header(header: Sequence[str], name: str) -> dict[str, int]:
    """Column positions by name; InputError when a required column is missing."""
    columns = {column.strip().lower(): index for index, column in enumerate(header)}
    if len(columns) != len(header):
        twice = next(c for c in columns if [h.strip().lower() for h in header].count(c) > 1)
        raise InputError(name, f"CSV header names column {twice!r} twice", line=1)
    missing = [column for column in REQUIRED_COLUMNS if column not in columns]
    if missing:
        raise InputError(
            name,
            f"CSV header lacks column(s) {', '.join(missing)}",
            line=1,
            fix=f"export at least the columns {', '.join(REQUIRED_COLUMNS)}",
        )
    return columns


@final
class _RowParser:
    """Turns CSV rows into records, sharing repeated strings to keep memory low."""

    def __init__(
        self, name: str, columns: dict[str, int], with_tests: bool, notes: LoadNotes
    ) -> None:
        self.name = name
        self.width = max(columns.values()) + 1
        self.columns = columns
        self.with_tests = with_tests and "failed_tests" in columns
        self.notes = notes
        self.strings: dict[str, str] = {}
        self.times: dict[str, str | None] = {}

    def share(self, text: str) -> str:
        """One shared copy of ``text``."""
        return self.strings.setdefault(text, text)

    def cell(self, row: Sequence[str], column: str) -> str | None:
        """The cell of an optional column, None when absent or empty."""
        index = self.columns.get(column)
        if index is None:
            return None
        value = row[index].strip()
        return value or None

    def __call__(self, row: Sequence[str], line: int) -> JobResult | None:
        if not row:
            return None
        if len(row) != len(self.columns):
            raise InputError(
                self.name,
                f"row has {len(row)} fields, the header has {len(self.columns)}",
                line=line,
                fix="quote fields that contain commas",
            )
        raw_time = row[self.columns["started_at"]]
        started = self.times.get(raw_time, "")
        if started == "":
            started = self.times[raw_time] = normalize_time(raw_time)
        if started is None:
            self.notes.skip(f"{self.name}:{line}")
            return None
        run_id = row[self.columns["run_id"]].strip()
        job = row[self.columns["job"]].strip()
        if not run_id or not job:
            raise InputError(self.name, "empty run_id or job", line=line)
        outcome = normalize_outcome(row[self.columns["outcome"]])
        if outcome is None:
            raise InputError(
                self.name,
                f"unknown outcome {row[self.columns['outcome']]!r}",
                line=line,
                fix=f"use one of {', '.join(OUTCOMES)}",
            )
        return self.build(row, run_id, job, outcome, started)

    def build(
        self, row: Sequence[str], run_id: str, job: str, outcome: str, started: str
    ) -> JobResult:
        """The record of one well-formed row."""
        share = self.share
        failed_tests: tuple[str, ...] = ()
        if self.with_tests:
            names = self.cell(row, "failed_tests")
            if names:
                failed_tests = tuple(name for name in names.split("#") if name)
        status_text = self.cell(row, "run_status")
        status = normalize_status(status_text)
        return JobResult(
            project=share(self.cell(row, "project") or ""),
            run_id=share(run_id),
            started_at=share(started),
            job=share(job),
            outcome=outcome,
            run_status=share(status) if status else None,
            commit=_shared(share, self.cell(row, "commit")),
            branch=_shared(share, self.cell(row, "branch")),
            event=_shared(share, self.cell(row, "event")),
            duration_s=parse_float(self.cell(row, "test_duration_s")),
            energy_kwh=parse_float(self.cell(row, "energy_kwh")),
            failed_tests=failed_tests,
        )


def _shared(share: Any, value: str | None) -> str | None:
    return None if value is None else str(share(value))


# --------------------------------------------------------------------------- JSON reports


def load_report_file(path: Path, *, with_tests: bool = True) -> JobResult:
    """The job record of one pytest-carbon JSON session report."""
    from pytest_carbon.report.model import load_report

    report = load_report(path)
    identity = report.identity
    job = identity.job or "-".join(value for _, value in sorted(identity.matrix.items()))
    if not job:
        job = path.stem
    started = normalize_time(report.started_at)
    if started is None:
        raise InputError(str(path), f"started_at {report.started_at!r} is not an ISO 8601 time")
    outcomes = {test.nodeid: test.outcome for test in report.tests}
    failed_tests = tuple(
        test.nodeid for test in report.tests if test.outcome in ("failed", "error")
    )
    return JobResult(
        project=identity.project or "",
        run_id=identity.run_id or started,
        started_at=started,
        job=job,
        outcome=report_outcome(report.exit_status, failed_tests),
        commit=identity.commit,
        branch=identity.branch,
        event=identity.event,
        duration_s=report.wall_s,
        energy_kwh=report.energy_kwh,
        failed_tests=failed_tests if with_tests else (),
        test_outcomes=outcomes if with_tests else None,
        matrix=dict(identity.matrix) or None,
    )


def report_outcome(exit_status: int | None, failed_tests: Sequence[str]) -> str:
    """A job outcome from a pytest exit status (0 passed, 1 failed, other error)."""
    if exit_status is None:
        return FAILED if failed_tests else PASSED
    if exit_status == 0:
        return PASSED
    if exit_status == 1:
        return FAILED
    return ERROR


# --------------------------------------------------------------------------- JUnit XML


def load_junit_file(path: Path, *, run_id: str, with_tests: bool = True) -> list[JobResult]:
    """The job record of one JUnit XML file (job = file stem unless a ``job`` property)."""
    name = str(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else None
        raise InputError(name, f"malformed XML: {exc.msg}", line=line) from None
    except (LookupError, ValueError) as exc:  # an encoding Python or expat cannot decode
        raise InputError(name, f"unreadable XML encoding: {exc}") from None
    except OSError as exc:
        raise InputError(name, f"cannot read file: {exc.strerror or exc}") from None
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    if root.tag not in ("testsuite", "testsuites"):
        raise InputError(name, f"root element <{root.tag}> is not a JUnit <testsuite(s)>")
    properties = junit_properties(root)
    started_raw = properties.get("started_at") or next(
        (s.get("timestamp") for s in suites if s.get("timestamp")), None
    )
    if started_raw is None:
        raise InputError(
            name, "no start time", fix="add a timestamp attribute or a started_at property"
        )
    started = normalize_time(started_raw)
    if started is None:
        raise InputError(name, f"timestamp {started_raw!r} is not an ISO 8601 time")
    outcomes = junit_outcomes(suites)
    failed_tests = tuple(test for test, outcome in outcomes.items() if outcome in FAILING_OUTCOMES)
    duration = sum(parse_float(s.get("time")) or 0.0 for s in suites)
    return [
        JobResult(
            project=properties.get("project", ""),
            run_id=properties.get("run_id", run_id),
            started_at=started,
            job=properties.get("job", path.stem),
            outcome=FAILED if failed_tests else PASSED,
            run_status=normalize_status(properties.get("run_status")),
            commit=properties.get("commit"),
            branch=properties.get("branch"),
            event=properties.get("event"),
            duration_s=duration,
            energy_kwh=parse_float(properties.get("energy_kwh")),
            failed_tests=failed_tests if with_tests else (),
            test_outcomes=outcomes if with_tests else None,
        )
    ]


def junit_properties(root: ET.Element) -> dict[str, str]:
    """Every ``<property name= value=>`` in the document, by name."""
    found: dict[str, str] = {}
    for prop in root.iter("property"):
        key, value = prop.get("name"), prop.get("value")
        if key and value is not None:
            found.setdefault(key, value)
    return found


def junit_outcomes(suites: Iterable[ET.Element]) -> dict[str, str]:
    """Each test case's outcome, keyed ``classname::name``."""
    outcomes: dict[str, str] = {}
    for suite in suites:
        for case in suite.findall("testcase"):
            test = "::".join(part for part in (case.get("classname"), case.get("name")) if part)
            if case.find("error") is not None:
                outcomes[test] = ERROR
            elif case.find("failure") is not None:
                outcomes[test] = FAILED
            elif case.find("skipped") is not None:
                outcomes[test] = "skipped"
            else:
                outcomes[test] = PASSED
    return outcomes


# --------------------------------------------------------------------------- GitHub Actions


def load_github_jobs_data(data: Mapping[str, Any], name: str) -> list[JobResult]:
    """Job records from a GitHub Actions "list jobs for a workflow run" response."""
    jobs = data.get("jobs")
    if not isinstance(jobs, list):
        raise InputError(name, "'jobs' is not a list", fix="pass the GitHub jobs API response")
    return [github_job(item, name, index) for index, item in enumerate(jobs)]


def github_job(item: Any, name: str, index: int) -> JobResult:
    """One record from one entry of the GitHub ``jobs`` list."""
    where = f"jobs[{index}]"
    if not isinstance(item, Mapping):
        raise InputError(name, f"{where} is not an object")
    for key in ("run_id", "name", "started_at"):
        if item.get(key) in (None, ""):
            raise InputError(name, f"{where} lacks {key!r}")
    started = normalize_time(str(item["started_at"]))
    if started is None:
        raise InputError(name, f"{where}.started_at is not an ISO 8601 time")
    conclusion = item.get("conclusion") or ""
    outcome = normalize_outcome(str(conclusion)) or UNKNOWN
    return JobResult(
        project=github_project(item),
        run_id=str(item["run_id"]),
        started_at=started,
        job=str(item["name"]),
        outcome=outcome,
        commit=_text(item.get("head_sha")),
        branch=_text(item.get("head_branch")),
        event=_text(item.get("event")),
        duration_s=github_duration(item),
    )


def github_project(item: Mapping[str, Any]) -> str:
    """``owner/repo`` from the job's API URLs, empty when they are absent."""
    for key in ("run_url", "url", "html_url"):
        url = item.get(key)
        if isinstance(url, str):
            match = re.search(r"(?:repos/|github\.com/)([^/]+/[^/]+)/actions", url)
            if match:
                return match.group(1)
    return ""


def github_duration(item: Mapping[str, Any]) -> float | None:
    """``completed_at - started_at`` in seconds, None when either is missing."""
    start, end = item.get("started_at"), item.get("completed_at")
    if not isinstance(start, str) or not isinstance(end, str):
        return None
    try:
        began = datetime.fromisoformat(start.replace("Z", "+00:00"))
        ended = datetime.fromisoformat(end.replace("Z", "+00:00"))
        seconds = (ended - began).total_seconds()
    except (ValueError, TypeError):  # TypeError: one time has a zone, the other not
        return None
    return seconds if seconds >= 0 else None


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


__all__ = [
    "CANCELLED",
    "ERROR",
    "FAILED",
    "OUTCOMES",
    "PASSED",
    "UNKNOWN",
    "JobResult",
    "LoadNotes",
    "Run",
    "group_runs",
    "iter_csv",
    "iter_source",
    "load_github_jobs_data",
    "load_history",
    "load_junit_file",
    "load_report_file",
    "normalize_outcome",
    "normalize_time",
]
