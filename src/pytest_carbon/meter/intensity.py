"""Grid carbon intensity (gCO2e/kWh) from codecarbon's offline data, or a user override."""

from __future__ import annotations

import csv
import functools
import importlib.util
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, final

from pytest_carbon.report.model import Intensity

WORLD_AVERAGE_LABEL = "codecarbon world average (IEA 2019)"


@final
class UnknownCountryError(ValueError):
    """The country code is not in codecarbon's offline energy-mix data."""


@functools.lru_cache(maxsize=1)
def codecarbon_data() -> Path:
    """codecarbon's ``data`` folder, found without importing codecarbon (its import is slow)."""
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("codecarbon is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@functools.lru_cache(maxsize=1)
def _energy_mix() -> dict[str, Any]:
    path = codecarbon_data() / "private_infra" / "global_energy_mix.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@functools.lru_cache(maxsize=1)
def _per_source() -> dict[str, Any]:
    path = codecarbon_data() / "private_infra" / "carbon_intensity_per_source.json"
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def world_average() -> Intensity:
    """codecarbon's world-average intensity, clearly labelled as such."""
    return Intensity(
        g_per_kwh=float(_per_source()["world_average"]),
        source=WORLD_AVERAGE_LABEL,
        country_iso=None,
        country_name="World (average)",
    )


def country_intensity(iso: str) -> Intensity:
    """The intensity of a country's grid (ISO 3166 alpha-3) from codecarbon's energy-mix data."""
    code = iso.strip().upper()
    entry = _energy_mix().get(code)
    if entry is None:
        raise UnknownCountryError(code)
    value = entry.get("carbon_intensity")
    if value is None:
        value = _intensity_from_mix(entry)
    year = entry.get("year")
    label = f"codecarbon:{code} {year}" if year else f"codecarbon:{code}"
    return Intensity(
        g_per_kwh=float(value),
        source=label,
        country_iso=code,
        country_name=str(entry.get("country_name") or code),
    )


def _intensity_from_mix(entry: dict[str, Any]) -> float:
    per_source = _per_source()
    total = float(entry["total_TWh"])
    weighted = 0.0
    for key, twh in entry.items():
        if key.endswith("_TWh") and key != "total_TWh":
            factor = per_source.get(key[: -len("_TWh")])
            if isinstance(factor, (int, float)):
                weighted += float(twh) / total * factor
    return weighted


def known_countries() -> list[str]:
    """Every ISO alpha-3 code codecarbon has offline data for."""
    return sorted(_energy_mix())


def resolve_intensity(country: str | None, override: float | None) -> Intensity:
    """The override if given, else the country's grid, else the world average."""
    if override is not None:
        base = country_intensity(country) if country else None
        return Intensity(
            g_per_kwh=override,
            source="user override",
            country_iso=base.country_iso if base else None,
            country_name=base.country_name if base else None,
        )
    if country:
        return country_intensity(country)
    return world_average()


@dataclass(frozen=True)
class CloudRegion:
    """One cloud region's grid intensity from codecarbon's cloud table."""

    provider: str
    region: str
    country: str
    g_per_kwh: float


@functools.lru_cache(maxsize=1)
def cloud_regions() -> tuple[CloudRegion, ...]:
    """Cloud regions with their intensity, from codecarbon's ``impact.csv``."""
    path = codecarbon_data() / "cloud" / "impact.csv"
    text = path.read_text(encoding="utf-8-sig")
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            rows.append(
                CloudRegion(
                    provider=row["provider"],
                    region=row["region"],
                    country=row["countryIsoCode"],
                    g_per_kwh=float(row["impact"]),
                )
            )
        except (KeyError, ValueError):
            continue
    return tuple(rows)
