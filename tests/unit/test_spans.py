"""Per-phase readings in flat arrays: recording, pricing input, and the xdist payload."""

from __future__ import annotations

import gc
import subprocess
import sys
from array import array
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from test_counters import FakeNvml, make_rapl, set_energy

from pytest_carbon.engine import LoggedReports, OutcomeLog, is_quiet
from pytest_carbon.errors import CarbonWarning
from pytest_carbon.meter.counters import Counters, NvmlReader, RaplReader, find_rapl_domains
from pytest_carbon.meter.spans import (
    CALL,
    END,
    SETUP,
    TEARDOWN,
    UNKNOWN,
    PhaseRecorder,
    SpanTable,
)


def burn(seconds: float) -> None:
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_recorder_measures_each_phase_wall_and_cpu() -> None:
    recorder = PhaseRecorder(Counters(), worker="gw0")
    for phase, work in ((SETUP, 0.0), (CALL, 0.05), (TEARDOWN, 0.0)):
        recorder.begin("t.py::test_a", phase)
        burn(work)
    recorder.end()
    table = recorder.table()
    assert table.worker == "gw0"
    assert table.energy is None
    rows = list(table.deltas())
    assert [(r[0], r[1]) for r in rows] == [
        ("t.py::test_a", "setup"),
        ("t.py::test_a", "call"),
        ("t.py::test_a", "teardown"),
    ]
    call = rows[1]
    assert call[3] >= 0.045  # cpu seconds
    assert call[2] >= call[3] * 0.9  # wall covers the cpu time (one thread)
    assert rows[0][3] < 0.01
    assert all(r[4] is None and r[5] is None for r in rows)


def test_a_phase_ends_where_the_next_begins_and_the_test_where_it_ends() -> None:
    recorder = PhaseRecorder(Counters())
    recorder.end()  # nothing open: nothing recorded
    for nodeid in ("t.py::test_a", "t.py::test_b"):
        recorder.begin(nodeid, SETUP)
        recorder.next(CALL)
        recorder.next(TEARDOWN)
        recorder.end()
    recorder.end()
    table = recorder.table()
    assert table.nodeids == ["t.py::test_a"] * 3 + [None] + ["t.py::test_b"] * 3 + [None]
    assert table.codes == bytes([SETUP, CALL, TEARDOWN, END] * 2)
    assert len(table) == 6
    assert [(d[0], d[1]) for d in table.deltas()] == [
        (nodeid, phase)
        for nodeid in ("t.py::test_a", "t.py::test_b")
        for phase in ("setup", "call", "teardown")
    ]
    clock = table.clock
    assert clock[2 * 3] < clock[2 * 4]  # between tests: a gap, in no span
    walls = [d[2] for d in table.deltas()]
    assert sum(walls[:3]) == pytest.approx((clock[6] - clock[0]) / 1e9)  # phases tile the test


def test_recorder_counts_the_cpu_of_child_processes_in_their_phase() -> None:
    recorder = PhaseRecorder(Counters())
    recorder.begin("t.py::test_child", CALL)
    subprocess.run([sys.executable, "-c", "sum(range(3_000_000))"], check=True)
    recorder.begin("t.py::test_child", TEARDOWN)
    recorder.end()
    call, teardown = (r[3] for r in recorder.table().deltas())
    assert call > 0.02  # the child's CPU, not only ours
    assert teardown < call / 10  # carried forward, not charged again


def test_a_child_reaped_between_tests_counts_in_the_next_test() -> None:
    recorder = PhaseRecorder(Counters())
    recorder.begin("t.py::test_a", CALL)
    recorder.end()
    subprocess.run([sys.executable, "-c", "sum(range(3_000_000))"], check=True)
    recorder.begin("t.py::test_b", CALL)
    recorder.end()
    first, second = (r[3] for r in recorder.table().deltas())
    assert first < 0.02
    assert second > 0.02


def test_recorder_leaves_nothing_for_the_garbage_collector() -> None:
    recorder = PhaseRecorder(Counters())
    nodeids = [f"t.py::test_{i}" for i in range(2000)]
    gc.collect()
    before = len(gc.get_objects())
    for nodeid in nodeids:
        for phase in (SETUP, CALL, TEARDOWN):
            recorder.begin(nodeid, phase)
        recorder.end()
    gc.collect()
    assert len(gc.get_objects()) - before < 50  # not one per span


