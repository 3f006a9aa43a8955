"""The HTML report: self-contained, escaped, and sortable in a real headless browser."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from carbon_factory import fixed_regions, make_report
from pytest_carbon.report.compare import compare_baseline
from pytest_carbon.report.html import render_html
from pytest_carbon.report.model import SessionReport

CHROMIUM = next(
    (path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="the browser check needs chromium (Debian: apt-get install -y chromium)",
)


def page(report: SessionReport) -> str:
    baseline = make_report(scale=0.5)
    return render_html(
        report,
        regions=fixed_regions(report.energy_kwh),
        diff=compare_baseline(report, baseline, "old.json"),
        failures=["carbon limit exceeded: example"],
    )


def test_page_fetches_nothing(report: SessionReport) -> None:
    text = page(report)
    assert text.startswith("<!DOCTYPE html>")
    for pattern in (r"\ssrc=", r"\shref=", r"url\(", r"@import", r"https?://"):
        assert not re.search(pattern, text), pattern
    assert "<style>" in text
    assert "<script>" in text
    assert text.count("<svg ") >= 4  # top tests, modules, two component bars, regions


def test_page_escapes_node_ids(report_factory: Callable[..., SessionReport]) -> None:
    report = report_factory(warnings=["<b>not bold</b>"])
    report.tests[0].nodeid = "tests/test_x.py::test_<script>alert(1)</script>"
    text = render_html(report)
    assert "<script>alert" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;not bold&lt;/b&gt;" in text


def test_page_shows_every_test_and_the_figures_behind_them(report: SessionReport) -> None:
    text = page(report)
    for test in report.tests:
        assert html.escape(test.nodeid) in text
    assert report.intensity.source in text
    assert "Greenland" in text
    assert "Against baseline" in text
    assert "carbon limit exceeded: example" in text


PROBE = """
<script>
(function () {
  function header(table, name) {
    var cells = document.querySelectorAll("#" + table + " thead th");
    for (var i = 0; i < cells.length; i++) {
      if (cells[i].textContent.trim() === name) { return cells[i]; }
    }
    throw new Error("no column " + name);
  }
  function order(table) {
    return Array.prototype.map.call(
      document.querySelectorAll("#" + table + " tbody tr"),
      function (row) { return row.cells[0].textContent; });
  }
  var seen = {initial: order("tests")};
  header("tests", "CPU").querySelector("button").click();
  seen.byCpu = order("tests");
  var energy = header("tests", "energy");
  energy.querySelector("button").click();
  seen.energyFirst = order("tests");
  seen.energyFirstSort = energy.getAttribute("aria-sort");
  energy.querySelector("button").click();
  seen.energySecond = order("tests");
  seen.energySecondSort = energy.getAttribute("aria-sort");
  header("tests", "test").querySelector("button").click();
  seen.byName = order("tests");
  header("modules", "tests").querySelector("button").click();
  seen.modulesByCount = order("modules");
  var filter = document.querySelector("input[data-filter=tests]");
  filter.value = "test_io";
  filter.dispatchEvent(new Event("input"));
  seen.filtered = Array.prototype.filter.call(
    document.querySelectorAll("#tests tbody tr"), function (row) { return !row.hidden; }
  ).length;
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(seen);
  document.body.appendChild(out);
})();
</script>
"""


def run_in_browser(tmp_path: Path, text: str) -> dict[str, object]:
    """Load the page with the probe in headless chromium and return what the probe saw."""
    assert CHROMIUM is not None
    probe = tmp_path / "probe.html"
    probe.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = subprocess.run(
        [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert found, f"probe did not run; chromium said: {result.stderr[-2000:]}"
    seen: dict[str, object] = json.loads(html.unescape(found.group(1)))
    return seen


@needs_chromium
def test_tables_sort_and_filter_in_a_browser(tmp_path: Path, report: SessionReport) -> None:
    seen = run_in_browser(tmp_path, page(report))
    by_energy = [t.nodeid for t in sorted(report.tests, key=lambda t: -t.energy_kwh)]
    assert seen["initial"] == [t.nodeid for t in report.top_tests(len(report.tests))]
    by_cpu = [t.nodeid for t in sorted(report.tests, key=lambda t: -t.cpu_s)]
    assert by_cpu != seen["initial"]  # the click must reorder the rows
    assert seen["byCpu"] == by_cpu
    assert seen["energyFirst"] == by_energy
    assert seen["energyFirstSort"] == "descending"
    assert seen["energySecond"] == by_energy[::-1]
    assert seen["energySecondSort"] == "ascending"
    names = seen["byName"]
    assert isinstance(names, list)
    assert names[0] == "tests/sub/test_skip.py::test_later"
    counts = {m.path: m.tests for m in report.by_module()}
    busiest = {path for path, n in counts.items() if n == max(counts.values())}
    modules = seen["modulesByCount"]
    assert isinstance(modules, list)
    assert modules[0] in busiest
    assert seen["filtered"] == sum("test_io" in t.nodeid for t in report.tests)
