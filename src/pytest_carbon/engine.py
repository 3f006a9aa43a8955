"""What a session does with measurements, one strategy per mode: central, xdist worker, controller.

Workers only read counters and ship raw deltas; the central process and the xdist controller own
the codecarbon sidecar and the power model, and turn raw deltas into the session report.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, final

from pytest_carbon import __version__
from pytest_carbon.identity import detect_identity
from pytest_carbon.meter.attribute import (
    Rates,
    build_test,
    energy_of,
    outcome_of,
    unattributed,
)
from pytest_carbon.meter.counters import Counters, Reading, delta, usable_vcpus
from pytest_carbon.meter.intensity import resolve_intensity
from pytest_carbon.meter.power import (
    Overrides,
    Sidecar,
    SidecarResult,
    build_power_model,
    runs_in_vm,
)
from pytest_carbon.options import Settings
from pytest_carbon.report.model import METHOD_WALL, SessionReport, TestRecord, WorkerRecord

#: Version of the worker → controller payload.
PAYLOAD_VERSION: Final = 1


def now_iso() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@final
class PhaseRecorder:
    """Raw counter readings at every phase boundary of this process, priced at session end.

    The hot path only appends ``(nodeid, phase, start, end)``; deltas and per-test grouping
    are computed once, by :meth:`raw_tests`.
    """

    def __init__(self, counters: Counters, worker: str | None = None) -> None:
        self.counters = counters
        self.worker = worker
        self.spans: list[tuple[str, str, Reading, Reading]] = []

    def phases_of(self, nodeid: str) -> dict[str, list[float | None]]:
        """The phases measured so far of ``nodeid`` when it is the test running now."""
        phases: dict[str, list[float | None]] = {}
        for span_nodeid, phase, start, end in reversed(self.spans):
            if span_nodeid != nodeid:
                break
            add_phase(phases, phase, delta(start, end))
        return phases

    def raw_tests(self) -> list[dict[str, Any]]:
        """Every test's phase deltas (reruns summed), JSON-able, in the order tests ran."""
        tests: dict[str, dict[str, Any]] = {}
        for nodeid, phase, start, end in self.spans:
            entry = tests.get(nodeid)
            if entry is None:
                entry = {
                    "nodeid": nodeid,
                    "path": nodeid.split("::", 1)[0],
                    "worker": self.worker,
                    "phases": {},
                }
                tests[nodeid] = entry
            add_phase(entry["phases"], phase, delta(start, end))
        return list(tests.values())


def add_phase(
    phases: dict[str, list[float | None]], phase: str, measured: list[float | None]
) -> None:
    """Add one measured span to ``phases`` (a phase measured twice, as by reruns, is summed)."""
    known = phases.get(phase)
    phases[phase] = (
        measured if known is None else [_add(a, b) for a, b in zip(known, measured, strict=True)]
    )


