"""pytest-carbon: the energy and carbon footprint of a test suite, per test, and how to cut it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from pytest_carbon.errors import CarbonError, CarbonWarning, InputError
    from pytest_carbon.report.model import SCHEMA_VERSION, SessionReport, TestRecord

_EXPORTS = {
    "CarbonError": "pytest_carbon.errors",
    "CarbonWarning": "pytest_carbon.errors",
    "InputError": "pytest_carbon.errors",
    "SCHEMA_VERSION": "pytest_carbon.report.model",
    "SessionReport": "pytest_carbon.report.model",
    "TestRecord": "pytest_carbon.report.model",
}


def __getattr__(name: str) -> Any:
    """Re-export on first use: loading the pytest plugin imports nothing it does not need."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_carbon' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
