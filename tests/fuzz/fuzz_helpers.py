"""Shared pieces of the bad-input fuzz tests: settings, the loader property, JSON mutations."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st

from pytest_carbon.errors import InputError
from pytest_carbon.matrix.history import JobResult, Run, group_runs

T = TypeVar("T")

#: Seconds one loader call may take before the property calls it a hang.
HANG_SECONDS = 10.0

_CHECKS = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.function_scoped_fixture,  # one file, rewritten by every example, on purpose
]

#: The slow run: at least 10,000 examples per parser.
SLOW = settings(max_examples=10_000, deadline=None, suppress_health_check=_CHECKS)
#: The quick run every default test session does.
SMOKE = settings(max_examples=200, deadline=None, suppress_health_check=_CHECKS)


def rewrite(path: Path, data: bytes) -> None:
    """Replace the content of ``path`` in place (opening with truncation is slow on some disks)."""
    if not path.exists():
        path.write_bytes(b"")
    with path.open("r+b") as handle:
        handle.write(data)
        handle.truncate()


class LoaderHang(BaseException):
    """A loader ran past :data:`HANG_SECONDS` (a BaseException so no loader can swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Raise :class:`LoaderHang` in the block after ``seconds`` (no limit where no SIGALRM)."""
    if sys.platform == "win32":  # pragma: no cover - no interval timers there
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise LoaderHang(f"loader still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def load_or_input_error(load: Callable[[], T], path: Path, *, lines: int | None = None) -> T | None:
    """Run ``load``: return what it loads, or None after checking its :class:`InputError`.

    The error must name ``path`` at the start of its message; a line, when given, must be a
    real position (``1 <= line``, and at most ``lines + 1`` when the file's line count is known)
    and must appear as ``path:line``. Any other exception fails the calling test.
    """
    try:
        with time_limit():
            loaded = load()
    except InputError as exc:
        check_input_error(exc, path, lines=lines)
        event("refused with InputError")
        return None
    event("loaded")
    return loaded


def check_input_error(exc: InputError, path: Path, *, lines: int | None = None) -> None:
    """Assert that ``exc`` names ``path`` (and a plausible line) in its message."""
    text = str(exc)
    assert exc.path == str(path), text
    assert text.startswith(str(path)), text
    assert exc.message, text
    if exc.line is not None:
        assert exc.line >= 1, text
        if lines is not None:
            assert exc.line <= lines + 1, text
        assert text.startswith(f"{path}:{exc.line}: "), text


# --------------------------------------------------------------------------- JSON values

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 10**400, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "2024-01-02T03:04:05Z", "not a time", "0001-01-01T00:00:00+05:00"]),
)

#: Any JSON value (NaN and infinities included: Python's ``json`` reads them).
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=5,
)


def json_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) inside a JSON value, the value itself first."""
    paths = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            paths += json_paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            paths += json_paths(item, (*prefix, index))
    return paths


MUTATIONS = ("delete", "replace", "add", "wrap", "empty")


@st.composite
def mutated_json(draw: st.DrawFn, seed: Any, max_mutations: int = 3) -> Any:
    """A copy of ``seed`` with one to ``max_mutations`` random edits at random paths."""
    value = json.loads(json.dumps(seed))
    for _ in range(draw(st.integers(1, max_mutations))):
        paths = json_paths(value)
        path = draw(st.sampled_from(paths))
        kind = draw(st.sampled_from(MUTATIONS))
        new = draw(JSON_VALUES) if kind in ("replace", "add") else None
        key = draw(st.text(max_size=6)) if kind == "add" else ""
        value = apply_mutation(value, path, kind, new, key)
    return value


def apply_mutation(value: Any, path: tuple[Any, ...], kind: str, new: Any, key: str) -> Any:
    """``value`` with the node at ``path`` deleted, replaced, extended, wrapped or emptied."""
    if not path:
        return new if kind in ("replace", "delete") else [value] if kind == "wrap" else {}
    parent = value
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    node = parent[last]
    if kind == "delete":
        del parent[last]
    elif kind == "replace":
        parent[last] = new
    elif kind == "add" and isinstance(node, dict):
        node[key] = new
    elif kind == "add" and isinstance(node, list):
        node.append(new)
    elif kind == "wrap":
        parent[last] = [node]
    else:
        parent[last] = type(node)() if isinstance(node, (dict, list, str)) else None
    return value


class Blob:
    """Bytes with a short repr, so that huge inputs do not make huge failure reports."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:
        head = self.data[:160]
        more = f" ... ({len(self.data):,} bytes)" if len(self.data) > len(head) else ""
        return f"Blob({head!r}{more})"


def blobs(strategy: st.SearchStrategy[bytes]) -> st.SearchStrategy[Blob]:
    """``strategy`` with each value wrapped in a :class:`Blob`."""
    return strategy.map(Blob)


def json_bytes(value: Any, indent: int | None = None) -> bytes:
    """JSON of ``value`` as UTF-8 (NaN and infinities written as Python writes them)."""
    return json.dumps(value, indent=indent).encode()


#: Text that breaks JSON readers in ways random text rarely finds.
NASTY_JSON = [
    "",
    "[" * 100_000,
    '{"a":' * 50_000,
    "1" * 5_000,
    '{"schema_version": 1, "x": ' + "9" * 4_400 + "}",
    "\ufeff{}",
    '{"jobs": [' + "{}," * 1000 + "{}]}",
    "NaN",
    '"\\ud800"',
]


# --------------------------------------------------------------------------- histories

PATTERNS = ["ppp", "fpp", "ffp", "pfp", "fff", "ppf"] * 3


def make_runs(patterns: list[str]) -> list[Run]:
    """Runs of jobs a, b, c whose outcomes follow ``patterns`` ("p" passed, "f" failed)."""
    return group_runs(
        JobResult(
            project="acme/app",
            run_id=str(index),
            started_at=f"2020-01-01T00:{index // 60:02d}:{index % 60:02d}Z",
            job=job,
            outcome="failed" if flag == "f" else "passed",
            duration_s=10.0 + ord(job),
        )
        for index, pattern in enumerate(patterns)
        for job, flag in zip("abc", pattern, strict=True)
    )
