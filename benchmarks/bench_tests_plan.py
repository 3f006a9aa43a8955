"""Benchmark of per-test plans: a replay on real CI history and a synthetic matrix run end to end.

Part 1 replays the shared CI history (``failed_tests`` column) in time order with
``evaluate-tests`` settings. Part 2 builds a small package whose tests depend on two
environment-variable "axes" (``CONFIG_DB``, ``CONFIG_PY``), runs it with the real plugin
(``pytest --carbon --carbon-json``) in every cell of a 3 x 2 matrix for a history of runs with
injected bugs, plans with ``plan-tests``, runs the next runs with ``--carbon-plan`` and compares
them with full runs of the same code: failures still caught, executions and measured energy saved.
The section is written into ``docs/performance.md`` under ``## Per-test plans``.

    python benchmarks/bench_tests_plan.py [--history HISTORY.csv.gz] [--skip-real] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _doc import write_section

from pytest_carbon.matrix.history import LoadNotes, load_history
from pytest_carbon.matrix.tests_cli import register_test_commands
from pytest_carbon.matrix.tests_plan import TestPlanner
from pytest_carbon.matrix.tests_replay import TestsReplayConfig, csv_projects, replay_tests
from pytest_carbon.report.model import load_report

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "travis-python-dev.csv.gz"

DBS = ("sqlite", "postgres", "mysql")
PYS = ("py310", "py312")
#: Bugs injected per run of the synthetic history (1-based); later runs are planned.
HISTORY_BUGS: dict[int, str] = {3: "pure_add", 5: "mysql_quote", 6: "py312_order"}
EVAL_BUGS: dict[int, str] = {10: "postgres_null", 11: "pure_mul", 12: "py310_bytes"}
HISTORY_RUNS = 8
EVAL_RUNS = 4

PURE = """
import os, pytest
BUGS = os.environ.get("BUGS", "").split(",")

def burn(n):
    total = 0
    for i in range(n):
        total += i * i
    return total

def add(a, b):
    return a + b + (1 if "pure_add" in BUGS else 0)

def mul(a, b):
    return a * b + (1 if "pure_mul" in BUGS else 0)

@pytest.mark.parametrize("i", range(24))
def test_arithmetic(i):
    burn(20_000 + 4_000 * i)
    assert add(i, 1) == i + 1
    if i % 3 == 0:
        assert mul(i, 2) == 2 * i

@pytest.mark.parametrize("i", range(8))
def test_strings(i):
    burn(30_000)
    assert ("x" * i).count("x") == i
"""

DB = """
import os, pytest
DB = os.environ["CONFIG_DB"]
BUGS = os.environ.get("BUGS", "").split(",")

def burn(n):
    return sum(i * i for i in range(n))

def quote(value):
    if DB == "mysql" and "mysql_quote" in BUGS:
        return value
    return "'" + value.replace("'", "''") + "'"

def null():
    if DB == "postgres" and "postgres_null" in BUGS:
        return "NULL "
    return "NULL"

@pytest.mark.parametrize("text", ["a", "it's", "x'y'z"])
def test_quote(text):
    burn(40_000)
    assert quote(text).startswith("'")

@pytest.mark.parametrize("i", range(3))
def test_null(i):
    burn(40_000)
    assert null() == "NULL"
"""

COMPAT = """
import os, pytest
PY = os.environ["CONFIG_PY"]
BUGS = os.environ.get("BUGS", "").split(",")

def ordered(items):
    out = sorted(items)
    if PY == "py312" and "py312_order" in BUGS:
        out.reverse()
    return out

def to_bytes(text):
    if PY == "py310" and "py310_bytes" in BUGS:
        return text
    return text.encode()

@pytest.mark.parametrize("n", [3, 5])
def test_ordered(n):
    assert ordered(list(range(n, 0, -1))) == list(range(1, n + 1))

def test_bytes():
    assert isinstance(to_bytes("a"), bytes)
"""

FLAKY = """
import os, zlib

def test_network_timeout():
    seed = os.environ["GITHUB_RUN_ID"] + os.environ["CONFIG_DB"] + os.environ["CONFIG_PY"]
    assert zlib.crc32(seed.encode()) % 7 != 0
"""


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024.0 / 1024.0 if sys.platform == "darwin" else peak / 1024.0


def matrix_command(argv: Sequence[str]) -> None:
    """``pytest-carbon matrix ARGV`` through the test commands' own parser."""
    parser = argparse.ArgumentParser(prog="pytest-carbon matrix")
    register_test_commands(parser.add_subparsers(dest="matrix_command", required=True))
    args = parser.parse_args(list(argv))
    args.handler(args)


