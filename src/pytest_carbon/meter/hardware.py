"""codecarbon's view of this machine, remembered in pytest's cache between runs.

Detecting the hardware is the expensive part of codecarbon (about 1.6 s of CPU, mostly
py-cpuinfo), and its answer does not change while the machine does not. After one run has
detected it, later runs on the same machine read it from pytest's cache (``.pytest_cache``) and
start no codecarbon process at all: no start-up cost, no CPU taken from the tests, nothing to
wait for at the end of a short session. The entry is used only when the machine's fingerprint
(CPU model, CPU count, memory, GPUs, codecarbon version) is unchanged; ``--cache-clear`` or
``--carbon-detect`` detects again.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Protocol, final

from pytest_carbon.meter.power import SidecarResult, cpuinfo_value, ram_bytes

#: Key of the entry in pytest's cache (``.pytest_cache/v/carbon/hardware``).
CACHE_KEY: Final = "carbon/hardware"
#: Version of the cached entry's layout.
ENTRY_VERSION: Final = 1


class Cache(Protocol):
    """What is used of pytest's ``config.cache``."""

    def get(self, key: str, default: Any) -> Any: ...  # noqa: D102

    def set(self, key: str, value: object) -> None: ...  # noqa: D102


def fingerprint(gpu_count: int = 0) -> dict[str, Any]:
    """What must not change for a cached detection to stay valid (cheap to compute)."""
    return {
        "cpu_model": cpu_model_name(),
        "cpu_count": os.cpu_count(),
        "ram_bytes": ram_bytes(),
        "gpu_count": gpu_count,
        "machine": platform.machine(),
        "codecarbon": codecarbon_version(),
    }


def cpu_model_name() -> str:
    """The CPU's model name as the kernel reports it (``platform.processor()`` elsewhere)."""
    return cpuinfo_value("model name") or platform.processor()


def codecarbon_version() -> str | None:
    """The installed codecarbon's version, without importing it.

    Read from the ``Version:`` line of the metadata installed beside the package: asking
    ``importlib.metadata`` would parse the whole file, long description included, on every
    session. Any other layout falls back to it.
    """
    from importlib.util import find_spec

    try:
        spec = find_spec("codecarbon")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return None
    if spec.origin:
        found = sorted(Path(spec.origin).parent.parent.glob("codecarbon-*.dist-info"))
        if len(found) == 1:
            version = metadata_version(found[0] / "METADATA")
            if version is not None:
                return version
    return _metadata_version()


def metadata_version(path: Path) -> str | None:
    """The ``Version:`` header of a ``METADATA`` file (None when unreadable or absent)."""
    try:
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():  # the headers end at the first blank line
                    break
                name, sep, value = line.partition(":")
                if sep and name == "Version":
                    return value.strip()
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _metadata_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("codecarbon")
    except PackageNotFoundError:
        return None


def load(cache: Cache | None, current: Mapping[str, Any]) -> tuple[dict[str, Any], str] | None:
    """The cached hardware and the date it was detected, when valid for ``current``."""
    if cache is None:
        return None
    entry = cache.get(CACHE_KEY, None)
    if not isinstance(entry, dict) or entry.get("version") != ENTRY_VERSION:
        return None
    hardware = entry.get("hardware")
    if entry.get("fingerprint") != dict(current) or not isinstance(hardware, dict):
        return None
    if not isinstance(hardware.get("ram_watts"), (int, float)):
        return None
    return hardware, str(entry.get("detected_on", "?"))


def store(cache: Cache | None, current: Mapping[str, Any], hardware: Mapping[str, Any]) -> None:
    """Remember a successful detection; a cache that cannot be written is not an error."""
    if cache is None:
        return
    entry = {
        "version": ENTRY_VERSION,
        "fingerprint": dict(current),
        "hardware": dict(hardware),
        "detected_on": dt.date.today().isoformat(),
    }
    try:
        cache.set(CACHE_KEY, entry)
    except Exception:  # noqa: BLE001 - pytest warns about an unwritable cache itself
        return


@final
class CachedHardware:
    """Stands in for the codecarbon sidecar when the hardware is known from the cache."""

    def __init__(self, hardware: dict[str, Any], detected_on: str) -> None:
        self.hardware = hardware
        self.detected_on = detected_on
        self.note: str | None = (
            f"Hardware as codecarbon detected it on {detected_on} (pytest cache); codecarbon "
            "did not run, so its own estimate is absent. --carbon-detect runs it again."
        )

    def start(self) -> None:
        """Nothing to start."""

    def request_stop(self) -> None:
        """Nothing to stop."""

    def detected(self) -> dict[str, Any] | None:
        """The cached hardware."""
        return self.hardware

    def finish(self) -> SidecarResult:
        """The cached hardware, with no estimate and no CPU spent."""
        return SidecarResult(hardware=self.hardware)

    def abandon(self) -> None:
        """Nothing runs."""