def test_recorder_reads_energy_counters_and_marks_unreadable_ones(tmp_path: Path) -> None:
    make_rapl(tmp_path, {0: 100}, max_range=10**9)
    meter = Counters(RaplReader(find_rapl_domains(tmp_path)), NvmlReader(FakeNvml(gpus=1)))
    recorder = PhaseRecorder(meter)
    recorder.begin("t.py::test_a", CALL)
    set_energy(tmp_path, 0, 2_100_100)  # +2.1 J
    recorder.begin("t.py::test_a", TEARDOWN)
    (tmp_path / "intel-rapl:0" / "energy_uj").unlink()  # RAPL stops answering
    with pytest.warns(CarbonWarning):
        recorder.end()
    first, second = recorder.table().deltas()
    assert first[4] == pytest.approx(2.1)
    assert first[5] == pytest.approx(1.0)  # 1000 mJ per read of the fake GPU
    assert second[4] is None  # unreadable at the end: unknown, never a made-up figure


def test_phases_of_returns_the_running_test_only_and_sums_reruns() -> None:
    recorder = PhaseRecorder(Counters())
    recorder.begin("t.py::test_old", CALL)
    recorder.end()
    recorder.begin("t.py::test_now", SETUP)
    recorder.begin("t.py::test_now", CALL)
    recorder.begin("t.py::test_now", CALL)
    phases = recorder.phases_of("t.py::test_now")
    assert set(phases) == {"setup", "call"}
    assert recorder.phases_of("t.py::test_other") == {}


def test_phases_of_counts_the_running_phase_up_to_now() -> None:
    recorder = PhaseRecorder(Counters())
    recorder.begin("t.py::test_now", SETUP)
    recorder.begin("t.py::test_now", CALL)
    burn(0.05)
    phases = recorder.phases_of("t.py::test_now")
    call_cpu = phases["call"][1]
    assert call_cpu is not None
    assert call_cpu >= 0.045
    assert len(recorder.table()) == 1  # only setup is closed; asking closed nothing


def test_phases_of_reads_energy_counters_of_the_running_phase(tmp_path: Path) -> None:
    make_rapl(tmp_path, {0: 100}, max_range=10**9)
    recorder = PhaseRecorder(Counters(RaplReader(find_rapl_domains(tmp_path))))
    recorder.begin("t.py::test_now", CALL)
    set_energy(tmp_path, 0, 3_000_100)  # +3 J
    rapl = recorder.phases_of("t.py::test_now")["call"][2]
    assert rapl == pytest.approx(3.0)


def test_payload_round_trip_keeps_every_figure() -> None:
    table = SpanTable(
        worker="gw1",
        nodeids=["a", "a", None, "b", None],
        codes=bytes([SETUP, CALL, END, CALL, END]),
        clock=array("q", [0, 0, 10, 5, 30, 25, 30, 25, 31, 25]),
        energy=array("q", [UNKNOWN, 0, UNKNOWN, 7, UNKNOWN, 14, 0, 14, 0, 20]),
        reaped=((4, 3),),
    )
    payload = table.to_payload()
    assert payload["names"] == "ab"  # each test's node id once
    back = SpanTable.from_payload(payload)
    assert back == table
    assert back.test_count() == 2
    assert len(back) == 3
    assert list(back.deltas()) == list(table.deltas())
    assert [d[3] for d in back.deltas()] == [5e-9, 20e-9, 3e-9]  # b's children in b's call


@pytest.mark.parametrize(
    "nodeids",
    [
        [],
        ["a", "a", "a", None],
        ["ä::t[\n]", "ä::t[\n]", None, "", None, "b", "b"],  # any characters, even none
        ["a", None, "a", None],  # a rerun: named again
        ["a", "b", "b", None, None, "c"],  # interrupted tests, a stray END, a phase not ended
    ],
)
def test_payload_node_ids_are_sent_once_a_test_and_read_back_at_every_boundary(
    nodeids: list[str | None],
) -> None:
    codes = bytes(END if nodeid is None else CALL for nodeid in nodeids)
    table = SpanTable("gw0", nodeids, codes, array("q", range(2 * len(nodeids))))
    payload = table.to_payload()
    assert payload["names"] == "".join(
        nodeid
        for at, nodeid in enumerate(nodeids)
        if nodeid is not None and (at == 0 or nodeid != nodeids[at - 1])
    )
    assert SpanTable.from_payload(payload) == table