# --------------------------------------------------------------------------- real history


def real_history(path: Path) -> dict[str, Any]:
    """The replay on the shared CI history, with a few settings around the defaults."""
    started = time.perf_counter()
    records = load_history([path], with_tests=True, notes=LoadNotes())
    projects = list(csv_projects(records))
    del records
    load_s = time.perf_counter() - started
    print(f"loaded {len(projects)} projects in {load_s:.0f} s", file=sys.stderr, flush=True)
    settings = [
        ("default", {}, TestsReplayConfig()),
        ("recent failures 0", {"recent_failures": 0}, TestsReplayConfig()),
        ("min runs 20", {"min_runs": 20}, TestsReplayConfig()),
        ("no full runs", {}, TestsReplayConfig(full_every=0)),
    ]
    rows = []
    for name, params, config in settings:
        began = time.perf_counter()
        result = replay_tests(projects, lambda params=params: TestPlanner(**params), config, name)
        rows.append(dict(result.to_dict(), seconds=time.perf_counter() - began))
        print(f"replayed with {name} in {rows[-1]['seconds']:.0f} s", file=sys.stderr, flush=True)
    return {"load_s": load_s, "rows": rows, "peak_mb": peak_memory_mb()}


# --------------------------------------------------------------------------- synthetic suite


def write_suite(root: Path) -> None:
    """The synthetic package's tests."""
    (root / "tests").mkdir(parents=True)
    for name, text in (
        ("test_pure.py", PURE),
        ("test_db.py", DB),
        ("test_compat.py", COMPAT),
        ("test_flaky.py", FLAKY),
    ):
        (root / "tests" / name).write_text(textwrap.dedent(text), encoding="utf-8")


def cells() -> list[tuple[str, str, str]]:
    """(job name, db, python) of every cell."""
    return [(f"{db}-{py}", db, py) for db in DBS for py in PYS]


def run_cell(
    root: Path, run: int, cell: tuple[str, str, str], out: Path, plan: Path | None
) -> dict[str, Any]:
    """One job: ``pytest --carbon`` in one cell; returns its exit status and report path."""
    job, db, py = cell
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GITHUB_", "PYTEST_CARBON", "PYTEST_ADDOPTS"))
    }
    env.update(
        GITHUB_ACTIONS="true",
        GITHUB_RUN_ID=str(run),
        GITHUB_SHA=f"c{run:04d}",
        GITHUB_REPOSITORY="acme/synth",
        CONFIG_DB=db,
        CONFIG_PY=py,
        BUGS=",".join(bug for when, bug in {**HISTORY_BUGS, **EVAL_BUGS}.items() if when == run),
    )
    report = out / f"run{run:02d}" / f"{job}.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    command += ["--carbon", f"--carbon-json={report}", f"--carbon-job={job}", "--carbon-top=0"]
    command += [f"--carbon-matrix=db={db}", f"--carbon-matrix=python={py}", "tests"]
    command += ["--carbon-compare-regions=none", "--carbon-summary=none"]
    if plan is not None:
        command.append(f"--carbon-plan={plan}")
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    return {"job": job, "status": done.returncode, "report": report, "tail": done.stdout[-300:]}


def run_matrix(root: Path, run: int, out: Path, plan: Path | None) -> list[dict[str, Any]]:
    """Every cell of one run, two at a time."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(lambda cell: run_cell(root, run, cell, out, plan), cells()))


def figures_of(reports: list[Path]) -> dict[str, Any]:
    """Failing pairs, executions, per-test energy and session energy of one run's reports."""
    failing: set[tuple[str, str]] = set()
    executions = 0
    test_kwh = session_kwh = 0.0
    slowest = 0.0
    for path in reports:
        report = load_report(path)
        job = report.identity.job or path.stem
        executed = [t for t in report.tests if t.outcome not in ("skipped",)]
        executions += len(executed)
        failing |= {(t.nodeid, job) for t in executed if t.outcome in ("failed", "error")}
        test_kwh += sum(t.energy_kwh for t in report.tests)
        session_kwh += report.energy_kwh
        slowest = max(slowest, sum(t.wall_s for t in report.tests))
    return {
        "failing": failing,
        "executions": executions,
        "test_kwh": test_kwh,
        "session_kwh": session_kwh,
        "slowest_job_s": slowest,
    }


