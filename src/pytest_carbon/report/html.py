"""The HTML view: one self-contained file (inline CSS, JS and SVG; nothing fetched from a network).

Charts of the costliest tests, the per-module breakdown, energy by component and other grids; a
sortable, filterable table of every test; the power model and sources behind the figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Final

from pytest_carbon.report.compare import BaselineDiff, RegionFigure, format_pct
from pytest_carbon.report.markdown import job_title, outcome_text
from pytest_carbon.report.model import SessionReport
from pytest_carbon.report.terminal import describe_power
from pytest_carbon.report.units import comparison, format_energy, format_mass, format_seconds

CHART_WIDTH: Final = 760
LABEL_WIDTH: Final = 300
VALUE_WIDTH: Final = 170
ROW_HEIGHT: Final = 24
LABEL_CHARS: Final = 44

STYLE: Final = """
:root { --fg: #1b1f23; --muted: #57606a; --line: #d0d7de; --bar: #2e7d32; --bg: #ffffff;
  --cpu: #1565c0; --ram: #8e24aa; --gpu: #ef6c00; --rest: #9e9e9e; --head: #f6f8fa;
  --this: #0d47a1; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 1.6em; margin: 0 0 4px; } h2 { font-size: 1.2em; margin: 32px 0 8px; }
.muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 150px; }
.card b { display: block; font-size: 1.4em; }
.failure { border-left: 4px solid #cf222e; background: #fff0f0; padding: 8px 12px; margin: 8px 0; }
svg { width: 100%; height: auto; display: block; }
svg text { font: 12px system-ui, sans-serif; fill: var(--fg); }
svg .bar { fill: var(--bar); } svg .cpu { fill: var(--cpu); } svg .ram { fill: var(--ram); }
svg .gpu { fill: var(--gpu); } svg .rest { fill: var(--rest); } svg .this { fill: var(--this); }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 8px; text-align: left; }
th { background: var(--head); position: sticky; top: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td code { word-break: break-all; }
th button { font: inherit; font-weight: 600; border: 0; background: none; cursor: pointer;
  padding: 0; color: inherit; }
th[aria-sort="ascending"] button::after { content: " ▲"; }
th[aria-sort="descending"] button::after { content: " ▼"; }
input[type=search] { font: inherit; padding: 4px 8px; width: 320px; margin: 4px 0 8px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dt { font-weight: 600; } dd { margin: 0; }
.legend span { display: inline-block; margin-right: 16px; }
.legend i { display: inline-block; width: 12px; height: 12px; margin-right: 4px;
  vertical-align: -1px; border-radius: 2px; }
"""

SCRIPT: Final = """
(function () {
  function sortTable(table, column, header) {
    var numeric = header.dataset.type === "number";
    var current = header.getAttribute("aria-sort");
    var descending = current === "none" ? numeric : current === "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.value || a.cells[column].textContent;
      var y = b.cells[column].dataset.value || b.cells[column].textContent;
      var order = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell) {
      cell.setAttribute("aria-sort", "none");
    });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      header.querySelector("button").addEventListener("click", function () {
        sortTable(table, column, header);
      });
    });
  });
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.dataset.filter);
    input.addEventListener("input", function () {
      var needle = input.value.toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.hidden = needle !== "" && row.cells[0].textContent.toLowerCase().indexOf(needle) < 0;
      });
    });
  });
})();
"""


def esc(text: object) -> str:
    """Text escaped for HTML content and attribute values."""
    return escape(str(text), quote=True)


def clip(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` cut to ``limit`` characters from the left (the end of a node id says most)."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def bar_chart(
    title: str, rows: Sequence[tuple[str, float, str]], highlight: str | None = None
) -> str:
    """A horizontal SVG bar chart of ``(label, value, value text)`` rows; ``highlight`` a label."""
    if not rows:
        return ""
    largest = max(value for _, value, _ in rows) or 1.0
    span = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    height = ROW_HEIGHT * len(rows) + 8
    parts = [
        f'<svg viewBox="0 0 {CHART_WIDTH} {height}" role="img" aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
    ]
    for index, (label, value, text) in enumerate(rows):
        y = 4 + index * ROW_HEIGHT
        width = max(value / largest * span, 0.5 if value > 0 else 0.0)
        parts.append(
            f"<g><title>{esc(label)}: {esc(text)}</title>"
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end">{esc(clip(label))}</text>'
            f'<rect class="{"this" if label == highlight else "bar"}" x="{LABEL_WIDTH}" '
            f'y="{y + 3}" width="{width:.1f}" height="16" '
            f'rx="2"/><text x="{LABEL_WIDTH + width + 6:.1f}" y="{y + 15}">{esc(text)}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def stacked_bar(title: str, parts: Sequence[tuple[str, str, float]]) -> str:
    """One stacked SVG bar of ``(label, css class, kWh)`` parts, with a legend."""
    total = sum(value for _, _, value in parts) or 1.0
    x = 0.0
    segments = []
    for label, css, value in parts:
        width = value / total * CHART_WIDTH
        segments.append(
            f'<rect class="{css}" x="{x:.1f}" y="0" width="{width:.1f}" height="28">'
            f"<title>{esc(label)}: {esc(format_energy(value))}</title></rect>"
        )
        x += width
    legend = "".join(
        f'<span><i class="{css}-key"></i>{esc(label)} {esc(format_energy(value))} '
        f"({value / total:.0%})</span>"
        for label, css, value in parts
    )
    return (
        f'<svg viewBox="0 0 {CHART_WIDTH} 28" role="img" aria-label="{esc(title)}">'
        f"<title>{esc(title)}</title>{''.join(segments)}</svg>"
        f'<p class="legend">{legend}</p>'
    )


def sortable_table(
    table_id: str, headers: Sequence[tuple[str, str]], rows: Sequence[Sequence[tuple[str, str]]]
) -> str:
    """A table sorted by a click on a header; cells are ``(html, sort value)``."""
    head = "".join(
        f'<th data-type="{kind}" aria-sort="none"{" class=num" if kind == "number" else ""}>'
        f'<button type="button">{esc(name)}</button></th>'
        for name, kind in headers
    )
    body = []
    for row in rows:
        cells = []
        for (content, value), (_, kind) in zip(row, headers, strict=True):
            css = ' class="num"' if kind == "number" else ""
            cells.append(f'<td{css} data-value="{esc(value)}">{content}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def tests_section(report: SessionReport) -> str:
    """Every test, sortable by any column and filterable by name."""
    headers = [
        ("test", "text"),
        ("outcome", "text"),
        ("wall", "number"),
        ("CPU", "number"),
        ("energy", "number"),
        ("CO2e", "number"),
        ("method", "text"),
    ]
    rows = [
        [
            (f"<code>{esc(t.nodeid)}</code>", t.nodeid),
            (esc(t.outcome + (" (over budget)" if t.budget_exceeded else "")), t.outcome),
            (esc(format_seconds(t.wall_s)), repr(t.wall_s)),
            (esc(format_seconds(t.cpu_s)), repr(t.cpu_s)),
            (esc(format_energy(t.energy_kwh)), repr(t.energy_kwh)),
            (esc(format_mass(t.emissions_g)), repr(t.emissions_g)),
            (esc(t.method), t.method),
        ]
        for t in report.top_tests(len(report.tests))
    ]
    return (
        f"<h2>All {len(report.tests)} tests</h2>"
        '<input type="search" placeholder="filter tests by name" data-filter="tests" '
        'aria-label="filter tests by name">' + sortable_table("tests", headers, rows)
    )


def modules_section(report: SessionReport) -> str:
    """Per-module chart and sortable table."""
    modules = report.by_module()
    total = report.emissions_g or 1.0
    chart = bar_chart(
        "Emissions per module",
        [(m.path, m.emissions_g, format_mass(m.emissions_g)) for m in modules[:15]],
    )
    headers = [
        ("module", "text"),
        ("tests", "number"),
        ("wall", "number"),
        ("energy", "number"),
        ("CO2e", "number"),
        ("share", "number"),
    ]
    rows = [
        [
            (f"<code>{esc(m.path)}</code>", m.path),
            (str(m.tests), str(m.tests)),
            (esc(format_seconds(m.wall_s)), repr(m.wall_s)),
            (esc(format_energy(m.energy_kwh)), repr(m.energy_kwh)),
            (esc(format_mass(m.emissions_g)), repr(m.emissions_g)),
            (f"{m.emissions_g / total:.1%}", repr(m.emissions_g / total)),
        ]
        for m in modules
    ]
    return "<h2>Per module</h2>" + chart + sortable_table("modules", headers, rows)


def components_section(report: SessionReport) -> str:
    """Energy by component, and tests against unattributed work."""
    energy = report.energy
    parts = [("CPU", "cpu", energy.cpu_kwh), ("RAM", "ram", energy.ram_kwh)]
    if energy.gpu_kwh > 0:
        parts.append(("GPU", "gpu", energy.gpu_kwh))
    split = [
        ("tests", "bar", report.attributed.total_kwh),
        (
            "unattributed (collection, session fixtures, plugin work)",
            "rest",
            report.unattributed.total_kwh,
        ),
    ]
    return (
        "<h2>Energy by component</h2>"
        + stacked_bar("Energy by component", parts)
        + stacked_bar("Energy of tests and unattributed work", split)
    )


def regions_section(report: SessionReport, figures: Sequence[RegionFigure]) -> str:
    """The same energy's emissions on other grids."""
    this_run = f"this run: {report.intensity.country_name or 'unknown'}"
    rows = [
        (
            this_run,
            report.emissions_g,
            f"{format_mass(report.emissions_g)} ({report.intensity.g_per_kwh:.4g} g/kWh)",
        )
    ]
    rows += [
        (
            f.region.label,
            f.emissions_g,
            f"{format_mass(f.emissions_g)} ({f.region.g_per_kwh:.4g} g/kWh)",
        )
        for f in figures
    ]
    rows.sort(key=lambda row: row[1])
    return (
        f"<h2>What if elsewhere</h2><p class=muted>The same "
        f"{esc(format_energy(report.energy_kwh))} on other grids (codecarbon's offline data).</p>"
        + bar_chart("Emissions of this run on other grids", rows, highlight=this_run)
    )