def _add(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


@final
class OutcomeLog:
    """Each test's phase reports, in the order tests finished (central and controller)."""

    def __init__(self) -> None:
        self.reports: dict[str, list[tuple[str, str, bool]]] = {}
        self.durations: dict[str, dict[str, float]] = {}
        self.paths: dict[str, str] = {}
        self.workers: dict[str, str] = {}

    def add(self, report: Any) -> None:
        """Record one ``TestReport`` (called three times per test: keep it lean)."""
        nodeid = report.nodeid
        when = report.when
        entry = self.reports.get(nodeid)
        if entry is None:
            entry = self.reports[nodeid] = []
            self.durations[nodeid] = {}
            self.paths[nodeid] = report.location[0] if report.location else nodeid
            worker = getattr(getattr(report, "node", None), "gateway", None)
            if worker is not None:
                self.workers[nodeid] = worker.id
        entry.append((when, report.outcome, hasattr(report, "wasxfail")))
        phases = self.durations[nodeid]
        phases[when] = phases.get(when, 0.0) + report.duration

    def outcome(self, nodeid: str) -> str:
        """The final outcome of ``nodeid`` (``unknown`` when no report arrived)."""
        reports = self.reports.get(nodeid)
        return outcome_of(reports) if reports else "unknown"


@dataclass
class SessionInputs:
    """Everything :func:`assemble_report` needs, gathered by a strategy."""

    settings: Settings
    started_at: str
    session_delta: list[float | None]
    raw_tests: Sequence[Mapping[str, Any]]
    outcomes: OutcomeLog
    sidecar: SidecarResult
    energy_methods: tuple[str, ...]
    share: float = 1.0
    workers: list[WorkerRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    exit_status: int | None = None


def assemble_report(inputs: SessionInputs) -> SessionReport:
    """The session report: power model, per-test energy and the unattributed rest."""
    settings = inputs.settings
    warnings = list(inputs.warnings) + inputs.sidecar.errors
    vcpus, vcpus_source = usable_vcpus()
    power = build_power_model(
        inputs.sidecar.hardware,
        vcpus=vcpus,
        vcpus_source=vcpus_source,
        overrides=Overrides(settings.cpu_watts, settings.ram_watts, settings.pue),
        energy_methods=inputs.energy_methods,
        in_vm=runs_in_vm(),
    )
    if inputs.sidecar.errors:
        power.notes.append("codecarbon was unavailable: fallback figures used (see warnings).")
    intensity = resolve_intensity(settings.country, settings.intensity)
    rates = Rates.from_model(power)
    g = intensity.g_per_kwh

    tests: list[TestRecord] = []
    seen: set[str] = set()
    for raw in inputs.raw_tests:
        nodeid = str(raw["nodeid"])
        seen.add(nodeid)
        tests.append(build_test(raw, inputs.outcomes.outcome(nodeid), rates, g, inputs.share))
    lost = [nodeid for nodeid in inputs.outcomes.reports if nodeid not in seen]
    for nodeid in lost:
        tests.append(priced_from_durations(nodeid, inputs, rates, g))
    if lost:
        warnings.append(
            f"{len(lost)} test(s) ran on a worker that sent no measurements; priced from their "
            "reported durations at one busy vCPU (method wall-time-model)."
        )

    session_energy = energy_of(inputs.session_delta, rates)
    rest, overshoot = unattributed(session_energy, tests)
    if overshoot > 0.01 * max(session_energy.total_kwh, 1e-18):
        warnings.append(
            "Per-test energy exceeded the session total by "
            f"{overshoot / session_energy.total_kwh:.1%}; unattributed energy clamped to zero."
        )
    estimate = inputs.sidecar.estimate
    return SessionReport(
        tool_version=__version__,
        codecarbon_version=(inputs.sidecar.hardware or {}).get("codecarbon_version"),
        started_at=inputs.started_at,
        finished_at=now_iso(),
        identity=detect_identity(settings.job, settings.matrix),
        power=power,
        intensity=intensity,
        wall_s=float(inputs.session_delta[0] or 0.0),
        cpu_s=float(inputs.session_delta[1] or 0.0),
        energy=session_energy,
        emissions_g=session_energy.total_kwh * g,
        unattributed=rest,
        unattributed_emissions_g=rest.total_kwh * g,
        tests=tests,
        workers=inputs.workers,
        warnings=warnings,
        codecarbon_estimate={k: float(v) for k, v in estimate.items()} if estimate else None,
        codecarbon_cpu_s=inputs.sidecar.cpu_s,
        exit_status=inputs.exit_status,
    )


def priced_from_durations(nodeid: str, inputs: SessionInputs, rates: Rates, g: float) -> TestRecord:
    """A test whose counters were lost, priced from its report durations (one busy vCPU)."""
    phases = inputs.outcomes.durations.get(nodeid, {})
    raw = {
        "nodeid": nodeid,
        "path": inputs.outcomes.paths.get(nodeid, nodeid),
        "worker": inputs.outcomes.workers.get(nodeid),
        "phases": {when: [secs, secs, None, None] for when, secs in phases.items()},
    }
    record = build_test(raw, inputs.outcomes.outcome(nodeid), rates, g, inputs.share)
    record.method = METHOD_WALL
    return record


class Strategy:
    """Common state: settings, counters and the session's starting reading."""

    def __init__(self, settings: Settings, counters: Counters) -> None:
        self.settings = settings
        self.counters = counters
        self.started_at = now_iso()
        self.start: Reading = counters.read()
        self._own_cpu_start = time.process_time_ns()
        self.outcomes = OutcomeLog()
        self.sidecar: Sidecar | None = None

    def session_delta(self, own_cpu_only: bool = False) -> list[float | None]:
        """Wall, CPU and energy counters since the session began."""
        measured = delta(self.start, self.counters.read())
        if own_cpu_only:
            measured[1] = (time.process_time_ns() - self._own_cpu_start) / 1e9
        return measured

    def begin(self) -> None:
        """The session starts: launch whatever runs beside it (codecarbon, where owned)."""
        if self.sidecar is not None:
            self.sidecar.start()

    def close(self) -> None:
        """pytest is shutting down: stop anything still running beside it."""
        if self.sidecar is not None:
            self.sidecar.abandon()


@final
class Central(Strategy):
    """No xdist: measure tests in this process, run the sidecar, build the report."""

    def __init__(self, settings: Settings, counters: Counters, sidecar: Sidecar) -> None:
        super().__init__(settings, counters)
        self.recorder = PhaseRecorder(counters)
        self.sidecar: Sidecar = sidecar

    def finish(self, exit_status: int | None) -> SessionReport:
        """Read the session's counters, then stop codecarbon and add its CPU time."""
        measured = self.session_delta()
        sidecar = self.sidecar.finish()
        measured[1] = float(measured[1] or 0.0) + sidecar.cpu_s
        return assemble_report(
            SessionInputs(
                settings=self.settings,
                started_at=self.started_at,
                session_delta=measured,
                raw_tests=self.recorder.raw_tests(),
                outcomes=self.outcomes,
                sidecar=sidecar,
                energy_methods=self.counters.methods,
                warnings=list(self.counters.warnings),
                exit_status=exit_status,
            )
        )


@final
class Worker(Strategy):
    """xdist worker: measure tests, ship raw deltas to the controller."""

    def __init__(self, settings: Settings, counters: Counters, worker_id: str) -> None:
        super().__init__(settings, counters)
        self.recorder = PhaseRecorder(counters, worker_id)
        self.worker_id = worker_id

    def payload(self) -> dict[str, Any]:
        """Plain JSON-able data for ``config.workeroutput``."""
        measured = self.session_delta()
        return {
            "version": PAYLOAD_VERSION,
            "worker": self.worker_id,
            "wall_s": measured[0],
            "cpu_s": measured[1],
            "methods": list(self.counters.methods),
            "tests": self.recorder.raw_tests(),
            "warnings": list(self.counters.warnings),
        }


@final
class Controller(Strategy):
    """xdist controller: own the sidecar, gather worker payloads, build the report."""

    def __init__(self, settings: Settings, counters: Counters, sidecar: Sidecar) -> None:
        super().__init__(settings, counters)
        self.sidecar: Sidecar = sidecar
        self.payloads: list[dict[str, Any]] = []
        self.workers: list[WorkerRecord] = []

    def node_down(self, worker_id: str, output: Mapping[str, Any] | None, error: Any) -> None:
        """Take a worker's payload; a worker that sent none is recorded as crashed."""
        payload = (output or {}).get("carbon")
        if not isinstance(payload, dict) or payload.get("version") != PAYLOAD_VERSION:
            note = f"worker {worker_id} sent no measurements" + (f" ({error})" if error else "")
            self.workers.append(WorkerRecord(worker_id, 0, 0.0, 0.0, crashed=True, note=note))
            return
        self.payloads.append(payload)
        self.workers.append(
            WorkerRecord(
                id=worker_id,
                tests=len(payload.get("tests", [])),
                wall_s=float(payload.get("wall_s") or 0.0),
                cpu_s=float(payload.get("cpu_s") or 0.0),
            )
        )

    def finish(self, exit_status: int | None) -> SessionReport:
        """Count machine-level power once; CPU = controller + workers + sidecar."""
        measured = self.session_delta(own_cpu_only=True)
        sidecar = self.sidecar.finish()
        measured[1] = float(measured[1] or 0.0) + sum(w.cpu_s for w in self.workers) + sidecar.cpu_s
        raw_tests = [test for payload in self.payloads for test in payload.get("tests", [])]
        methods = set(self.counters.methods)
        for payload in self.payloads:
            methods &= set(payload.get("methods", []))
        warnings = list(self.counters.warnings)
        for payload in self.payloads:
            warnings.extend(w for w in payload.get("warnings", []) if w not in warnings)
        warnings.extend(w.note for w in self.workers if w.crashed and w.note)
        return assemble_report(
            SessionInputs(
                settings=self.settings,
                started_at=self.started_at,
                session_delta=measured,
                raw_tests=raw_tests,
                outcomes=self.outcomes,
                sidecar=sidecar,
                energy_methods=tuple(sorted(methods)),
                share=1.0 / max(len(self.workers), 1),
                workers=self.workers,
                warnings=warnings,
                exit_status=exit_status,
            )
        )
