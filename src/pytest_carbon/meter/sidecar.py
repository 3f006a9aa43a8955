"""codecarbon in a process of its own: hardware detection and its machine-level estimate.

Run as ``python -m pytest_carbon.meter.sidecar [COUNTRY]``. It prints one JSON line when the
hardware is known (``ready``), waits for a line (or end of input) on stdin, stops the tracker and
prints one more (``stopped``). Any failure is printed as an ``error`` line naming the stage. Keeping
codecarbon out of the test process means its threads, logging and warnings never touch a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import warnings
from typing import Any


def emit(event: str, **fields: Any) -> None:
    """Write one protocol line to stdout."""
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def describe_hardware(tracker: Any) -> dict[str, Any]:
    """What codecarbon detected: CPU model and TDP, RAM watts, GPUs."""
    info: dict[str, Any] = {"cpu_model": None, "cpu_tdp_w": None, "cpu_mode": None}
    for device in getattr(tracker, "_hardware", []):
        kind = type(device).__name__
        if kind == "CPU":
            info["cpu_model"] = getattr(device, "_model", None)
            tdp = getattr(device, "_tdp", None)
            info["cpu_tdp_w"] = float(tdp) if tdp else None
            info["cpu_mode"] = getattr(device, "_mode", None)
        elif kind == "RAM":
            info["ram_watts"] = float(device.total_power().W)
    conf = getattr(tracker, "_conf", {})
    info["gpu_count"] = int(conf.get("gpu_count") or 0)
    info["gpu_model"] = conf.get("gpu_model") or None
    info["cpu_count"] = conf.get("cpu_count")
    return info


def own_cpu_s() -> float:
    """CPU seconds of this process and its ended children (cpuinfo runs in one)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def main(argv: list[str]) -> int:
    """Run the protocol; always exit 0 so the caller reads the error line instead."""
    os.environ.setdefault("CODECARBON_LOG_LEVEL", "error")
    warnings.simplefilter("ignore")
    with contextlib.suppress(AttributeError, OSError):  # no nice() on some platforms
        os.nice(10)  # yield the CPU to the tests being measured
    country = argv[0] if argv and argv[0] != "-" else "USA"
    try:
        import codecarbon
        from codecarbon import OfflineEmissionsTracker

        tracker = OfflineEmissionsTracker(
            country_iso_code=country,
            save_to_file=False,
            log_level="error",
            allow_multiple_runs=True,
            tracking_mode="machine",
        )
        tracker.start()
        emit(
            "ready",
            codecarbon_version=str(getattr(codecarbon, "__version__", "?")),
            **describe_hardware(tracker),
        )
    except Exception as exc:
        emit("error", stage="start", message=f"{type(exc).__name__}: {exc}")
        return 0
    sys.stdin.readline()
    try:
        tracker.stop()
        data = tracker.final_emissions_data
        emit(
            "stopped",
            duration_s=float(data.duration),
            energy_kwh=float(data.energy_consumed),
            cpu_kwh=float(data.cpu_energy),
            ram_kwh=float(data.ram_energy),
            gpu_kwh=float(data.gpu_energy),
            cpu_s=own_cpu_s(),
        )
    except Exception as exc:
        emit("error", stage="stop", message=f"{type(exc).__name__}: {exc}", cpu_s=own_cpu_s())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