@pytest.mark.parametrize(
    "damage",
    [
        {"names": None},
        {"names": ["a"]},
        {"starts": None},
        {"lengths": None},
        {"lengths": array("q", [2]).tobytes()},  # more characters than sent
        {"lengths": array("q", [1, 0]).tobytes()},  # more names than marked
        {"lengths": array("q", [-1]).tobytes()},
        {"names": "ab"},  # a character no name holds
        {"starts": bytes([1])},  # fewer marks than boundaries
        {"starts": bytes([2, 0])},
        {"starts": bytes([0, 0]), "names": "", "lengths": b""},  # a phase of no test
        {"starts": bytes([1, 1])},  # the END boundary names a test
        {"codes": "setup"},
        {"clock": b"123"},
        {"clock": "not bytes"},
        {"codes": bytes([7, END])},
        {"reaped": [[0, 5]]},  # children read where no test ended
        {"reaped": [[1, -5]]},
        {"reaped": "many"},
        {"energy": array("q", [0] * 2).tobytes()},
    ],
)
def test_a_damaged_payload_is_refused(damage: dict[str, Any]) -> None:
    good = SpanTable(
        worker="gw0",
        nodeids=["a", None],
        codes=bytes([CALL, END]),
        clock=array("q", [0, 0, 10, 5]),
    ).to_payload()
    with pytest.raises(ValueError, match=r"span|phase|node ids|64-bit|child"):
        SpanTable.from_payload({**good, **damage})


def test_children_are_shared_among_the_phases_of_their_test_by_wall_time() -> None:
    table = SpanTable(
        worker=None,
        nodeids=["a", "a", "a", None, "b", None],
        codes=bytes([SETUP, CALL, TEARDOWN, END, CALL, END]),
        clock=array("q", [0, 0, 100, 10, 400, 20, 500, 30, 600, 40, 700, 50]),
        reaped=((3, 1001),),
    )
    cpu_ns = [round(d[3] * 1e9) for d in table.deltas()]
    # walls 100, 300, 100: shares 200, 600, 200, and the rounding rest to the longest phase
    assert cpu_ns == [10 + 200, 10 + 601, 10 + 200, 10]
    assert sum(cpu_ns) == 40 + 1001  # nothing lost or made up


def report(nodeid: str, when: str, outcome: str, xfail: bool = False, **extra: Any) -> Any:
    fields = {"nodeid": nodeid, "when": when, "outcome": outcome, "duration": 0.5, **extra}
    if xfail:
        fields["wasxfail"] = ""
    return SimpleNamespace(**fields)


def test_outcome_log_folds_phase_reports_into_outcomes() -> None:
    log = OutcomeLog()
    for rep in [
        report("a", "setup", "passed"),
        report("a", "call", "failed"),
        report("a", "teardown", "passed"),
        report("b", "setup", "skipped"),
        report("b", "teardown", "passed"),
        report("c", "setup", "passed"),
        report("c", "call", "skipped", xfail=True),
        report("c", "teardown", "passed"),
        report("d", "setup", "passed"),
        report("d", "call", "passed"),
        report("d", "teardown", "failed"),
        report("e", "call", "rerun"),  # an outcome of another plugin: kept, not understood
    ]:
        log.add(rep)
    assert log.outcomes() == {
        "a": "failed",
        "b": "skipped",
        "c": "xfailed",
        "d": "error",
        "e": "passed",
    }
    assert log.workers_of({"a", "b"}) == {}
    assert log.durations_of({"b"}) == {"b": {"setup": 0.5, "teardown": 0.5}}


MIXED_REPORTS = [
    report("a", "setup", "passed"),
    report("a", "call", "failed"),
    report("a", "teardown", "failed"),
    report("b", "setup", "skipped"),
    report("b", "teardown", "passed"),
    report("c", "setup", "passed"),
    report("c", "call", "skipped", xfail=True),
    report("c", "teardown", "passed"),
    report("d", "setup", "passed"),
    report("d", "call", "passed"),
    report("d", "teardown", "failed"),
    report("e", "call", "rerun"),
    report("e", "call", "passed"),
    report("f", "setup", "passed"),  # interrupted before its call was reported
    report("g", "setup", "passed", xfail=True),
]
MIXED_OUTCOMES = {
    "a": "error",
    "b": "skipped",
    "c": "xfailed",
    "d": "error",
    "e": "passed",
    "g": "passed",
}


