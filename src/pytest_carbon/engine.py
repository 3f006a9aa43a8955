"""What a session does with measurements, one strategy per mode: central, xdist worker, controller.

Workers only read counters and ship raw deltas; the central process and the xdist controller own
the codecarbon sidecar and the power model, and turn raw deltas into the session report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import attrgetter, contains, eq, gt, not_
from typing import Any, Final, final

from pytest_carbon import __version__
from pytest_carbon.identity import detect_identity
from pytest_carbon.meter.attribute import Pricer, Rates, energy_of, next_outcome, unattributed
from pytest_carbon.meter.counters import Counters, Reading, delta, usable_vcpus
from pytest_carbon.meter.intensity import resolve_intensity
from pytest_carbon.meter.power import (
    HardwareSource,
    Overrides,
    SidecarResult,
    build_power_model,
    runs_in_vm,
)
from pytest_carbon.meter.spans import PHASE_CODES, PHASE_NAMES, PhaseRecorder, SpanTable
from pytest_carbon.options import Settings
from pytest_carbon.report.model import METHOD_WALL, SessionReport, TestRecord, WorkerRecord

#: Version of the worker → controller payload (3: phase boundaries as columns; 4: a test's
#: node id sent once, all of them in one string).
PAYLOAD_VERSION: Final = 4


def now_iso() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


#: Codes of a phase report's ``when`` and ``outcome`` in :class:`OutcomeLog` (3: anything else).
_WHEN: Final = PHASE_CODES
_WHEN_NAMES: Final = (*PHASE_NAMES, "?")
_OUTCOME: Final = {"passed": 0, "failed": 1, "skipped": 2}
_OUTCOME_NAMES: Final = ("passed", "failed", "skipped", "?")
#: The code of every known ``(when, outcome)`` pair, found with one lookup.
_CODES: Final = {
    (when, outcome): w << 3 | o << 1 for when, w in _WHEN.items() for outcome, o in _OUTCOME.items()
}


def outcome_code(when: str, outcome: str) -> int:
    """The code of a report's phase and outcome, either of them possibly unknown."""
    return _WHEN.get(when, 3) << 3 | _OUTCOME.get(outcome, 3) << 1


@final
class OutcomeLog:
    """Every phase report of every test, in flat columns (central process and controller).

    Called three times per test, so it keeps one code and the reported duration per report:
    strings and numbers, nothing the garbage collector tracks. On an xdist controller it also
    keeps which worker ran each test, to report tests lost with a crashed worker.
    """

    def __init__(self, track_workers: bool = False) -> None:
        self.failures: list[str] = []  # reports are checked as they are added, never here
        self.nodeids: list[str] = []
        self.codes = bytearray()
        self.durations: list[float | None] = []
        self.workers: dict[str, str] | None = {} if track_workers else None

    def add(self, report: Any) -> None:
        """Record one ``TestReport``."""
        nodeid = report.nodeid
        when, outcome = report.when, report.outcome
        self.nodeids.append(nodeid)
        code = _CODES.get((when, outcome))
        if code is None:
            code = outcome_code(when, outcome)
        self.codes.append(code | ("wasxfail" in report.__dict__))
        self.durations.append(report.duration)
        if self.workers is not None:
            gateway = getattr(getattr(report, "node", None), "gateway", None)
            if gateway is not None:
                self.workers[nodeid] = str(gateway.id)

    def outcomes(self) -> dict[str, str]:
        """Each test's final outcome, in the order tests were first reported (quiet reports,
        see :func:`is_quiet`, make no outcome)."""
        result: dict[str, str] = {}
        for nodeid, code in zip(self.nodeids, self.codes, strict=True):
            when, outcome, was_xfail = (
                _WHEN_NAMES[code >> 3],
                _OUTCOME_NAMES[code >> 1 & 3],
                bool(code & 1),
            )
            if is_quiet(when, outcome, was_xfail):
                continue
            result[nodeid] = next_outcome(result.get(nodeid, "passed"), when, outcome, was_xfail)
        return result

    def durations_of(self, nodeids: Collection[str]) -> dict[str, dict[str, float]]:
        """The reported duration of every phase of ``nodeids`` (reruns summed)."""
        found: dict[str, dict[str, float]] = {}
        for nodeid, code, seconds in zip(self.nodeids, self.codes, self.durations, strict=True):
            if nodeid in nodeids:
                phases = found.setdefault(nodeid, {})
                when = _WHEN_NAMES[code >> 3]
                phases[when] = phases.get(when, 0.0) + float(seconds or 0.0)
        return found

    def workers_of(self, nodeids: Collection[str]) -> dict[str, str]:
        """The xdist worker that ran each of ``nodeids``, where one did."""
        workers = self.workers or {}
        return {nodeid: workers[nodeid] for nodeid in nodeids if nodeid in workers}


