"""SQLite store of CI matrix history: idempotent ingestion, one row per (project, run, job).

Sources are ingested in batches, each batch in its own transaction: a corrupt line stops the
ingestion with an :class:`~pytest_carbon.errors.InputError` naming file and line, the batches
already written stay written and the batch being parsed is not written at all. Re-ingesting
the same runs adds nothing (the key is ``(project, run_id, job)``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, final

from pytest_carbon.errors import InputError
from pytest_carbon.matrix.history import JobResult, LoadNotes, iter_source

SCHEMA_VERSION: Final = 1
BATCH_ROWS: Final = 5000

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    project TEXT NOT NULL,
    run_id TEXT NOT NULL,
    job TEXT NOT NULL,
    started_at TEXT NOT NULL,
    outcome TEXT NOT NULL,
    run_status TEXT,
    commit_sha TEXT,
    branch TEXT,
    event TEXT,
    duration_s REAL,
    energy_kwh REAL,
    failed_tests TEXT,
    test_outcomes TEXT,
    matrix TEXT,
    PRIMARY KEY (project, run_id, job)
);
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs (project, started_at);
"""

_COLUMNS: Final = (
    "project, run_id, job, started_at, outcome, run_status, commit_sha, branch, event, "
    "duration_s, energy_kwh, failed_tests, test_outcomes, matrix"
)


@final
@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ingestion added."""

    source: str
    read: int
    added: int


@final
class HistoryStore:
    """A SQLite file holding job records; use as a context manager."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = str(path)
        if not create and not Path(path).is_file():
            raise InputError(self.path, "no such history database")
        try:
            self.connection = sqlite3.connect(self.path)
        except sqlite3.DatabaseError as exc:
            raise InputError(self.path, f"cannot open history database ({exc})") from None
        try:
            self.connection.executescript(_SCHEMA)
            self.check_version()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # damaged text decodes badly
            self.connection.close()
            raise InputError(
                self.path, f"not a usable history database ({exc})", fix="pass a file from ingest"
            ) from None
        except InputError:
            self.connection.close()
            raise

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the database."""
        self.connection.close()

    def check_version(self) -> None:
        """Stamp a new store with the schema version; refuse stores of unknown versions."""
        row = self.connection.execute(
            "SELECT value FROM meta WHERE key='schema_version'"
        ).fetchone()
        if row is None:
            with self.connection:
                self.connection.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        elif row[0] != str(SCHEMA_VERSION):
            raise InputError(
                self.path,
                f"history database has schema_version {row[0]} (this pytest-carbon reads "
                f"{SCHEMA_VERSION})",
                fix="ingest the sources into a new database",
            )

    def count(self) -> int:
        """How many job rows the store holds."""
        try:
            return int(self.connection.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
        except sqlite3.DatabaseError as exc:
            raise InputError(
                self.path, f"history database is damaged ({exc})", fix="ingest the sources again"
            ) from None

    def ingest(self, source: str | Path, notes: LoadNotes | None = None) -> IngestResult:
        """Add one source's job records, batch by batch; return how many were new."""
        read = added = 0
        batch: list[tuple[object, ...]] = []
        for record in iter_source(Path(source), notes=notes):
            batch.append(row_of(record))
            if len(batch) >= BATCH_ROWS:
                added += self.write(batch)
                read += len(batch)
                batch = []
        if batch:
            added += self.write(batch)
            read += len(batch)
        return IngestResult(str(source), read, added)

    def write(self, rows: list[tuple[object, ...]]) -> int:
        """Insert rows in one transaction, ignoring stored ones; return how many were new."""
        before = self.connection.total_changes
        try:
            with self.connection:  # a failed batch is rolled back: nothing half-written
                self.connection.executemany(
                    f"INSERT OR IGNORE INTO jobs ({_COLUMNS}) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
        except sqlite3.DatabaseError as exc:
            raise InputError(
                self.path,
                f"cannot write to the history database ({exc}); the batch being written was "
                "rolled back, earlier batches are stored",
                fix="if the file is damaged, ingest the sources into a new database",
            ) from None
        return self.connection.total_changes - before

    def records(self) -> Iterator[JobResult]:
        """Every stored job record, oldest run first; InputError when the file is damaged."""
        try:
            cursor = self.connection.execute(
                f"SELECT {_COLUMNS} FROM jobs ORDER BY started_at, project, run_id, job"
            )
            for row in cursor:
                yield record_of(row)
        except (sqlite3.DatabaseError, ValueError) as exc:  # ValueError: a damaged JSON cell
            raise InputError(
                self.path, f"history database is damaged ({exc})", fix="ingest the sources again"
            ) from None


def row_of(record: JobResult) -> tuple[object, ...]:
    """The database row of a record."""
    return (
        record.project,
        record.run_id,
        record.job,
        record.started_at,
        record.outcome,
        record.run_status,
        record.commit,
        record.branch,
        record.event,
        record.duration_s,
        record.energy_kwh,
        "#".join(record.failed_tests) if record.failed_tests else None,
        json.dumps(dict(record.test_outcomes)) if record.test_outcomes is not None else None,
        json.dumps(dict(record.matrix)) if record.matrix is not None else None,
    )


def record_of(row: tuple[object, ...]) -> JobResult:
    """The record of a database row."""
    failed = str(row[11]) if row[11] else ""
    return JobResult(
        project=str(row[0]),
        run_id=str(row[1]),
        job=str(row[2]),
        started_at=str(row[3]),
        outcome=str(row[4]),
        run_status=_optional(row[5]),
        commit=_optional(row[6]),
        branch=_optional(row[7]),
        event=_optional(row[8]),
        duration_s=float(row[9]) if isinstance(row[9], (int, float)) else None,
        energy_kwh=float(row[10]) if isinstance(row[10], (int, float)) else None,
        failed_tests=tuple(name for name in failed.split("#") if name),
        test_outcomes=json.loads(str(row[12])) if row[12] else None,
        matrix=json.loads(str(row[13])) if row[13] else None,
    )


def _optional(value: object) -> str | None:
    return None if value is None else str(value)


def ingest_sources(
    database: str | Path, sources: Iterable[str | Path], notes: LoadNotes | None = None
) -> list[IngestResult]:
    """Ingest every source into the database, in order; stop at the first corrupt one."""
    results: list[IngestResult] = []
    with HistoryStore(database) as store:
        for source in sources:
            results.append(store.ingest(source, notes))
    return results
