"""Fuzzing the canonical CSV history loader: random bytes, random CSV, gzip and truncated gzip."""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

import pytest
from fuzz_helpers import SLOW, SMOKE, Blob, blobs, load_or_input_error, rewrite
from hypothesis import example, given
from hypothesis import strategies as st

from pytest_carbon.matrix.history import OUTCOMES, REQUIRED_COLUMNS, iter_source

COLUMNS = [
    *REQUIRED_COLUMNS,
    "project",
    "commit",
    "branch",
    "event",
    "run_status",
    "test_duration_s",
    "energy_kwh",
    "failed_tests",
    " Job ",
    "OUTCOME",
    "",
    "junk",
]
CELLS = [
    "",
    " ",
    "1",
    "-1",
    "nan",
    "inf",
    "1e999",
    "passed",
    "FAILED",
    "success",
    "cancelled",
    "skipped",
    "maybe",
    "2020-01-02 03:04:05 UTC",
    "2020-01-02T03:04:05.123Z",
    "2020-01-02T03:04:05+05:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
    "2020-13-45T99:99:99",
    "tests/a.py::t#tests/b.py::u",
    "##",
    "a,b",
    '"',
    "\x00",
    "\u00e9",
    "line\nbreak",
]
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def csv_text(header: list[str], rows: list[list[str]]) -> bytes:
    """CSV of ``header`` and ``rows``, quoted as the csv module quotes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8", "surrogatepass")


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """A CSV whose header and cells are drawn from valid and invalid words."""
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=10))
    if draw(st.booleans()):
        header = [*REQUIRED_COLUMNS, *header[4:]]
    width = len(header)
    cell = st.one_of(st.sampled_from(CELLS), st.text(max_size=5))
    rows = draw(
        st.lists(
            st.lists(cell, min_size=max(width - 1, 0), max_size=width + 1),
            max_size=6,
        )
    )
    return csv_text(header, rows)


@st.composite
def packed(draw: st.DrawFn, texts: st.SearchStrategy[bytes]) -> bytes:
    """``texts`` as they are, gzip-compressed, or gzip-compressed and cut short."""
    data = draw(texts)
    how = draw(st.sampled_from(["plain", "gzip", "truncated", "flipped"]))
    if how == "plain":
        return data
    packed = gzip.compress(data, mtime=0)
    if how == "truncated":
        return packed[: draw(st.integers(0, len(packed) - 1))]
    if how == "flipped":
        index = draw(st.integers(0, len(packed) - 1))
        return (
            packed[:index]
            + bytes([packed[index] ^ draw(st.integers(1, 255))])
            + packed[index + 1 :]
        )
    return packed


INPUTS = blobs(
    st.one_of(
        packed(csv_files()),
        packed(st.binary(max_size=300)),
        packed(st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass"))),
    )
)


def check_csv(path: Path, raw: Blob) -> None:
    """Every record read from ``raw`` is well formed; otherwise the error names ``path``."""
    rewrite(path, raw.data)
    records = load_or_input_error(lambda: list(iter_source(path)), path)
    for record in records or ():
        assert record.outcome in OUTCOMES
        assert TIME.match(record.started_at), record.started_at
        assert record.run_id.strip() == record.run_id != ""
        assert record.job.strip() == record.job != ""
        assert record.duration_s is None or record.duration_s >= 0


@pytest.mark.slow
@SLOW
@given(raw=INPUTS)
def test_csv_loader_slow(tmp_path: Path, raw: Blob) -> None:
    check_csv(tmp_path / "history.csv", raw)


@SMOKE
@given(raw=INPUTS)
@example(raw=Blob(b"run_id,started_at,job,outcome,job\n1,2020-01-01T00:00:00Z,a,passed\n"))
@example(raw=Blob(b"run_id,started_at,job,outcome\n1,0001-01-01T00:00:00+01:00,a,passed\n"))
@example(raw=Blob(gzip.compress(b"run_id,started_at,job,outcome\n" * 50)[:40]))
@example(raw=Blob(b"\x1f\x8b"))
def test_csv_loader(tmp_path: Path, raw: Blob) -> None:
    check_csv(tmp_path / "history.csv", raw)


def test_valid_csv_loads(tmp_path: Path) -> None:
    """A well-formed file loads, gzip-compressed or not (the generator is not all noise)."""
    text = csv_text(
        [*REQUIRED_COLUMNS, "test_duration_s"],
        [["1", "2020-01-02 03:04:05 UTC", "a", "failed", "12.5"], ["1", "", "b", "passed", ""]],
    )
    for raw in (text, gzip.compress(text)):
        path = tmp_path / "history.csv"
        rewrite(path, raw)
        (record,) = iter_source(path)
        assert (record.job, record.outcome, record.duration_s) == ("a", "failed", 12.5)