def synthetic(work: Path) -> dict[str, Any]:
    """History runs, then planned runs against full runs of the same code."""
    root = work / "synth"
    write_suite(root)
    planned_dir, full_dir = work / "planned", work / "full"
    started = time.perf_counter()
    for run in range(1, HISTORY_RUNS + 1):
        for result in run_matrix(root, run, planned_dir, None):
            if not result["report"].is_file():
                raise RuntimeError(f"run {run} {result['job']} wrote no report: {result['tail']}")
    for run in range(1, HISTORY_RUNS + 1):  # the full-run history is the same history
        for path in (planned_dir / f"run{run:02d}").glob("*.json"):
            target = full_dir / path.parent.name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    per_run = []
    plan = work / "test-plan.json"
    for run in range(HISTORY_RUNS + 1, HISTORY_RUNS + EVAL_RUNS + 1):
        matrix_command(["plan-tests", str(planned_dir), "-o", str(plan), "--format", "json"])
        planned = run_matrix(root, run, planned_dir, plan)
        full = run_matrix(root, run, full_dir, None)
        got = figures_of([r["report"] for r in planned])
        want = figures_of([r["report"] for r in full])
        caught_tests = {nodeid for nodeid, _ in got["failing"]}
        per_run.append(
            {
                "run": run,
                "bug": EVAL_BUGS.get(run, ""),
                "failing_pairs": len(want["failing"]),
                "caught_pairs": sum(1 for nodeid, _ in want["failing"] if nodeid in caught_tests),
                "red_full": any(r["status"] != 0 for r in full),
                "red_planned": any(r["status"] != 0 for r in planned),
                "executions": want["executions"],
                "executions_planned": got["executions"],
                "test_kwh": want["test_kwh"],
                "test_kwh_planned": got["test_kwh"],
                "session_kwh": want["session_kwh"],
                "session_kwh_planned": got["session_kwh"],
                "slowest_job_s": want["slowest_job_s"],
                "slowest_job_s_planned": got["slowest_job_s"],
            }
        )
    wall = time.perf_counter() - started
    evaluation = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.argv[0] = 'pytest-carbon matrix'; "
            "from bench_tests_plan import matrix_command; matrix_command(sys.argv[1:])",
            "evaluate-tests",
            str(full_dir),
            "--min-history",
            "4",
            "--format",
            "json",
        ],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        check=True,
    )
    return {"runs": per_run, "wall_s": wall, "replay": json.loads(evaluation.stdout)}


# --------------------------------------------------------------------------- the section


def pct(part: float, whole: float) -> str:
    """A share as a percentage with one decimal."""
    return f"{100 * part / whole:.1f} %" if whole else "n/a"


