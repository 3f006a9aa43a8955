"""Cheap cumulative counters read at phase boundaries: wall clock, process CPU, RAPL, NVML.

A reading is a plain tuple so that the hot path allocates little and crosses to an xdist
controller as JSON. Energy readers are optional; one that fails is dropped after a single
:class:`CarbonWarning`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from time import perf_counter_ns, process_time_ns
from types import SimpleNamespace
from typing import Any, Final, final

from pytest_carbon.errors import CarbonWarning

RAPL_ROOT: Final = Path("/sys/class/powercap")

#: (wall ns, cpu ns, rapl µJ or None, gpu mJ or None)
Reading = tuple[int, int, "int | None", "int | None"]


if sys.platform == "win32":  # pragma: no cover - no resource module on Windows
    _NO_CHILDREN: Final = SimpleNamespace(ru_utime=0.0, ru_stime=0.0)

    def children_usage() -> Any:
        """Resource usage of ended child processes (not visible on Windows): always none."""
        return _NO_CHILDREN

else:
    from resource import RUSAGE_CHILDREN, getrusage

    #: Resource usage of this process's children that have ended and been waited for
    #: (``ru_utime`` and ``ru_stime`` in seconds): one C call, no Python frame.
    children_usage: Callable[[], Any] = partial(getrusage, RUSAGE_CHILDREN)


def children_cpu_ns() -> int:
    """CPU time of this process's children that have ended and been waited for, in ns."""
    children = children_usage()
    return int((children.ru_utime + children.ru_stime) * 1e9)


def cpu_time_ns() -> int:
    """CPU time of this process and of its children that have ended, in nanoseconds."""
    return process_time_ns() + children_cpu_ns()


@final
class RaplReader:
    """Sums the package ``energy_uj`` counters of every CPU socket, unwrapping each counter."""

    def __init__(self, domains: Sequence[tuple[Path, int]]) -> None:
        self._files = [path for path, _ in domains]
        self._ranges = [max_range for _, max_range in domains]
        self._last = [self._read_one(path) for path in self._files]
        self._total = 0

    @staticmethod
    def _read_one(path: Path) -> int:
        return int(path.read_text().strip())

    def read_uj(self) -> int:
        """Monotonic energy since this reader was created, in µJ (counter wrap-around handled)."""
        for index, path in enumerate(self._files):
            value = self._read_one(path)
            self._total += unwrap_delta(self._last[index], value, self._ranges[index])
            self._last[index] = value
        return self._total


def unwrap_delta(before: int, after: int, max_range: int) -> int:
    """The increase of a counter that wraps to zero after ``max_range``."""
    if after >= before:
        return after - before
    return max_range - before + after


def find_rapl_domains(root: Path = RAPL_ROOT) -> list[tuple[Path, int]]:
    """The readable package-level RAPL domains under ``root``: (energy file, max range)."""
    domains: list[tuple[Path, int]] = []
    if not root.is_dir():
        return domains
    for zone in sorted(root.glob("intel-rapl:*")):
        if zone.name.count(":") != 1:  # sub-zones (core, uncore, dram) are inside the package
            continue
        name = (zone / "name").read_text().strip() if (zone / "name").exists() else ""
        if name and not name.startswith("package"):
            continue
        energy = zone / "energy_uj"
        max_file = zone / "max_energy_range_uj"
        if not energy.exists():
            continue
        max_range = int(max_file.read_text().strip()) if max_file.exists() else 2**32
        domains.append((energy, max_range))
    return domains


def open_rapl(root: Path = RAPL_ROOT) -> tuple[RaplReader | None, str | None]:
    """A RAPL reader, or None and the reason it is not available (None when simply absent)."""
    try:
        domains = find_rapl_domains(root)
        if not domains:
            return None, None
        return RaplReader(domains), None
    except PermissionError:
        return None, (
            "RAPL energy counters exist but are not readable (permission denied); "
            "using the CPU-time model. Make /sys/class/powercap/intel-rapl:*/energy_uj "
            "readable to measure CPU energy directly."
        )
    except (OSError, ValueError) as exc:
        return None, f"RAPL energy counters could not be read ({exc}); using the CPU-time model."


