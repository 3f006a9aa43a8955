"""The session power model: codecarbon's hardware view, scaled to the vCPUs this run may use.

codecarbon runs in a sidecar process (:mod:`pytest_carbon.meter.sidecar`) started when the session
starts, so its ~1.6 s cold start overlaps collection and tests instead of delaying them.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, final

from pytest_carbon.report.model import METHOD_MODEL, METHOD_NVML, METHOD_RAPL, PowerModel

#: codecarbon's figure for a CPU thread it cannot look up (``DEFAULT_POWER_PER_CORE``).
DEFAULT_WATTS_PER_VCPU: Final = 4.0
#: Share of full CPU power drawn when idle; codecarbon's load model floors at 10 % of TDP.
IDLE_FRACTION: Final = 0.1
#: codecarbon's historical rule for RAM: 3 W per 8 GB (used only when codecarbon is unavailable).
RAM_WATTS_PER_GB: Final = 3.0 / 8.0


@dataclass(frozen=True)
class Overrides:
    """User-supplied figures that replace the detected ones."""

    cpu_watts: float | None = None
    ram_watts: float | None = None
    pue: float = 1.0


@dataclass
class SidecarResult:
    """What the codecarbon sidecar said: hardware, its own machine-level estimate, failures."""

    hardware: dict[str, Any] | None = None
    estimate: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    cpu_s: float = 0.0


class HardwareSource(Protocol):
    """Where the session's hardware figures come from: the codecarbon sidecar, or a cache."""

    #: Said in the report about the source (None: nothing to say).
    note: str | None

    def start(self) -> None:
        """The session starts."""

    def request_stop(self) -> None:
        """The session ends: ask for the last figures, without waiting."""

    def detected(self) -> dict[str, Any] | None:
        """The hardware (waits for it when still being detected)."""

    def finish(self) -> SidecarResult:
        """Everything known, once the source has finished."""

    def abandon(self) -> None:
        """pytest is shutting down: stop and reap whatever still runs."""


@final
class Sidecar:
    """Starts codecarbon in a child process and collects its answers at the end of the session.

    At the end: :meth:`request_stop` first, then :meth:`detected` (the hardware, known since the
    sidecar became ready) to price the tests while codecarbon takes its last reading, then
    :meth:`finish` for its estimate. The process is not waited for; :meth:`abandon` reaps it.
    """

    note: str | None = None

    def __init__(
        self,
        country: str | None,
        timeout_s: float = 60.0,
        remember: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._country = country
        self._timeout_s = timeout_s
        self._remember = remember
        self._process: subprocess.Popen[bytes] | None = None
        self._start_error: str | None = None
        self._result = SidecarResult()
        self._pending = b""
        self._seen: set[str] = set()
        self._eof = False
        self._deadline: float | None = None

    def start(self) -> None:
        """Launch the sidecar; never raises (a failure is reported by :meth:`finish`)."""
        env = dict(os.environ, CODECARBON_LOG_LEVEL="error", PYTHONWARNINGS="ignore")
        command = [sys.executable, "-m", "pytest_carbon.meter.sidecar", self._country or "-"]
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
                bufsize=0,
            )
        except OSError as exc:
            self._start_error = f"codecarbon could not be started ({exc})"

    def request_stop(self) -> None:
        """Ask codecarbon for its last reading without waiting for it; never raises."""
        process = self._process
        if process is None or process.stdin is None or process.stdin.closed:
            return
        self._deadline = time.monotonic() + self._timeout_s
        with contextlib.suppress(OSError):  # a child that already died: its output says why
            process.stdin.write(b"stop\n")
        with contextlib.suppress(OSError):
            process.stdin.close()

    def detected(self) -> dict[str, Any] | None:
        """The hardware codecarbon detected (None when it failed before knowing)."""
        self._read_until({"ready", "error"})
        return self._result.hardware

    def finish(self) -> SidecarResult:
        """Stop codecarbon and return what it reported; never raises."""
        result = self._result
        if self._process is None:
            result.errors.append(self._start_error or "codecarbon was not started")
            return result
        self.request_stop()
        self._read_until({"stopped", "error"})
        if self._eof and not self._seen & {"stopped", "error"}:
            self._process.wait()
        if not result.errors and (result.hardware is None or result.estimate is None):
            stage = "before detecting the hardware" if result.hardware is None else "mid-session"
            status = self._process.poll()
            result.errors.append(
                f"codecarbon stopped {stage} (exit status {status}); "
                "its machine-level estimate is missing"
            )
        if not result.errors and result.hardware is not None and self._remember is not None:
            self._remember(result.hardware)
            self._remember = None
        return result

    def abandon(self) -> None:
        """Stop the sidecar if it still runs and reap it (its answers are in, or not needed)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()

    def _read_until(self, events: set[str]) -> None:
        """Read protocol lines until one of ``events`` arrives, the output ends, or time is up."""
        process = self._process
        if process is None or process.stdout is None:
            return
        fd = process.stdout.fileno()
        deadline = self._deadline or time.monotonic() + self._timeout_s
        while not (self._seen & events) and not self._eof:
            left = deadline - time.monotonic()
            if left <= 0 or not _readable(fd, left):
                process.kill()
                self._eof = True
                self._result.errors.append(
                    f"codecarbon did not answer within {self._timeout_s:.0f} s"
                )
                return
            chunk = os.read(fd, 65536)
            if not chunk:
                self._eof = True
            self._pending += chunk
            *lines, self._pending = self._pending.split(b"\n")
            if self._eof:
                lines.append(self._pending)
            for line in lines:
                event = parse_sidecar_line(line.decode("utf-8", "replace"), self._result)
                if event:
                    self._seen.add(event)


def _readable(fd: int, timeout_s: float) -> bool:
    """True when ``fd`` has data (or end of file) within ``timeout_s``."""
    if os.name != "posix":  # pragma: no cover - select() cannot wait on pipes there: block
        return True
    ready, _, _ = select.select([fd], [], [], timeout_s)
    return bool(ready)


def parse_sidecar_line(line: str, result: SidecarResult) -> str | None:
    """Fill ``result`` from one line of the sidecar; the event it carried, if any."""
    try:
        message = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    event = message.pop("event", None)
    if event == "ready":
        result.hardware = message
    elif event == "stopped":
        result.cpu_s = float(message.pop("cpu_s", 0.0))
        result.estimate = message
    elif event == "error":
        result.cpu_s = float(message.get("cpu_s", 0.0))
        stage = message.get("stage", "?")
        result.errors.append(f"codecarbon failed at {stage}: {message.get('message', '')}")
    else:
        return None
    return str(event)


def cpuinfo_value(key: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The value of the first ``key`` line of ``/proc/cpuinfo`` (None when absent or unreadable)."""
    try:
        with cpuinfo.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                name, sep, value = line.partition(":")
                if sep and name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


