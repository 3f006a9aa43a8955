"""Humane formatting of energy, mass and time, and everyday comparisons with named sources."""

from __future__ import annotations

from typing import Final

#: EEA: average CO2 of new passenger cars registered in Europe in 2023, type-approval (WLTP).
CAR_G_PER_KM: Final = 106.6
CAR_SOURCE: Final = "EEA 2023 new-car average, 106.6 gCO2/km"
LED_BULB_W: Final = 10.0


def format_energy(kwh: float) -> str:
    """Energy in the unit a person reads best: µJ, mJ, J, Wh or kWh (3 significant digits)."""
    joules = float(f"{kwh * 3.6e6:.3g}")
    if joules == 0:
        return "0 J"
    size = abs(joules)
    if size < 1e-3:
        return f"{joules * 1e6:.3g} µJ"
    if size < 1:
        return f"{joules * 1e3:.3g} mJ"
    if size < 3600:
        return f"{joules:.3g} J"
    if size < 3.6e6:
        return f"{joules / 3600:.3g} Wh"
    return f"{joules / 3.6e6:.3g} kWh"


def format_mass(grams: float) -> str:
    """CO2e mass: µg, mg, g, kg or t."""
    if abs(grams) < 1e-3:
        return f"{grams * 1e6:.3g} µg"
    if abs(grams) < 1:
        return f"{grams * 1e3:.3g} mg"
    if abs(grams) < 1000:
        return f"{grams:.3g} g"
    if abs(grams) < 1e6:
        return f"{grams / 1e3:.3g} kg"
    return f"{grams / 1e6:.3g} t"


def format_seconds(seconds: float) -> str:
    """A duration: ms, s, min or h."""
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    if seconds < 120:
        return f"{seconds:.3g} s"
    if seconds < 7200:
        return f"{seconds / 60:.3g} min"
    return f"{seconds / 3600:.3g} h"


def format_distance(metres: float) -> str:
    """A distance: mm, cm, m or km."""
    if metres < 0.01:
        return f"{metres * 1e3:.3g} mm"
    if metres < 1:
        return f"{metres * 1e2:.3g} cm"
    if metres < 1000:
        return f"{metres:.3g} m"
    return f"{metres / 1000:.3g} km"


def comparison(energy_kwh: float, emissions_g: float) -> str:
    """One line putting the figures in everyday terms, naming the factors used."""
    distance = format_distance(emissions_g / CAR_G_PER_KM * 1000)
    bulb_s = energy_kwh * 3.6e6 / LED_BULB_W
    return (
        f"≈ driving a car {distance} ({CAR_SOURCE}) · "
        f"≈ a {LED_BULB_W:g} W LED bulb lit for {format_seconds(bulb_s)}"
    )
