"""The SQLite history store: idempotent, batch-transactional, versioned."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from matrix_helpers import csv_line

from pytest_carbon.errors import InputError
from pytest_carbon.matrix import store as store_module
from pytest_carbon.matrix.history import load_history
from pytest_carbon.matrix.store import HistoryStore, ingest_sources


def test_ingesting_the_same_runs_twice_adds_nothing(
    tmp_path: Path, write_csv: Callable[..., Path]
) -> None:
    path = write_csv([csv_line(i, job, "passed") for i in range(5) for job in "ab"])
    db = tmp_path / "h.sqlite"
    (first,) = ingest_sources(db, [path])
    (second,) = ingest_sources(db, [path])
    assert (first.read, first.added) == (10, 10)
    assert (second.read, second.added) == (10, 0)


def test_store_round_trips_every_field(tmp_path: Path, write_csv: Callable[..., Path]) -> None:
    path = write_csv([csv_line(3, "a", "failed", status="failed", failed="t1#t2", event="cron")])
    db = tmp_path / "h.sqlite"
    ingest_sources(db, [path])
    assert load_history([db]) == load_history([path])


def test_corrupt_line_keeps_earlier_batches_and_writes_no_partial_batch(
    tmp_path: Path, write_csv: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BATCH_ROWS", 4)
    lines = [csv_line(i, "a", "passed") for i in range(10)]
    lines.insert(6, csv_line(99, "a", "exploded"))
    path = write_csv(lines)
    db = tmp_path / "h.sqlite"
    with pytest.raises(InputError) as info:
        ingest_sources(db, [path])
    assert info.value.line == 8
    with HistoryStore(db) as store:
        assert store.count() == 4  # the first full batch; the interrupted one is not written


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    path.write_text("not sqlite at all, just some text " * 100, encoding="utf-8")
    with pytest.raises(InputError, match="not a usable history database"):
        HistoryStore(path)


def test_ingesting_into_a_store_with_damaged_pages_is_an_input_error(
    tmp_path: Path, write_csv: Callable[..., Path]
) -> None:
    db = tmp_path / "h.sqlite"
    ingest_sources(
        db, [write_csv([csv_line(i, job, "passed") for i in range(400) for job in "ab"])]
    )
    data = bytearray(db.read_bytes())
    assert len(data) > 3 * 4096
    for page in range(2 * 4096, len(data), 4096):  # keep the header and schema, garble the rest
        data[page + 64 : page + 512] = bytes(range(256)) + bytes(range(192))
    db.write_bytes(bytes(data))
    more = write_csv([csv_line(1000 + i, job, "failed") for i in range(400) for job in "ab"])
    with pytest.raises(InputError, match="history database") as info:
        ingest_sources(db, [more])
    assert info.value.path == str(db)


def test_a_store_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    HistoryStore(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    connection.close()
    with pytest.raises(InputError, match="schema_version 99"):
        HistoryStore(path)


def test_reading_a_missing_store_does_not_create_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such"):
        load_history([tmp_path / "absent.sqlite"])
    assert not (tmp_path / "absent.sqlite").exists()