def runs_in_vm(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU flags say a hypervisor is present (the socket is then not all ours)."""
    return "hypervisor" in (cpuinfo_value("flags", cpuinfo) or "").split()


def ram_bytes() -> int:
    """Physical memory of the machine, in bytes (0 when unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 0


def total_ram_gb() -> float:
    """Physical memory of the machine, in GB (0 when unknown)."""
    return ram_bytes() / 1024**3


def build_power_model(
    hardware: dict[str, Any] | None,
    *,
    vcpus: float,
    vcpus_source: str,
    overrides: Overrides,
    energy_methods: tuple[str, ...] = (),
    visible_cpus: int | None = None,
    in_vm: bool = False,
    gpu_count: int = 0,
    gpu_model: str | None = None,
) -> PowerModel:
    """Combine codecarbon's hardware view, the usable vCPUs and the user's overrides."""
    hardware = hardware or {}
    visible = visible_cpus or os.cpu_count() or 1
    notes: list[str] = []
    sources: dict[str, str] = {}
    tdp = hardware.get("cpu_tdp_w")
    cpu_model = str(hardware.get("cpu_model") or "unknown CPU")

    if overrides.cpu_watts is not None:
        per_vcpu = overrides.cpu_watts / vcpus
        sources["cpu_watts"] = "user override"
    elif tdp:
        per_vcpu = float(tdp) / visible
        sources["cpu_watts"] = f"codecarbon TDP {tdp:g} W / {visible} visible CPUs"
        if in_vm and per_vcpu > DEFAULT_WATTS_PER_VCPU:
            notes.append(
                f"codecarbon's TDP ({tdp:g} W) is for the whole CPU socket, but this virtual "
                f"machine sees only {visible} of its threads; counting "
                f"{DEFAULT_WATTS_PER_VCPU:g} W per vCPU (codecarbon's per-thread figure) instead."
            )
            per_vcpu = DEFAULT_WATTS_PER_VCPU
            sources["cpu_watts"] = "codecarbon per-thread default (socket not visible in a VM)"
    else:
        per_vcpu = DEFAULT_WATTS_PER_VCPU
        sources["cpu_watts"] = "codecarbon per-thread default (CPU TDP unknown)"
    cpu_watts = per_vcpu * vcpus
    if vcpus < visible:
        notes.append(
            f"Counting the {vcpus:g} vCPUs this run may use ({vcpus_source}), "
            f"not all {visible} CPUs of the machine."
        )

    if overrides.ram_watts is not None:
        ram_watts = overrides.ram_watts
        sources["ram_watts"] = "user override"
    elif hardware.get("ram_watts") is not None:
        ram_watts = float(hardware["ram_watts"])
        sources["ram_watts"] = "codecarbon RAM model"
    else:
        ram_watts = RAM_WATTS_PER_GB * total_ram_gb()
        sources["ram_watts"] = "3 W per 8 GB of RAM (codecarbon unavailable)"

    gpus = max(int(hardware.get("gpu_count") or 0), gpu_count)
    if gpus and METHOD_NVML not in energy_methods:
        notes.append(f"{gpus} GPU(s) present but no NVML energy counter: GPU energy not counted.")
    sources["pue"] = (
        "user override" if overrides.pue != 1.0 else "default (no data-centre overhead)"
    )
    method = METHOD_RAPL if METHOD_RAPL in energy_methods else METHOD_MODEL
    if METHOD_NVML in energy_methods:
        method += "+" + METHOD_NVML
    return PowerModel(
        method=method,
        cpu_model=cpu_model,
        cpu_tdp_w=float(tdp) if tdp else None,
        cpu_watts_per_vcpu=per_vcpu,
        vcpus=vcpus,
        vcpus_source=vcpus_source,
        cpu_watts=cpu_watts,
        cpu_idle_fraction=IDLE_FRACTION,
        ram_watts=ram_watts,
        gpu_count=gpus,
        gpu_model=gpu_model or hardware.get("gpu_model"),
        pue=overrides.pue,
        sources=sources,
        notes=notes,
    )
