"""Comparisons: the same energy on other grids ("what if elsewhere"), and a run against a baseline.

Regions are named as ISO 3166 alpha-3 country codes (``FRA``), cloud regions as
``provider:region`` (``gcp:europe-west9``), or ``greenest`` for the lowest-intensity cloud region
in codecarbon's offline data. The baseline comparison matches tests by node id; the figure a
regression limit is enforced on is the energy of the tests present in both runs, so adding or
removing tests is never a regression.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, final

from pytest_carbon.meter.intensity import UnknownCountryError, cloud_regions, country_intensity
from pytest_carbon.report.model import SessionReport
from pytest_carbon.report.units import format_energy, format_mass

#: The default "what if elsewhere" set: the greenest cloud region, a few grids people run CI on.
DEFAULT_REGIONS: Final = ("greenest", "SWE", "FRA", "GBR", "USA", "DEU", "IND", "gcp:us-central1")
GREENEST: Final = "greenest"
REGION_FIX: Final = (
    "use an ISO 3166 alpha-3 code such as FRA, a codecarbon cloud region such as "
    "gcp:europe-west9, 'greenest' or 'none'."
)


@final
class UnknownRegionError(ValueError):
    """The region is neither a country code nor a cloud region codecarbon has data for."""


@dataclass(frozen=True)
class Region:
    """A grid to compare with: what the user named, a readable label, its intensity and source."""

    key: str
    label: str
    g_per_kwh: float
    source: str


@dataclass(frozen=True)
class RegionFigure:
    """The session's energy priced on one grid."""

    region: Region
    emissions_g: float

    def ratio_to(self, emissions_g: float) -> float | None:
        """This grid's emissions as a fraction of ``emissions_g`` (None when that is zero)."""
        return self.emissions_g / emissions_g if emissions_g > 0 else None


def resolve_region(key: str) -> Region:
    """The grid named by ``key``; raise :class:`UnknownRegionError` naming the accepted forms."""
    text = key.strip()
    if text.lower() == GREENEST:
        best = min(cloud_regions(), key=lambda region: region.g_per_kwh)
        return Region(
            key=GREENEST,
            label=f"greenest: {best.provider} {best.region} ({best.country})",
            g_per_kwh=best.g_per_kwh,
            source="codecarbon cloud data",
        )
    provider, sep, name = text.partition(":")
    if sep:
        for region in cloud_regions():
            if region.provider == provider.lower() and region.region == name.lower():
                return Region(
                    key=f"{region.provider}:{region.region}",
                    label=f"{region.provider} {region.region} ({region.country})",
                    g_per_kwh=region.g_per_kwh,
                    source="codecarbon cloud data",
                )
        raise UnknownRegionError(f"unknown cloud region {key!r}")
    try:
        intensity = country_intensity(text)
    except UnknownCountryError:
        raise UnknownRegionError(f"unknown region {key!r}") from None
    return Region(
        key=intensity.country_iso or text.upper(),
        label=intensity.country_name or text.upper(),
        g_per_kwh=intensity.g_per_kwh,
        source=intensity.source,
    )


def region_keys(items: str | Iterable[str]) -> tuple[str, ...]:
    """Grids named in a comma-separated text or list, resolved and deduplicated.

    ``none`` alone means no grid. Raise :class:`UnknownRegionError` for an unknown name.
    """
    texts = [items] if isinstance(items, str) else list(items)
    keys = [key.strip() for text in texts for key in str(text).split(",") if key.strip()]
    if [key.lower() for key in keys] == ["none"]:
        return ()
    return tuple(dict.fromkeys(resolve_region(key).key for key in keys))


def compare_regions(energy_kwh: float, keys: Iterable[str]) -> list[RegionFigure]:
    """``energy_kwh`` priced on each named grid, greenest first; unknown names are skipped."""
    figures: list[RegionFigure] = []
    seen: set[str] = set()
    for key in keys:
        try:
            region = resolve_region(key)
        except UnknownRegionError:
            continue
        if region.key in seen:
            continue
        seen.add(region.key)
        figures.append(RegionFigure(region, energy_kwh * region.g_per_kwh))
    return sorted(figures, key=lambda figure: (figure.region.g_per_kwh, figure.region.key))


def regions_lines(report: SessionReport, figures: Sequence[RegionFigure]) -> list[str]:
    """Plain-text lines for the terminal: this run, then each grid and its ratio to this run."""
    if not figures:
        return []
    lines = [
        f"What if elsewhere (same {format_energy(report.energy_kwh)}; this run "
        f"{format_mass(report.emissions_g)} CO2e at {report.intensity.g_per_kwh:.4g} g/kWh):"
    ]
    for figure in figures:
        ratio = figure.ratio_to(report.emissions_g)
        times = f"  ×{ratio:.2g}" if ratio is not None else ""
        lines.append(
            f"  {figure.region.label:<44} {figure.region.g_per_kwh:>7.4g} g/kWh  "
            f"{format_mass(figure.emissions_g):>9}{times}"
        )
    return lines


