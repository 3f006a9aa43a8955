"""Fuzzing the SQLite history store: ingestion that fails midway, and damaged database files."""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from fuzz_helpers import SLOW, SMOKE, Blob, blobs, check_input_error, load_or_input_error, rewrite
from hypothesis import example, given
from hypothesis import strategies as st

from pytest_carbon.errors import InputError
from pytest_carbon.matrix import store as store_module
from pytest_carbon.matrix.history import iter_source
from pytest_carbon.matrix.store import HistoryStore

HEADER = ["project", "run_id", "started_at", "job", "outcome"]
#: Ways one line can break the ingestion: a bad cell, a bad width, an empty key.
BREAKAGES = ("outcome", "width", "job")

Key = tuple[str, str, str]


@dataclass(frozen=True)
class Case:
    """One ingestion: rows already stored, new rows, the batch size and where it breaks."""

    before: list[Key]
    rows: list[Key]
    batch: int
    broken_at: int | None  # the index of the corrupt row, None when every row is fine
    breakage: str
    injected_at: tuple[int, int] | None  # (batch, row in batch) where the database fails

    def committed(self) -> set[Key]:
        """Keys the store must hold after the failed ingestion."""
        if self.broken_at is not None:
            written = self.rows[: self.broken_at // self.batch * self.batch]
        elif self.injected_at is not None:
            written = self.rows[: self.injected_at[0] * self.batch]
        else:
            written = self.rows
        return {*self.before, *written}


keys = st.tuples(st.sampled_from(["", "acme/app"]), st.sampled_from("0123"), st.sampled_from("abc"))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    rows = draw(st.lists(keys, min_size=1, max_size=14))
    batch = draw(st.integers(1, 5))
    how = draw(st.sampled_from(["line", "line", "database", "none"]))
    broken_at = draw(st.integers(0, len(rows) - 1)) if how == "line" else None
    injected = None
    if how == "database":
        batches = (len(rows) + batch - 1) // batch
        index = draw(st.integers(0, batches - 1))
        size = min(batch, len(rows) - index * batch)
        injected = (index, draw(st.integers(0, size - 1)))
    return Case(
        before=draw(st.lists(keys, max_size=4)),
        rows=rows,
        batch=batch,
        broken_at=broken_at,
        breakage=draw(st.sampled_from(BREAKAGES)),
        injected_at=injected,
    )


def csv_of(rows: Iterable[Key], broken_at: int | None = None, breakage: str = "") -> bytes:
    """A canonical CSV of ``rows``, the row at ``broken_at`` corrupted by ``breakage``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    for index, (project, run_id, job) in enumerate(rows):
        row = [project, run_id, f"2020-01-0{int(run_id) + 1}T00:00:00Z", job, "passed"]
        if index == broken_at:
            if breakage == "outcome":
                row[4] = "exploded"
            elif breakage == "width":
                row.append("extra")
            else:
                row[3] = " "
        writer.writerow(row)
    return buffer.getvalue().encode()


class InjectedFailure(sqlite3.OperationalError):
    """The disk failing in the middle of a batch (simulated)."""


class FailingConnection:
    """A connection whose ``executemany`` fails after some rows of one batch."""

    def __init__(self, real: sqlite3.Connection, batch: int, row: int) -> None:
        self.real = real
        self.batch = batch
        self.row = row
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def __enter__(self) -> sqlite3.Connection:
        return self.real.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return self.real.__exit__(kind, value, traceback)

    def executemany(self, sql: str, rows: list[tuple[object, ...]]) -> sqlite3.Cursor:
        call, self.calls = self.calls, self.calls + 1
        if call != self.batch:
            return self.real.executemany(sql, rows)

        def failing() -> Iterator[tuple[object, ...]]:
            yield from rows[: self.row]
            raise InjectedFailure("disk I/O error (injected)")

        return self.real.executemany(sql, failing())


def stored_keys(database: Path) -> set[Key]:
    """The keys a fresh connection reads back (what survived, not what a cache holds)."""
    with HistoryStore(database, create=False) as store:
        found = {(r.project, r.run_id, r.job) for r in store.records()}
        assert store.count() == len(found)
    return found


def opened(database: Path, *, journal_in_memory: bool) -> HistoryStore:
    """The store at ``database``; its rollback journal kept in memory when asked.

    An in-memory journal rolls a transaction back exactly as the on-disk one does (only a
    crash of the process would tell them apart), at a fraction of the file-system cost.
    """
    store = HistoryStore(database)
    if journal_in_memory:
        store.connection.execute("PRAGMA journal_mode=MEMORY")
        store.connection.execute("PRAGMA synchronous=OFF")
    return store


def check_ingest(folder: Path, case: Case, *, journal_in_memory: bool = False) -> None:
    """A failed ingestion keeps exactly the batches committed before; re-ingesting adds none."""
    database, source, good = folder / "history.sqlite", folder / "new.csv", folder / "good.csv"
    with opened(database, journal_in_memory=journal_in_memory) as store:
        with store.connection:
            store.connection.execute("DELETE FROM jobs")
        rewrite(good, csv_of(case.before))
        store.ingest(good)
        assert store.count() == len(set(case.before))
        rewrite(source, csv_of(case.rows, case.broken_at, case.breakage))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(store_module, "BATCH_ROWS", case.batch)
            if case.injected_at is not None:
                store.connection = FailingConnection(store.connection, *case.injected_at)  # type: ignore[assignment]
                with pytest.raises(InputError, match="cannot write to the history database"):
                    store.ingest(source)
                store.connection = store.connection.real  # type: ignore[attr-defined]
            elif case.broken_at is not None:
                with pytest.raises(InputError) as caught:
                    store.ingest(source)
                check_input_error(caught.value, source)
                assert caught.value.line == case.broken_at + 2
            else:
                result = store.ingest(source)
                assert result.read == len(case.rows)
                assert result.added == len(set(case.rows) - set(case.before))
    assert stored_keys(database) == case.committed()
    rewrite(source, csv_of(case.rows))
    with opened(database, journal_in_memory=journal_in_memory) as store:
        store.ingest(source)
        everything = {*case.before, *case.rows}
        assert store.count() == len(everything)
        again = store.ingest(source)
        assert (again.read, again.added) == (len(case.rows), 0)
    assert stored_keys(database) == everything


@pytest.mark.slow
@SLOW
@given(case=cases())
def test_failed_ingestion_keeps_committed_batches_slow(tmp_path: Path, case: Case) -> None:
    check_ingest(tmp_path, case, journal_in_memory=True)


@SMOKE
@given(case=cases())
@example(case=Case([], [("", "0", "a")] * 3 + [("", "1", "b")], 2, 3, "outcome", None))
@example(case=Case([("", "0", "a")], [("", "0", "a"), ("", "1", "a")], 1, None, "", (1, 0)))
def test_failed_ingestion_keeps_committed_batches(tmp_path: Path, case: Case) -> None:
    check_ingest(tmp_path, case)


# --------------------------------------------------------------------------- damaged files


@pytest.fixture(scope="module")
def store_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A small valid store, as bytes."""
    folder = tmp_path_factory.mktemp("store")
    source = folder / "history.csv"
    source.write_bytes(csv_of([("acme/app", str(n % 4), job) for n in range(12) for job in "ab"]))
    database = folder / "history.sqlite"
    with HistoryStore(database) as store:
        store.ingest(source)
    return database.read_bytes()


@st.composite
def damaged(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with bytes overwritten, or cut short."""
    data = bytearray(original)
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data)))])
    for _ in range(draw(st.integers(1, 8))):
        start = draw(st.integers(0, len(data) - 1) | st.integers(100, len(data) - 1))
        data[start : start + 4] = draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


def check_damaged_store(path: Path, raw: Blob) -> None:
    """``raw`` as a store file gives its records or an error naming ``path``."""
    for leftover in ("-journal", "-wal", "-shm"):  # an earlier example's journal must not replay
        path.with_name(path.name + leftover).unlink(missing_ok=True)
    rewrite(path, raw.data)
    records = load_or_input_error(lambda: list(iter_source(path)), path)
    for record in records or ():
        assert isinstance(record.outcome, str)
        assert isinstance(record.run_id, str)


@pytest.mark.slow
@SLOW
@given(data=st.data())
def test_damaged_store_slow(tmp_path: Path, store_bytes: bytes, data: st.DataObject) -> None:
    check_damaged_store(tmp_path / "history.sqlite", data.draw(blobs(damaged(store_bytes))))


@SMOKE
@given(data=st.data())
def test_damaged_store(tmp_path: Path, store_bytes: bytes, data: st.DataObject) -> None:
    check_damaged_store(tmp_path / "history.sqlite", data.draw(blobs(damaged(store_bytes))))