def baseline_section(diff: BaselineDiff) -> str:
    """Totals against the baseline and the tests whose energy changed most."""
    rows = "".join(
        f"<tr><td><code>{esc(c.nodeid)}</code></td><td class=num>"
        f"{esc(format_energy(c.before_kwh))}</td><td class=num>{esc(format_energy(c.after_kwh))}"
        f"</td><td class=num>{esc(format_pct(c.change_pct))}</td></tr>"
        for c in diff.biggest(10)
    )
    return (
        f"<h2>Against baseline <code>{esc(diff.baseline)}</code></h2>"
        f"<p>Session {esc(format_energy(diff.before_kwh))} → {esc(format_energy(diff.after_kwh))}"
        f" ({esc(format_pct(diff.total_change_pct))}); the {len(diff.changes)} tests in both runs "
        f"{esc(format_energy(diff.common_before_kwh))} → "
        f"{esc(format_energy(diff.common_after_kwh))} ({esc(format_pct(diff.common_change_pct))})"
        f"; {len(diff.added)} new, {len(diff.removed)} gone.</p>"
        "<table><thead><tr><th>test</th><th class=num>baseline</th><th class=num>this run</th>"
        f"<th class=num>change</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def method_section(report: SessionReport) -> str:
    """How the figures were produced: method, power model, grid, sources, notes, warnings."""
    items = [
        ("Method", report.power.method),
        ("Power model", describe_power(report)),
        (
            "Grid intensity",
            f"{report.intensity.g_per_kwh:.4g} gCO2e/kWh, "
            f"{report.intensity.country_name or 'unknown'} (source: {report.intensity.source})",
        ),
    ]
    items += [(f"Source of {k}", v) for k, v in sorted(report.power.sources.items())]
    items += [("Note", note) for note in report.power.notes]
    items += [("Warning", warning) for warning in report.warnings]
    items.append(
        (
            "Versions",
            f"pytest-carbon {report.tool_version}, codecarbon "
            f"{report.codecarbon_version or 'unavailable'}",
        )
    )
    body = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in items)
    return f"<h2>How this was measured</h2><dl>{body}</dl>"


