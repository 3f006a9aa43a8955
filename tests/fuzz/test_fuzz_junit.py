"""Fuzzing the JUnit XML loader: XML-ish noise, valid shapes with wrong values, entity bombs."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest
from fuzz_helpers import SLOW, SMOKE, Blob, blobs, check_input_error, load_or_input_error, rewrite
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pytest_carbon.errors import InputError
from pytest_carbon.matrix.history import FAILED, PASSED, iter_source

TOKENS = [
    "<",
    ">",
    "/>",
    "</",
    "<testsuite",
    "<testsuites",
    "</testsuite>",
    "<testcase",
    "<failure/>",
    "<error>",
    "<skipped/>",
    "<properties>",
    "<property",
    ' name="job"',
    ' value="x"',
    ' timestamp="2020-01-02T03:04:05"',
    ' time="1.5"',
    '="',
    '"',
    "'",
    "=",
    " ",
    "&amp;",
    "&lt;",
    "&#0;",
    "&#x1F600;",
    "&bogus;",
    "<![CDATA[",
    "]]>",
    "<!--",
    "-->",
    '<?xml version="1.0"?>',
    '<?xml version="1.0" encoding="latin-1"?>',
    '<?xml version="1.0" encoding="utf-16"?>',
    '<?xml version="1.0" encoding="bogus"?>',
    '<?xml version="1.0" encoding="shift_jis"?>',
    '<?xml version="1.0" encoding="rot13"?>',
    '<?xml version="1.0" encoding="idna"?>',
    "<!DOCTYPE t [",
    '<!ENTITY e "&e;">',
    '<!ENTITY x SYSTEM "file:///dev/zero">',
    "]>",
    "&e;",
    "&x;",
    "\x00",
    "\ufeff",
    "\u00e9",
]

ATTRIBUTE_VALUES = [
    "",
    "0",
    "-1",
    "nan",
    "inf",
    "1e999",
    "abc",
    "2020-01-02T03:04:05",
    "2020-01-02T03:04:05+01:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-05:00",
    "2020-02-30T00:00:00",
    "&<>\"'",
    "\u00e9\u4e2d",
]
values = st.one_of(st.sampled_from(ATTRIBUTE_VALUES), st.text(max_size=6))


def element(tag: str, attributes: dict[str, str], body: str = "") -> str:
    """One element as text, its attribute values escaped."""
    attrs = "".join(f" {name}={quoteattr(value)}" for name, value in attributes.items())
    return f"<{tag}{attrs}>{body}</{tag}>" if body else f"<{tag}{attrs}/>"


@st.composite
def junit_documents(draw: st.DrawFn) -> bytes:
    """A well-formed document of JUnit shape whose attribute values are often wrong."""
    names = st.sampled_from(["name", "value", "classname", "time", "timestamp", "tests", "x"])
    attributes = st.dictionaries(names, values, max_size=4)
    cases = []
    for _ in range(draw(st.integers(0, 4))):
        child = draw(st.sampled_from(["", "failure", "error", "skipped", "system-out"]))
        body = element(child, draw(attributes), escape(draw(values))) if child else ""
        cases.append(element("testcase", draw(attributes), body))
    props = [
        element("property", draw(st.dictionaries(st.sampled_from(["name", "value"]), values)))
        for _ in range(draw(st.integers(0, 3)))
    ]
    properties = element("properties", {}, "".join(props)) if props else ""
    suite_tag = draw(st.sampled_from(["testsuite", "testsuite", "testsuites", "results"]))
    suite = element(suite_tag, draw(attributes), properties + "".join(cases))
    if draw(st.booleans()):
        suite = element("testsuites", draw(attributes), suite * draw(st.integers(1, 2)))
    encoding = draw(st.sampled_from(["utf-8", "utf-16", "latin-1"]))
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>' if draw(st.booleans()) else ""
    return (declaration + suite).encode(encoding, "replace")


INPUTS = blobs(
    st.one_of(
        junit_documents(),
        st.lists(st.sampled_from(TOKENS), max_size=30).map(lambda parts: "".join(parts).encode()),
        st.binary(max_size=200),
    )
)


def check_junit(path: Path, raw: Blob) -> None:
    """``raw`` as a JUnit file loads as one well-formed job record or names ``path``."""
    rewrite(path, raw.data)
    records = load_or_input_error(lambda: list(iter_source(path)), path)
    if records is not None:
        (record,) = records
        assert record.outcome in (PASSED, FAILED)
        assert record.started_at.endswith("Z")
        assert set(record.failed_tests) <= set(record.test_outcomes or {})
        assert record.duration_s is not None
        assert record.duration_s >= 0


@pytest.mark.slow
@SLOW
@given(raw=INPUTS)
def test_junit_loader_slow(tmp_path: Path, raw: Blob) -> None:
    check_junit(tmp_path / "job.xml", raw)


@SMOKE
@given(raw=INPUTS)
@example(raw=Blob(b'<?xml version="1.0" encoding="bogus"?><testsuite/>'))
@example(raw=Blob(b'<?xml version="1.0" encoding="utf-32"?><testsuite/>'))
@example(raw=Blob(b'<?xml version="1.0" encoding="idna"?><testsuite/>'))
@example(raw=Blob(b'<testsuite timestamp="0001-01-01T00:00:00+01:00"/>'))
@example(raw=Blob(b'<testsuite timestamp="2020-01-02T03:04:05"><testcase name="a"/></testsuite>'))
def test_junit_loader(tmp_path: Path, raw: Blob) -> None:
    check_junit(tmp_path / "job.xml", raw)


def laughs(width: int, depth: int, payload: str = "lol") -> bytes:
    """A document whose entities nest ``depth`` deep, each expanding to ``width`` of the next."""
    entities = [f'<!ENTITY e0 "{payload}">']
    for level in range(1, depth + 1):
        entities.append(f'<!ENTITY e{level} "{f"&e{level - 1};" * width}">')
    dtd = "<!DOCTYPE testsuite [" + "".join(entities) + "]>"
    body = f'<testsuite timestamp="2020-01-02T03:04:05"><testcase name="&e{depth};"/></testsuite>'
    return (dtd + body).encode()


#: Expansion would reach 10**9 (billion laughs) or 10**8 bytes in one step (quadratic blow-up).
BOMBS = {
    "billion laughs": laughs(10, 9),
    "wide laughs": laughs(100, 5),
    "quadratic": laughs(20_000, 1, payload="x" * 5_000),
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_entity_bombs_are_refused_cheaply(tmp_path: Path, name: str) -> None:
    path = tmp_path / "bomb.xml"
    rewrite(path, BOMBS[name])
    tracemalloc.start()
    began = time.perf_counter()
    try:
        with pytest.raises(InputError) as caught:
            list(iter_source(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    check_input_error(caught.value, path)
    assert "amplification" in caught.value.message
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB to refuse {name}"
    assert time.perf_counter() - began < 5


@settings(SMOKE, max_examples=50)
@given(width=st.integers(2, 64), depth=st.integers(1, 8))
def test_entity_nesting_never_blows_up(tmp_path: Path, width: int, depth: int) -> None:
    """Any nesting either expands to a small document or is refused, both in bounded memory."""
    path = tmp_path / "nested.xml"
    rewrite(path, laughs(width, depth))
    tracemalloc.start()
    try:
        load_or_input_error(lambda: list(iter_source(path)), path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB for width {width}, depth {depth}"