@final
class LoggedReports:
    """The phase reports pytest kept (its terminal reporter's), read once at the session end.

    The central process reads the outcomes here rather than in a hook called for every phase.
    Quiet reports (see :func:`is_quiet`) are set aside without reading their node id, which
    recent pytest builds anew on each read.
    """

    def __init__(self, reports: Sequence[Any], passed: Sequence[Any] = ()) -> None:
        """``passed``: the reports pytest counted as passed tests (its terminal reporter's
        ``passed`` category); a plain passed call among them is read for its node id only."""
        self.failures: list[str] = []
        self._reports = [*passed, *reports]
        self._by_phase: tuple[list[Any], ...] = ([], [], [], [])
        try:
            # A plain passed call: its phase is "call" and it has no "wasxfail" (in C).
            calls = map(eq, map(attrgetter("when"), passed), repeat("call"))
            plain = list(map(gt, calls, map(contains, map(vars, passed), repeat("wasxfail"))))
            self._passed = list(map(attrgetter("nodeid"), compress(passed, plain)))
            reports = [*compress(passed, map(not_, plain)), *reports]
        except Exception:  # a report of a shape we do not know: read each one as below
            self._passed = []
            reports = self._reports
        by_phase, codes = self._by_phase, _WHEN
        for report in reports:
            try:
                when = report.when
                # is_quiet, inlined: this runs for every phase report of the session
                if report.outcome != "passed" or when == "call" or "wasxfail" in report.__dict__:
                    by_phase[codes.get(when, 3)].append(report)
            except Exception as exc:  # a report of a shape we do not know
                self.failures.append(f"outcome of a report not recorded: {exc!r}")

    def outcomes(self) -> dict[str, str]:
        """Each test's final outcome, its reports read in the order of its phases."""
        result: dict[str, str] = dict.fromkeys(self._passed, "passed")
        for reports in self._by_phase:
            for report in reports:
                try:
                    nodeid = report.nodeid
                    outcome = report.outcome
                    xfail = "wasxfail" in report.__dict__
                    if outcome == "passed" and not xfail:  # a passed call changes nothing
                        if nodeid not in result:
                            result[nodeid] = "passed"
                        continue
                    result[nodeid] = next_outcome(
                        result.get(nodeid, "passed"), report.when, outcome, xfail
                    )
                except Exception as exc:  # a report of a shape we do not know
                    self.failures.append(f"outcome of a report not recorded: {exc!r}")
        return result

    def durations_of(self, nodeids: Collection[str]) -> dict[str, dict[str, float]]:
        """The reported duration of every phase of ``nodeids`` (reruns summed)."""
        found: dict[str, dict[str, float]] = {}
        for report in self._reports:
            nodeid = report.nodeid
            if nodeid in nodeids:
                phases = found.setdefault(nodeid, {})
                when = str(report.when)
                phases[when] = phases.get(when, 0.0) + float(report.duration or 0.0)
        return found

    def workers_of(self, nodeids: Collection[str]) -> dict[str, str]:
        """The xdist worker that ran each of ``nodeids``, where one did (on a controller, xdist
        sets each report's ``node``)."""
        found: dict[str, str] = {}
        for report in self._reports:
            gateway = getattr(getattr(report, "node", None), "gateway", None)
            if gateway is not None and report.nodeid in nodeids:
                found[report.nodeid] = str(gateway.id)
        return found

    def carried(self, name: str) -> dict[str, dict[str, Any]]:
        """The mapping each report carries as its attribute ``name``, by node id (a budget's
        verdict, set on a worker's report and sent with it)."""
        reports = self._reports
        try:  # the reports that carry it, found in C: most carry none, and there is one a test
            carrying = list(compress(reports, map(contains, map(vars, reports), repeat(name))))
        except TypeError:  # a report without attributes of its own
            carrying = [report for report in reports if name in getattr(report, "__dict__", ())]
        found: dict[str, dict[str, Any]] = {}
        for report in carrying:
            value = vars(report)[name]
            if isinstance(value, dict):
                found[report.nodeid] = value
        return found


