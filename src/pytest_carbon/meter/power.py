"""The session power model: codecarbon's hardware view, scaled to the vCPUs this run may use.

codecarbon runs in a sidecar process (:mod:`pytest_carbon.meter.sidecar`) started when the session
starts, so its ~1.6 s cold start overlaps collection and tests instead of delaying them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, final

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


@final
class Sidecar:
    """Starts codecarbon in a child process and collects its answers at the end of the session."""

    def __init__(self, country: str | None, timeout_s: float = 60.0) -> None:
        self._country = country
        self._timeout_s = timeout_s
        self._process: subprocess.Popen[str] | None = None
        self._start_error: str | None = None

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
                text=True,
                env=env,
            )
        except OSError as exc:
            self._start_error = f"codecarbon could not be started ({exc})"

    def abandon(self) -> None:
        """Stop the sidecar without waiting for an answer (pytest ended without a session end)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.communicate()

    def finish(self) -> SidecarResult:
        """Stop codecarbon and return what it reported; never raises."""
        result = SidecarResult()
        process, self._process = self._process, None
        if process is None:
            result.errors.append(self._start_error or "codecarbon was not started")
            return result
        try:
            out, _ = process.communicate("stop\n", timeout=self._timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            out, _ = process.communicate()
            result.errors.append(f"codecarbon did not answer within {self._timeout_s:.0f} s")
        except OSError as exc:  # stdin closed because the child already died
            out = process.stdout.read() if process.stdout else ""
            result.errors.append(f"codecarbon stopped early ({exc})")
        parse_sidecar_output(out, result)
        if not result.errors and (result.hardware is None or result.estimate is None):
            stage = "before detecting the hardware" if result.hardware is None else "mid-session"
            result.errors.append(
                f"codecarbon stopped {stage} (exit status {process.returncode}); "
                "its machine-level estimate is missing"
            )
        return result


def parse_sidecar_output(text: str, result: SidecarResult) -> None:
    """Fill ``result`` from the sidecar's JSON lines, ignoring anything else it printed."""
    for line in text.splitlines():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(message, dict):
            continue
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


def runs_in_vm(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True when the CPU flags say a hypervisor is present (the socket is then not all ours)."""
    try:
        with cpuinfo.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return " hypervisor" in line
    except OSError:
        return False
    return False


def total_ram_gb() -> float:
    """Physical memory of the machine, in GB (0 when unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 0.0


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