def test_a_test_without_a_call_report_nor_a_failing_phase_has_no_outcome() -> None:
    log = OutcomeLog()
    for rep in MIXED_REPORTS:
        log.add(rep)
    assert log.outcomes() == MIXED_OUTCOMES
    assert is_quiet("setup", "passed", False)
    assert is_quiet("teardown", "passed", False)
    assert not is_quiet("call", "passed", False)
    assert not is_quiet("setup", "passed", True)
    assert not is_quiet("teardown", "failed", False)


def test_logged_reports_give_the_outcomes_of_reports_logged_one_by_one() -> None:
    """pytest's terminal reporter keeps reports grouped by status, not in the order logged."""
    grouped = sorted(MIXED_REPORTS, key=lambda rep: (rep.outcome, rep.when), reverse=True)
    logged = LoggedReports(grouped)
    assert logged.outcomes() == MIXED_OUTCOMES
    assert logged.failures == []
    assert logged.workers_of({"a", "b"}) == {}
    assert logged.durations_of({"b", "f"}) == {
        "b": {"setup": 0.5, "teardown": 0.5},
        "f": {"setup": 0.5},
    }


@pytest.mark.parametrize("split", [True, False])
def test_logged_reports_read_the_passed_tests_apart_to_the_same_outcomes(split: bool) -> None:
    """The terminal reporter's ``passed`` category is read for node ids only; whatever in it
    is not a plain passed call (a plugin's own status, an xfail) is read as any report."""
    passed = [
        rep
        for rep in MIXED_REPORTS
        if rep.outcome == "passed" and rep.when == "call" and not hasattr(rep, "wasxfail")
    ]
    odd = [report("b", "setup", "passed"), report("xp", "call", "passed", xfail=True)]
    others = [rep for rep in MIXED_REPORTS if rep not in passed]
    logged = (
        LoggedReports(others, [*passed, *odd]) if split else LoggedReports([*others, *passed, *odd])
    )
    assert logged.outcomes() == {**MIXED_OUTCOMES, "xp": "xpassed"}
    assert logged.durations_of({"xp"}) == {"xp": {"call": 0.5}}
    broken = LoggedReports([], [SimpleNamespace(nodeid="a")])  # no phase: read as any report
    assert broken.outcomes() == {}
    assert len(broken.failures) == 1


def test_logged_reports_set_aside_a_report_they_cannot_read() -> None:
    broken = SimpleNamespace(when="call")  # no outcome, no node id
    logged = LoggedReports([report("a", "call", "passed"), broken])
    assert logged.outcomes() == {"a": "passed"}
    assert len(logged.failures) == 1
    assert logged.failures[0].startswith("outcome of a report not recorded: AttributeError")


def test_outcome_log_on_a_controller_keeps_the_worker_of_each_test() -> None:
    log = OutcomeLog(track_workers=True)
    node = SimpleNamespace(gateway=SimpleNamespace(id="gw3"))
    log.add(report("a", "setup", "passed", node=node))
    log.add(report("b", "setup", "passed"))
    assert log.workers_of({"a", "b"}) == {"a": "gw3"}


def test_kept_reports_on_a_controller_give_workers_and_budget_verdicts() -> None:
    """A controller's reports carry the worker that sent them (xdist's ``node``) and what the
    worker set on them, such as a budget's verdict: read at the end, for the tests asked."""
    gw3, gw4 = (SimpleNamespace(gateway=SimpleNamespace(id=name)) for name in ("gw3", "gw4"))
    verdict = {"limits": {"energy_kwh": 1e-15}, "exceeded": True}
    logged = LoggedReports(
        [report("b", "call", "failed", node=gw4, carbon_budget=verdict)],
        [report("a", "call", "passed", node=gw3), report("c", "call", "passed", carbon_budget=1)],
    )
    assert logged.outcomes() == {"a": "passed", "b": "failed", "c": "passed"}
    assert logged.workers_of({"a", "b", "c"}) == {"a": "gw3", "b": "gw4"}
    assert logged.workers_of({"a"}) == {"a": "gw3"}
    assert logged.carried("carbon_budget") == {"b": verdict}  # "c" carries no mapping