@dataclass(frozen=True)
class TestChange:
    """One test's energy and emissions in the baseline and in this run."""

    __test__ = False  # not a pytest test class

    nodeid: str
    before_kwh: float
    after_kwh: float
    before_g: float
    after_g: float

    @property
    def delta_kwh(self) -> float:
        """Energy added (negative when saved)."""
        return self.after_kwh - self.before_kwh

    @property
    def change_pct(self) -> float | None:
        """Relative change of energy in percent (None when the baseline used none)."""
        return percent(self.before_kwh, self.after_kwh)


@dataclass(frozen=True)
class BaselineDiff:
    """This run against a baseline report: totals, the tests in both, added and removed tests."""

    baseline: str
    before_kwh: float
    after_kwh: float
    before_g: float
    after_g: float
    changes: tuple[TestChange, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def total_change_pct(self) -> float | None:
        """Change of the whole session's energy, in percent."""
        return percent(self.before_kwh, self.after_kwh)

    @property
    def common_before_kwh(self) -> float:
        """Baseline energy of the tests present in both runs."""
        return sum(change.before_kwh for change in self.changes)

    @property
    def common_after_kwh(self) -> float:
        """This run's energy of the tests present in both runs."""
        return sum(change.after_kwh for change in self.changes)

    @property
    def common_change_pct(self) -> float | None:
        """Change of the energy of the tests in both runs (what a regression limit enforces)."""
        return percent(self.common_before_kwh, self.common_after_kwh)

    def biggest(self, n: int) -> list[TestChange]:
        """The ``n`` tests whose energy changed most, either way (unchanged ones left out)."""
        moved = [change for change in self.changes if change.delta_kwh != 0]
        ordered = sorted(moved, key=lambda c: (-abs(c.delta_kwh), c.nodeid))
        return ordered[: max(n, 0)]


def percent(before: float, after: float) -> float | None:
    """``after`` relative to ``before`` in percent; None when ``before`` is not positive."""
    if before <= 0:
        return None
    return (after - before) / before * 100.0


def compare_baseline(report: SessionReport, baseline: SessionReport, name: str) -> BaselineDiff:
    """Match tests by node id and compare energy and emissions with ``baseline``."""
    before = {test.nodeid: test for test in baseline.tests}
    after = {test.nodeid: test for test in report.tests}
    changes = tuple(
        TestChange(
            nodeid=nodeid,
            before_kwh=before[nodeid].energy_kwh,
            after_kwh=test.energy_kwh,
            before_g=before[nodeid].emissions_g,
            after_g=test.emissions_g,
        )
        for nodeid, test in after.items()
        if nodeid in before
    )
    return BaselineDiff(
        baseline=Path(name).name,
        before_kwh=baseline.energy_kwh,
        after_kwh=report.energy_kwh,
        before_g=baseline.emissions_g,
        after_g=report.emissions_g,
        changes=changes,
        added=tuple(sorted(set(after) - set(before))),
        removed=tuple(sorted(set(before) - set(after))),
    )


def format_pct(value: float | None) -> str:
    """A signed percentage, or ``n/a`` when there is nothing to compare with."""
    return "n/a" if value is None else f"{value:+.1f}%"


def regression_failure(diff: BaselineDiff, limit_pct: float) -> str | None:
    """The failure line when the tests in both runs used more than ``limit_pct`` % more energy."""
    change = diff.common_change_pct
    if change is None or change <= limit_pct:
        return None
    before, after = format_energy(diff.common_before_kwh), format_energy(diff.common_after_kwh)
    return (
        f"carbon regression: the {len(diff.changes)} tests in both runs used {change:+.1f}% "
        f"energy ({before} → {after}) "
        f"against {diff.baseline}, over the {limit_pct:g}% limit of --carbon-fail-on-regression"
    )


def baseline_lines(diff: BaselineDiff, top: int = 5) -> list[str]:
    """Plain-text lines for the terminal: totals, tests in both runs, biggest changes."""
    lines = [
        f"Against baseline {diff.baseline}: session {format_energy(diff.before_kwh)} → "
        f"{format_energy(diff.after_kwh)} ({format_pct(diff.total_change_pct)}), "
        f"{format_mass(diff.before_g)} → {format_mass(diff.after_g)} CO2e",
        f"  {len(diff.changes)} tests in both runs: {format_energy(diff.common_before_kwh)} → "
        f"{format_energy(diff.common_after_kwh)} ({format_pct(diff.common_change_pct)}); "
        f"{len(diff.added)} new, {len(diff.removed)} gone",
    ]
    for change in diff.biggest(top):
        lines.append(
            f"  {format_pct(change.change_pct):>8}  {format_energy(change.before_kwh):>9} → "
            f"{format_energy(change.after_kwh):<9} {change.nodeid}"
        )
    return lines