def is_quiet(when: str, outcome: str, was_xfail: bool) -> bool:
    """A passed setup or teardown report: it never changes, nor makes, a test's outcome.

    A test's outcome comes from its call report, or from a setup or teardown that failed or
    skipped; a test interrupted before its call was reported has none (``unknown``).
    """
    return outcome == "passed" and not was_xfail and when != "call"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection while the session is priced: it builds ~4 acyclic objects a phase,
    and collections triggered by them would each walk every object pytest holds."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class SessionInputs:
    """Everything :func:`assemble_report` needs, gathered by a strategy."""

    settings: Settings
    started_at: str
    session_delta: list[float | None]
    spans: Sequence[SpanTable]
    outcomes: OutcomeLog | LoggedReports
    sidecar: HardwareSource | SidecarResult
    energy_methods: tuple[str, ...]
    share: float = 1.0
    workers: list[WorkerRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    exit_status: int | None = None


def assemble_report(inputs: SessionInputs) -> SessionReport:
    """The session report: power model, per-test energy and the unattributed rest.

    With a running :class:`Sidecar`, the tests are priced while codecarbon takes its last
    reading: only the hardware it detected at start-up is needed for that.
    """
    settings = inputs.settings
    sidecar = inputs.sidecar
    hardware = sidecar.hardware if isinstance(sidecar, SidecarResult) else sidecar.detected()
    vcpus, vcpus_source = usable_vcpus()
    power = build_power_model(
        hardware,
        vcpus=vcpus,
        vcpus_source=vcpus_source,
        overrides=Overrides(settings.cpu_watts, settings.ram_watts, settings.pue),
        energy_methods=inputs.energy_methods,
        in_vm=runs_in_vm(),
    )
    intensity = resolve_intensity(settings.country, settings.intensity)
    rates = Rates.from_model(power)
    g = intensity.g_per_kwh
    pricer = Pricer(rates, g, inputs.share)
    outcomes = inputs.outcomes.outcomes()
    tests = pricer.tests(inputs.spans, outcomes)
    unpriced = outcomes.keys() - set(tests.column("nodeid"))
    lost = [nodeid for nodeid in outcomes if nodeid in unpriced] if unpriced else []
    if lost:
        tests = tests.plus(priced_from_durations(lost, inputs.outcomes, outcomes, pricer))

    answer = sidecar if isinstance(sidecar, SidecarResult) else sidecar.finish()
    warnings = list(inputs.warnings) + answer.errors + inputs.outcomes.failures[:1]
    if answer.errors:
        power.notes.append("codecarbon was unavailable: fallback figures used (see warnings).")
    note = getattr(sidecar, "note", None)
    if note:
        power.notes.append(note)
    if lost:
        warnings.append(
            f"{len(lost)} test(s) ran on a worker that sent no measurements; priced from their "
            "reported durations at one busy vCPU (method wall-time-model)."
        )
    session_delta = list(inputs.session_delta)
    session_delta[1] = float(session_delta[1] or 0.0) + answer.cpu_s
    session_energy = energy_of(session_delta, rates)
    rest, overshoot = unattributed(session_energy, tests)
    if overshoot > 0.01 * max(session_energy.total_kwh, 1e-18):
        warnings.append(
            "Per-test energy exceeded the session total by "
            f"{overshoot / session_energy.total_kwh:.1%}; unattributed energy clamped to zero."
        )
    estimate = answer.estimate
    return SessionReport(
        tool_version=__version__,
        codecarbon_version=(hardware or {}).get("codecarbon_version"),
        started_at=inputs.started_at,
        finished_at=now_iso(),
        identity=detect_identity(settings.job, settings.matrix),
        power=power,
        intensity=intensity,
        wall_s=float(session_delta[0] or 0.0),
        cpu_s=float(session_delta[1] or 0.0),
        energy=session_energy,
        emissions_g=session_energy.total_kwh * g,
        unattributed=rest,
        unattributed_emissions_g=rest.total_kwh * g,
        tests=tests,
        workers=inputs.workers,
        warnings=warnings,
        codecarbon_estimate={k: float(v) for k, v in estimate.items()} if estimate else None,
        codecarbon_cpu_s=answer.cpu_s,
        exit_status=inputs.exit_status,
    )


def priced_from_durations(
    lost: list[str], log: OutcomeLog | LoggedReports, outcomes: Mapping[str, str], pricer: Pricer
) -> list[TestRecord]:
    """Tests whose counters were lost, priced from their report durations (one busy vCPU)."""
    durations = log.durations_of(set(lost))
    workers = log.workers_of(set(lost))
    records = []
    for nodeid in lost:
        phases = durations.get(nodeid, {})
        records.append(
            TestRecord(
                nodeid=nodeid,
                path=nodeid.split("::", 1)[0],
                outcome=outcomes.get(nodeid, "unknown"),
                method=METHOD_WALL,
                phases={
                    when: pricer.phase(secs, secs, None, None) for when, secs in phases.items()
                },
                worker=workers.get(nodeid),
            )
        )
    return records


class Strategy:
    """Common state: settings, counters and the session's starting reading."""

    def __init__(self, settings: Settings, counters: Counters) -> None:
        self.settings = settings
        self.counters = counters
        self.started_at = now_iso()
        self.start: Reading = counters.read()
        self._own_cpu_start = time.process_time_ns()
        self.outcomes = OutcomeLog()
        self.sidecar: HardwareSource | None = None

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

    def price(
        self,
        measured: list[float | None],
        spans: Sequence[SpanTable],
        methods: tuple[str, ...],
        warnings: list[str],
        exit_status: int | None,
        *,
        share: float = 1.0,
        workers: list[WorkerRecord] | None = None,
        outcomes: OutcomeLog | LoggedReports | None = None,
    ) -> SessionReport:
        """The session report. codecarbon is asked for its last reading first, and the tests
        are priced while it takes it, with garbage collection paused (the central process and
        the controller own a hardware source)."""
        assert self.sidecar is not None
        self.sidecar.request_stop()
        with gc_paused():
            return assemble_report(
                SessionInputs(
                    settings=self.settings,
                    started_at=self.started_at,
                    session_delta=measured,
                    spans=spans,
                    outcomes=self.outcomes if outcomes is None else outcomes,
                    sidecar=self.sidecar,
                    energy_methods=methods,
                    share=share,
                    workers=workers or [],
                    warnings=warnings,
                    exit_status=exit_status,
                )
            )


@final
class Central(Strategy):
    """No xdist: measure tests in this process, run the sidecar, build the report."""

    def __init__(self, settings: Settings, counters: Counters, sidecar: HardwareSource) -> None:
        super().__init__(settings, counters)
        self.recorder = PhaseRecorder(counters)
        self.sidecar: HardwareSource = sidecar

    def finish(self, exit_status: int | None, logged: LoggedReports | None = None) -> SessionReport:
        """Read the session's counters, then price it while codecarbon takes its last reading.

        ``logged``: the phase reports pytest kept, when the outcomes were not recorded in
        :attr:`outcomes` as the reports were logged.
        """
        self.recorder.end()  # a test interrupted mid-phase
        measured = self.session_delta()
        return self.price(
            measured,
            [self.recorder.table()],
            self.counters.methods,
            list(self.counters.warnings),
            exit_status,
            outcomes=logged,
        )


@final
class Worker(Strategy):
    """xdist worker: measure tests, ship raw spans to the controller."""

    def __init__(self, settings: Settings, counters: Counters, worker_id: str) -> None:
        super().__init__(settings, counters)
        self.recorder = PhaseRecorder(counters, worker_id)
        self.worker_id = worker_id

    def payload(self) -> dict[str, Any]:
        """Plain data for ``config.workeroutput``."""
        self.recorder.end()  # a test interrupted mid-phase
        measured = self.session_delta()
        return {
            "version": PAYLOAD_VERSION,
            "worker": self.worker_id,
            "wall_s": measured[0],
            "cpu_s": measured[1],
            "methods": list(self.counters.methods),
            "spans": self.recorder.table().to_payload(),
            "warnings": list(self.counters.warnings),
        }


@final
class Controller(Strategy):
    """xdist controller: own the sidecar, gather worker payloads, build the report."""

    def __init__(self, settings: Settings, counters: Counters, sidecar: HardwareSource) -> None:
        super().__init__(settings, counters)
        self.sidecar: HardwareSource = sidecar
        self.outcomes = OutcomeLog(track_workers=True)
        self.payloads: list[dict[str, Any]] = []
        self.spans: list[SpanTable] = []
        self.workers: list[WorkerRecord] = []

    def node_down(self, worker_id: str, output: Mapping[str, Any] | None, error: Any) -> None:
        """Take a worker's payload; a worker that sent none is recorded as crashed."""
        payload = (output or {}).get("carbon")
        spans = None
        if isinstance(payload, dict) and payload.get("version") == PAYLOAD_VERSION:
            try:
                spans = SpanTable.from_payload(payload.get("spans") or {})
            except ValueError as exc:
                error = error or f"unreadable measurements: {exc}"
        if payload is None or spans is None:
            note = f"worker {worker_id} sent no measurements" + (f" ({error})" if error else "")
            self.workers.append(WorkerRecord(worker_id, 0, 0.0, 0.0, crashed=True, note=note))
            return
        self.payloads.append(payload)
        self.spans.append(spans)
        self.workers.append(
            WorkerRecord(
                id=worker_id,
                tests=spans.test_count(),
                wall_s=float(payload.get("wall_s") or 0.0),
                cpu_s=float(payload.get("cpu_s") or 0.0),
            )
        )

    def finish(self, exit_status: int | None, logged: LoggedReports | None = None) -> SessionReport:
        """Count machine-level power once; CPU = controller + workers + sidecar.

        ``logged``: the workers' phase reports pytest kept, when the outcomes were not recorded
        in :attr:`outcomes` as the reports arrived.
        """
        measured = self.session_delta(own_cpu_only=True)
        measured[1] = float(measured[1] or 0.0) + sum(w.cpu_s for w in self.workers)
        methods = set(self.counters.methods)
        for payload in self.payloads:
            methods &= set(payload.get("methods", []))
        warnings = list(self.counters.warnings)
        for payload in self.payloads:
            warnings.extend(w for w in payload.get("warnings", []) if w not in warnings)
        warnings.extend(w.note for w in self.workers if w.crashed and w.note)
        return self.price(
            measured,
            self.spans,
            tuple(sorted(methods)),
            warnings,
            exit_status,
            share=1.0 / max(len(self.workers), 1),
            workers=self.workers,
            outcomes=logged,
        )
