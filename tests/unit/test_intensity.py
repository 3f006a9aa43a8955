from __future__ import annotations

import pytest

from pytest_carbon.meter.intensity import (
    UnknownCountryError,
    cloud_regions,
    country_intensity,
    known_countries,
    resolve_intensity,
    world_average,
)


def test_country_intensity_names_its_source() -> None:
    france = country_intensity("fra")
    assert france.country_iso == "FRA"
    assert france.source.startswith("codecarbon:FRA")
    assert 0 < france.g_per_kwh < country_intensity("POL").g_per_kwh


def test_unknown_country_raises() -> None:
    with pytest.raises(UnknownCountryError):
        country_intensity("XYZ")


def test_world_average_is_labelled() -> None:
    world = world_average()
    assert "world average" in world.source
    assert world.country_iso is None


def test_override_keeps_country_name() -> None:
    intensity = resolve_intensity("DEU", 123.0)
    assert intensity.g_per_kwh == 123.0
    assert intensity.source == "user override"
    assert intensity.country_iso == "DEU"
    assert resolve_intensity(None, None) == world_average()


def test_offline_tables_are_there() -> None:
    assert "USA" in known_countries()
    assert any(region.provider == "gcp" for region in cloud_regions())