def render_html(
    report: SessionReport,
    *,
    top: int = 10,
    regions: Sequence[RegionFigure] = (),
    diff: BaselineDiff | None = None,
    failures: Sequence[str] = (),
) -> str:
    """The whole report as one self-contained HTML page."""
    title = f"Carbon footprint: {job_title(report.identity)}"
    cards = [
        ("energy", format_energy(report.energy_kwh)),
        ("emissions", f"{format_mass(report.emissions_g)} CO2e"),
        ("wall time", format_seconds(report.wall_s)),
        ("tests", str(len(report.tests))),
        ("grid", f"{report.intensity.g_per_kwh:.4g} g/kWh"),
    ]
    body = [
        f"<h1>{esc(title)}</h1>",
        f'<p class="muted">{esc(outcome_text(report))} · {esc(report.started_at)} → '
        f"{esc(report.finished_at)} · {esc(comparison(report.energy_kwh, report.emissions_g))}</p>",
        '<div class="cards">'
        + "".join(f'<div class="card">{esc(k)}<b>{esc(v)}</b></div>' for k, v in cards)
        + "</div>",
    ]
    body += [f'<p class="failure">{esc(failure)}</p>' for failure in failures]
    top_tests = report.top_tests(top)
    if top_tests:
        body.append(f"<h2>Top {len(top_tests)} tests by emissions</h2>")
        body.append(
            bar_chart(
                f"Top {len(top_tests)} tests by emissions",
                [(t.nodeid, t.emissions_g, format_mass(t.emissions_g)) for t in top_tests],
            )
        )
    if report.tests:
        body.append(modules_section(report))
    body.append(components_section(report))
    if regions:
        body.append(regions_section(report, regions))
    if diff is not None:
        body.append(baseline_section(diff))
    if report.tests:
        body.append(tests_section(report))
    body.append(method_section(report))
    legend_css = "".join(
        f".{name}-key {{ background: var(--{var}); }}\n"
        for name, var in (
            ("cpu", "cpu"),
            ("ram", "ram"),
            ("gpu", "gpu"),
            ("bar", "bar"),
            ("rest", "rest"),
        )
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{STYLE}{legend_css}</style></head>\n<body>"
        + "\n".join(body)
        + f"\n<script>{SCRIPT}</script></body></html>\n"
    )