@final
class NvmlReader:
    """Sums NVML's total-energy counters (mJ since driver load) over all NVIDIA GPUs."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        nvml.nvmlInit()
        count = nvml.nvmlDeviceGetCount()
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self.names = [_decode(nvml.nvmlDeviceGetName(h)) for h in self._handles]
        self.read_mj()  # fail now, not in the middle of a test

    @property
    def count(self) -> int:
        """Number of GPUs read."""
        return len(self._handles)

    def read_mj(self) -> int:
        """Total energy of every GPU, in mJ."""
        get = self._nvml.nvmlDeviceGetTotalEnergyConsumption
        return sum(int(get(handle)) for handle in self._handles)


def _decode(name: Any) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def open_nvml(importer: Callable[[], Any] | None = None) -> tuple[NvmlReader | None, str | None]:
    """An NVML reader, or None and why (no reason when there is simply no GPU or no pynvml)."""
    try:
        nvml = importer() if importer else _import_pynvml()
    except ImportError:
        return None, None
    try:
        reader = NvmlReader(nvml)
    except Exception as exc:  # NVMLError subclasses; no GPU or no driver is not a failure
        if type(exc).__name__ in {"NVMLError_LibraryNotFound", "NVMLError_DriverNotLoaded"}:
            return None, None
        return None, f"NVML GPU energy counter unavailable ({exc}); GPU energy not measured."
    if reader.count == 0:
        return None, None
    return reader, None


#: Present on Linux whenever an NVIDIA driver is loaded.
NVIDIA_DRIVER: Final = Path("/proc/driver/nvidia")


def _import_pynvml() -> Any:
    if sys.platform == "linux" and not NVIDIA_DRIVER.exists():
        raise ImportError("no NVIDIA driver loaded")  # skip the import: no GPU to read
    import pynvml

    return pynvml


@final
class Counters:
    """Reads every available counter at once; a failing energy reader is dropped, with a warning."""

    def __init__(self, rapl: RaplReader | None = None, nvml: NvmlReader | None = None) -> None:
        self.rapl = rapl
        self.nvml = nvml
        self.warnings: list[str] = []

    @classmethod
    def detect(cls, *, use_rapl: bool = True, use_nvml: bool = True) -> Counters:
        """Counters with the energy readers this machine offers; reasons for missing ones kept."""
        rapl, rapl_note = open_rapl() if use_rapl else (None, None)
        nvml, nvml_note = open_nvml() if use_nvml else (None, None)
        counters = cls(rapl, nvml)
        for note in (rapl_note, nvml_note):
            if note:
                counters.degrade(note)
        return counters

    @property
    def has_energy(self) -> bool:
        """True when a hardware energy counter (RAPL or NVML) is read besides the clocks."""
        return self.rapl is not None or self.nvml is not None

    @property
    def gpu_count(self) -> int:
        """How many GPUs the NVML reader reads (0 without one)."""
        return self.nvml.count if self.nvml is not None else 0

    @property
    def methods(self) -> tuple[str, ...]:
        """The energy methods these counters support besides the CPU-time model."""
        return tuple(name for name, reader in (("rapl", self.rapl), ("nvml", self.nvml)) if reader)

    def degrade(self, message: str) -> None:
        """Record and warn (once per message) that a measurement fell back."""
        if message in self.warnings:
            return
        self.warnings.append(message)
        # ``-W error`` must not turn a degraded measurement into a failure
        with contextlib.suppress(Warning):
            warnings.warn(CarbonWarning(message), stacklevel=2)

    def read(self) -> Reading:
        """One reading of every counter (the hot path: about a microsecond without RAPL/NVML)."""
        if self.rapl is None and self.nvml is None:
            return perf_counter_ns(), cpu_time_ns(), None, None
        return self._read_energy()

    def _read_energy(self) -> Reading:
        wall = perf_counter_ns()
        cpu = cpu_time_ns()
        return (wall, cpu, *self.read_energy())

    def read_energy(self) -> tuple[int | None, int | None]:
        """The energy counters alone: RAPL µJ and GPU mJ, None where not read."""
        rapl = nvml = None
        if self.rapl is not None:
            try:
                rapl = self.rapl.read_uj()
            except (OSError, ValueError) as exc:
                self.rapl = None
                self.degrade(f"RAPL counter stopped answering ({exc}); using the CPU-time model.")
        if self.nvml is not None:
            try:
                nvml = self.nvml.read_mj()
            except Exception as exc:  # NVMLError
                self.nvml = None
                self.degrade(f"NVML counter stopped answering ({exc}); GPU energy not measured.")
        return rapl, nvml


def delta(start: Reading, end: Reading) -> list[float | None]:
    """``[wall s, cpu s, rapl J or None, gpu J or None]`` between two readings (JSON-able)."""
    rapl = None if start[2] is None or end[2] is None else (end[2] - start[2]) / 1e6
    gpu = None if start[3] is None or end[3] is None else (end[3] - start[3]) / 1e3
    return [(end[0] - start[0]) / 1e9, max(end[1] - start[1], 0) / 1e9, rapl, gpu]


def usable_vcpus() -> tuple[float, str]:
    """How many vCPUs this process may use (affinity, then cgroup quota), and how that was found."""
    try:
        count: float = len(os.sched_getaffinity(0))
        source = "CPU affinity"
    except AttributeError:  # pragma: no cover - macOS, Windows
        count = float(os.cpu_count() or 1)
        source = "os.cpu_count"
    quota = cgroup_cpu_quota()
    if quota is not None and quota < count:
        return quota, "cgroup CPU quota"
    return count, source


def cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The cgroup CPU limit in CPUs (v2 ``cpu.max`` or v1 CFS quota), or None when unlimited."""
    try:
        v2 = root / "cpu.max"
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1_quota = root / "cpu" / "cpu.cfs_quota_us"
        if v1_quota.exists():
            quota_us = int(v1_quota.read_text())
            period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
            return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
    return None
