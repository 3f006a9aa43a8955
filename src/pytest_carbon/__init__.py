"""pytest-carbon: the energy and carbon footprint of a test suite, per test, and how to cut it."""

from __future__ import annotations

from pytest_carbon.errors import CarbonError, CarbonWarning, InputError
from pytest_carbon.report.model import SCHEMA_VERSION, SessionReport, TestRecord

__version__ = "0.1.0"

__all__ = [
    "SCHEMA_VERSION",
    "CarbonError",
    "CarbonWarning",
    "InputError",
    "SessionReport",
    "TestRecord",
    "__version__",
]