def render(real: dict[str, Any] | None, synth: dict[str, Any] | None, history: Path) -> str:
    """The markdown section."""
    lines = [
        f"Measured with `python benchmarks/bench_tests_plan.py` on CPython "
        f"{platform.python_version()}, {platform.machine()}.",
        "",
    ]
    if real is not None:
        lines += [
            f"### Replay on real CI history (`{history.name}`, `failed_tests` column)",
            "",
            "Command: `pytest-carbon matrix evaluate-tests travis-python-dev.csv.gz` "
            "(defaults: `--min-runs 5 --recent-failures 3 --train-share 0.5 --full-every 10 "
            "--min-history 20`). Per project, in time order: learn the first half as it "
            "happened, then plan each run from the past only and learn only what the plan ran; "
            "every 10th replayed run is a full run the policy pays for.",
            "",
            "The history names only failed tests. Candidate tests are those seen failing so "
            "far in the project; a job runs a candidate once it has failed there; a job of "
            "known outcome ran its candidates (passed unless named). Executions saved are a "
            "share of these candidates' executions, not of whole suites; there is no per-test "
            "energy in this history, and no changed-files list.",
            "",
            "| setting | projects | runs replayed | failing runs still red | failing (test, job) "
            "pairs caught | of tests known when planned | executions skipped | plan ms | "
            "replay s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for row in real["rows"]:
            lines.append(
                f"| {row['name']} | {row['projects']} | {row['runs']:,} | "
                f"{pct(row['caught_runs'], row['failing_runs'])} | "
                f"{pct(row['caught_pairs'], row['failing_pairs'])} "
                f"({row['failing_pairs']:,} pairs) | "
                f"{pct(row['known_caught_pairs'], row['known_failing_pairs'])} | "
                f"{pct(row['skipped'], row['executions'])} of {row['executions']:,} | "
                f"{row['mean_plan_ms']:.2f} | {row['seconds']:.0f} |"
            )
        lines += [
            "",
            f"Loading and adapting the history took {real['load_s']:.0f} s; peak memory "
            f"{real['peak_mb']:.0f} MiB.",
            "",
        ]
    if synth is not None:
        runs = synth["runs"]
        lines += [
            "### Synthetic matrix suite, real plugin end to end",
            "",
            "A package of 42 tests in a 3 x 2 matrix (`CONFIG_DB` sqlite/postgres/mysql x "
            "`CONFIG_PY` py310/py312): 32 tests depend on nothing, 6 on the database, 3 on the "
            "Python version, 1 fails in some cells at random. History: "
            f"{HISTORY_RUNS} runs of every cell with `pytest --carbon --carbon-json`, with bugs "
            "injected in runs 3 (pure code, every cell), 5 (mysql only) and 6 (py312 only). "
            f"Then {EVAL_RUNS} runs, each planned from the reports of the runs before it "
            "(planned runs only report what they ran) and run twice: with `--carbon-plan` and "
            "in full, to know what should have failed. New bugs: run 10 (postgres only), 11 "
            "(pure code), 12 (py310 only).",
            "",
            "Commands per run: `pytest --carbon --carbon-json reports/runN/JOB.json "
            "--carbon-job JOB --carbon-matrix db=DB --carbon-matrix python=PY`, then "
            "`pytest-carbon matrix plan-tests reports/ -o test-plan.json` and the same pytest "
            "command with `--carbon-plan test-plan.json`.",
            "",
            "| run | bug | failing pairs caught | run red (full / planned) | executions run "
            "(planned of full) | test energy, planned ÷ full | session energy, planned ÷ full | "
            "slowest job's tests (planned of full) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in runs:
            lines.append(
                f"| {row['run']} | {row['bug'] or '-'} | "
                f"{row['caught_pairs']} of {row['failing_pairs']} | "
                f"{'red' if row['red_full'] else 'green'} / "
                f"{'red' if row['red_planned'] else 'green'} | "
                f"{row['executions_planned']} of {row['executions']} | "
                f"{pct(row['test_kwh_planned'], row['test_kwh'])} | "
                f"{pct(row['session_kwh_planned'], row['session_kwh'])} | "
                f"{row['slowest_job_s_planned']:.2f} s of {row['slowest_job_s']:.2f} s |"
            )
        total = {
            key: sum(row[key] for row in runs)
            for key in (
                "failing_pairs",
                "caught_pairs",
                "executions",
                "executions_planned",
                "test_kwh",
                "test_kwh_planned",
                "session_kwh",
                "session_kwh_planned",
            )
        }
        replay = synth["replay"]
        lines += [
            "",
            f"Over the {EVAL_RUNS} planned runs: {total['caught_pairs']} of "
            f"{total['failing_pairs']} failing (test, job) pairs caught; "
            f"{pct(total['executions'] - total['executions_planned'], total['executions'])} of "
            "test executions and "
            f"{pct(total['test_kwh'] - total['test_kwh_planned'], total['test_kwh'])} of the "
            "measured test energy saved ("
            f"{pct(total['session_kwh'] - total['session_kwh_planned'], total['session_kwh'])} "
            "of whole-session energy: interpreter start-up, collection and the plugin's own "
            "work do not shrink). Energy is the plugin's measurement of each run, so small "
            "differences between a planned and a full run are partly noise.",
            "",
            "Replay of the full-run reports (`pytest-carbon matrix evaluate-tests full/ "
            "--min-history 4`): "
            f"{pct(replay['caught_pairs'], replay['failing_pairs'])} of "
            f"{replay['failing_pairs']} failing pairs caught, "
            f"{pct(replay['skipped'], replay['executions'])} of executions and "
            f"{pct(replay['energy_kwh_saved'], replay['energy_kwh'])} of test energy saved over "
            f"{replay['runs']} replayed runs.",
            "",
            f"Whole synthetic benchmark: {synth['wall_s']:.0f} s.",
        ]
    return "\n".join(lines)


def main() -> None:
    """Run the benchmark and write the section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--history", type=Path, default=DATA)
    parser.add_argument("--skip-real", action="store_true", help="skip the real-history replay")
    parser.add_argument("--skip-synthetic", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print, do not edit the docs")
    args = parser.parse_args()
    real = None if args.skip_real else real_history(args.history)
    synth = None
    if not args.skip_synthetic:
        with tempfile.TemporaryDirectory() as work:
            synth = synthetic(Path(work))
    body = render(real, synth, args.history)
    print(body)
    if not args.no_write:
        write_section("tests-plan", "Per-test plans", body)


if __name__ == "__main__":
    main()
