"""The cost of ``--carbon`` in instructions, counted by valgrind: exact where timings are noise.

On a shared machine two identical runs differ by ±10 % in time, and a 2 % overhead cannot be
seen. The number of instructions a run executes hardly varies at all (the same run twice differs
by a few in a billion), so here every suite runs under ``valgrind --tool=cachegrind`` at two
sizes, with the plugin blocked (``plain``) and with ``--carbon``. For each mode,

    instructions = fixed + per_test × tests

is solved from the two sizes. ``per_test`` holds everything that grows with the number of tests
(collection, the plugin's hooks, pricing every test, the summary); ``fixed`` holds start-up and
whatever does not grow. The plugin's cost is the difference of the two modes.

Python's cyclic garbage collector is counted apart (its functions in cachegrind's per-function
output): a full collection walks every object of the process, so one collection more or less
in a run (the plugin's modules are objects too, and thresholds fall where they fall) moves the
slope by its whole cost divided by the difference of the sizes. That is a step, not a cost per
test, and the table shows the figure with and without it.

To turn instructions into time, the same runs are timed without valgrind: this machine's rate
for this code is the plain run's instructions ÷ its user CPU seconds (valgrind counts user-mode
instructions only). The plugin's system calls (a CPU-clock read at each of a test's four
boundaries and a read of the children's CPU at its end) spend time in the kernel, which valgrind
does not count: each call is timed with ``timeit`` and counted under valgrind in the same loop,
and its time beyond its counted instructions (at the suite's rate) is added to every test.

With ``--xdist N`` every suite runs with ``-n N`` and valgrind follows the workers: the counts
are those of all the run's processes, and so is the rate (their user CPU seconds together).
Those counts vary from run to run (how often each process wakes up to wait on the others
depends on timing): each is taken three times (``--repeat``), the medians are used, and the
row shows the range of the per-test figure over the repetitions.

Every pytest process is started with ``PYTHONHASHSEED=0`` and its own pytest cache (warmed
first, so ``--carbon`` reads the hardware from the cache, as every run after a machine's first).

Run ``python benchmarks/bench_instructions.py [--suite NAME] [--write]`` (needs valgrind).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from _doc import write_section
from bench_overhead import REPO, Suite, fetch_pypi_suite, generate_suite, suite_environment

MODES = {"plain": ["-p", "no:carbon"], "carbon": ["--carbon"]}
#: ``--previous SRC``: a mode running ``--carbon`` with another checkout's ``src`` first on the
#: path (the code before a change, measured in the same run).
PREVIOUS = "previous"

#: Real suites at two sizes: (pytest arguments of the smaller, of the larger).
SUBSETS: dict[str, tuple[list[str], list[str]]] = {
    "more-itertools==10.5.0": (["tests/test_recipes.py"], ["tests"]),
    "packaging==24.2": (
        ["tests/test_structures.py", "tests/test_utils.py"],
        ["tests/test_structures.py", "tests/test_utils.py", "tests/test_version.py"],
    ),
}


@dataclass
class Run:
    """One pytest process: the tests it ran, instructions under valgrind, user CPU seconds."""

    tests: int
    instructions: int = 0
    user_s: float = 0.0
    gc: int = 0  # the garbage collector's share of ``instructions``


def pytest_command(suite: Suite, mode: str, args: list[str], cache: Path) -> list[str]:
    """The pytest command line of one run (no test selection from the suite's own options)."""
    options = [a for a in suite.args if not a.startswith("tests")]
    mode = "carbon" if mode == PREVIOUS else mode
    return [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:randomly",
        "-o",
        f"cache_dir={cache}",
        *MODES[mode],
        *options,
        *args,
    ]


def environment(suite: Suite, previous: str = "") -> dict[str, str]:
    """The run's environment: the suite's PYTHONPATH (``previous`` first), a fixed hash seed."""
    env = suite_environment(suite, previous)
    env["PYTHONHASHSEED"] = "0"
    return env


def count(suite: Suite, mode: str, args: list[str], cache: Path, previous: str = "") -> Run:
    """Instructions of one run under valgrind (and of its garbage collector), and the number of
    tests it ran; with ``-n`` among ``args``, of every process of the run (xdist's workers).

    xdist kills a worker that has not exited 10 s after the session (valgrind writing its
    counts on a busy machine can take that long), and a killed worker leaves no count: such a
    run is made again, up to three times in all.
    """
    for attempt in range(3):
        try:
            return count_once(suite, mode, args, cache, previous)
        except LostProcess as lost:
            print(f"  {lost}{'; run again' if attempt < 2 else ''}", file=sys.stderr)
    raise SystemExit(f"{mode} run of {suite.name}: a process was not counted, three times")


class LostProcess(Exception):
    """A process of the run ended without valgrind's count."""


def count_once(suite: Suite, mode: str, args: list[str], cache: Path, previous: str) -> Run:
    """One counted run (see :func:`count`)."""
    workers = "-n" in args
    with tempfile.TemporaryDirectory() as folder:
        command = [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            f"--trace-children={'yes' if workers else 'no'}",
            f"--cachegrind-out-file={folder}/cachegrind.out.%p",
            *pytest_command(suite, mode, args, cache),
        ]
        done = subprocess.run(
            command,
            cwd=suite.path,
            env=environment(suite, previous),
            capture_output=True,
            text=True,
            check=False,
        )
        refs = re.findall(r"I\s+refs:\s+([\d,]+)", done.stderr)
        if done.returncode not in (0, 1) or not refs:
            raise SystemExit(f"{mode} run of {suite.name} failed:\n{done.stdout[-2000:]}")
        pythons = len(re.findall(r"== Command: \S*python", done.stderr))
        if len(re.findall(r"==(\d+)== I\s+refs", done.stderr)) < pythons:
            # A worker ended without valgrind's summary (killed at the end): its count is lost.
            raise LostProcess(f"{mode} run of {suite.name}: a process was not counted")
        collector = sum(map(gc_instructions, Path(folder).glob("cachegrind.out.*")))
    instructions = sum(int(found.replace(",", "")) for found in refs)
    return Run(tests_in(done.stdout), instructions, gc=collector)


def gc_instructions(path: Path) -> int:
    """The instructions of Python's cyclic garbage collector in a cachegrind output file: its
    collection loop (``gcmodule.c``) and the types' traverse and visit functions it calls."""
    total, counting, where = 0, False, ""
    with path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if line.startswith("fl="):
                where = line[3:].strip()
            elif line.startswith("fn="):
                name = line[3:].strip()
                counting = (
                    where.endswith("gcmodule.c")
                    or name.endswith("_traverse")
                    or name.startswith("visit_")
                )
            elif counting and line[:1].isdigit():
                total += int(line.split()[1])
    return total


def tests_in(output: str) -> int:
    """How many tests a ``pytest -q`` run reported."""
    found = re.findall(r"(\d+) (passed|failed|skipped|xfailed|xpassed|error)", output)
    return sum(int(number) for number, _ in found)


def user_seconds(
    suite: Suite, mode: str, args: list[str], cache: Path, previous: str = ""
) -> float:
    """User CPU seconds of one run without valgrind."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    subprocess.run(
        pytest_command(suite, mode, args, cache),
        cwd=suite.path,
        env=environment(suite, previous),
        capture_output=True,
        check=False,
    )
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - before


#: The plugin's system calls: ``(name, import, call, how many a test)`` — a CPU-clock read at
#: each of a test's four boundaries and a read of the children's CPU at its end.
SYSCALLS = (
    ("process_time_ns", "from time import process_time_ns as f", "f()", 4),
    ("getrusage", "from resource import getrusage as f, RUSAGE_CHILDREN", "f(RUSAGE_CHILDREN)", 1),
)


@dataclass
class Syscall:
    """One of the plugin's system calls: its time, its user-mode instructions, calls a test."""

    name: str
    seconds: float
    instructions: float
    per_test: int

    def kernel_us(self, rate_per_us: float) -> float:
        """Its time outside the instructions valgrind counts (those are in the counts already)."""
        return max(0.0, self.seconds * 1e6 - self.instructions / rate_per_us)


def syscalls() -> list[Syscall]:
    """Each system call timed with ``timeit`` and counted under valgrind, in the same loop."""
    found = []
    for name, setup, call, per_test in SYSCALLS:
        seconds = min(timeit.repeat(call, setup, number=20000, repeat=5)) / 20000
        counts = []
        for loops in (20000, 60000):
            code = f"{setup}\nfor _ in range({loops}):\n    {call}\n"
            done = subprocess.run(
                ["valgrind", "--tool=cachegrind", "--cache-sim=no"]
                + ["--cachegrind-out-file=/dev/null", sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=False,
            )
            refs = re.search(r"I\s+refs:\s+([\d,]+)", done.stderr)
            if refs is None:
                raise SystemExit(f"valgrind could not count {call}:\n{done.stderr[-2000:]}")
            counts.append(int(refs.group(1).replace(",", "")))
        found.append(Syscall(name, seconds, (counts[1] - counts[0]) / 40000, per_test))
    return found


def kernel_us(calls: list[Syscall], rate_per_us: float) -> float:
    """The kernel time of the plugin's system calls for one test, at this rate, in µs."""
    return sum(call.per_test * call.kernel_us(rate_per_us) for call in calls)


def measure(
    suite: Suite,
    sizes: tuple[list[str], list[str]],
    timings: int,
    previous: str = "",
    repeat: int = 1,
) -> dict[str, float]:
    """Fixed and per-test instructions of each mode, and this machine's instruction rate.

    With ``repeat`` > 1 every count is taken that many times: a mode's per-test figure is the
    median of its repetitions' (each from its two sizes), and the range of the plugin's added
    figure over the repetitions (each against plain pytest's of the same repetition) is kept.
    """
    modes = [*MODES, PREVIOUS] if previous else list(MODES)
    jobs = [
        (mode, size, again)
        for again in range(repeat)
        for size in range(len(sizes))
        for mode in modes
    ]
    runs: dict[tuple[str, int, int], Run] = {}
    with tempfile.TemporaryDirectory(prefix="carbon-bench-cache-") as caches:

        def one(job: tuple[str, int, int]) -> Run:
            mode, size, _ = job
            cache = Path(caches) / f"{mode}{size}"
            src = previous if mode == PREVIOUS else ""
            return count(suite, mode, sizes[size], cache, src)

        for mode in modes:  # warm-up: each run's pytest cache, the hardware detected
            for size in range(len(sizes)):
                src = previous if mode == PREVIOUS else ""
                user_seconds(suite, mode, sizes[size], Path(caches) / f"{mode}{size}", src)
        # Instruction counts do not depend on what else runs: the runs share the CPUs.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for job, run in zip(jobs, pool.map(one, jobs), strict=True):
                runs[job] = run
                print(
                    f"  {job[0]}, size {job[1]}, run {job[2] + 1}: {run.tests} tests, "
                    f"{run.instructions:,} instructions",
                    file=sys.stderr,
                )
        larger = Path(caches) / "plain1"
        seconds = statistics.median(
            user_seconds(suite, "plain", sizes[1], larger) for _ in range(timings)
        )
    figures: dict[str, float] = {}
    slopes: dict[str, list[float]] = {}
    for mode in modes:
        small, large = (
            [runs[mode, size, again] for again in range(repeat)] for size in range(len(sizes))
        )
        tests_small, tests_large = small[0].tests, large[0].tests
        changed = any(r.tests != tests_small for r in small) or any(
            r.tests != tests_large for r in large
        )
        if tests_small >= tests_large or changed:
            raise SystemExit(f"{suite.name}: the two sizes ran {tests_small} and {tests_large}")
        tests = tests_large - tests_small
        slopes[mode] = [
            (b.instructions - a.instructions) / tests for a, b in zip(small, large, strict=True)
        ]
        per_test = statistics.median(slopes[mode])
        figures[f"{mode}_per_test"] = per_test
        figures[f"{mode}_fixed"] = statistics.median(r.instructions for r in small) - (
            per_test * tests_small
        )
        figures[f"{mode}_gc_per_test"] = (
            statistics.median(r.gc for r in large) - statistics.median(r.gc for r in small)
        ) / tests
    if repeat > 1:
        added = [c - p for c, p in zip(slopes["carbon"], slopes["plain"], strict=True)]
        figures["added_low"], figures["added_high"] = min(added), max(added)
    figures["tests"] = tests_large
    figures["rate_per_us"] = statistics.median(r.instructions for r in large) / seconds / 1e6
    return figures


def row(name: str, figures: dict[str, float], calls: list[Syscall]) -> str:
    """The suite's markdown row."""
    extra = figures["carbon_per_test"] - figures["plain_per_test"]
    collector = figures["carbon_gc_per_test"] - figures["plain_gc_per_test"]
    before = (
        f"{figures['previous_per_test'] - figures['plain_per_test']:+,.0f}"
        if "previous_per_test" in figures
        else "—"
    )
    fixed = figures["carbon_fixed"] - figures["plain_fixed"]
    rate = figures["rate_per_us"]
    kernel = kernel_us(calls, rate)
    per_test_us = extra / rate + kernel
    plain_us = figures["plain_per_test"] / rate
    spread = (
        f"; repeats {figures['added_low']:+,.0f} to {figures['added_high']:+,.0f}"
        if "added_low" in figures
        else ""
    )
    return (
        f"| {name} | {figures['tests']:,.0f} | {figures['plain_per_test']:,.0f} "
        f"| {extra:+,.0f} ({extra / figures['plain_per_test']:+.2%}{spread}) | {collector:+,.0f} "
        f"| {before} | {rate:,.0f} | {plain_us:,.0f} µs "
        f"| **{per_test_us:+.1f} µs** ({per_test_us / plain_us:+.2%}) "
        f"| {(extra - collector) / rate + kernel:+.1f} µs "
        f"| {fixed / 1e6:+,.0f} M ≈ {fixed / rate / 1e6:+.3f} s |"
    )


HEADER = [
    "| suite | tests | instructions a test, plain | added by `--carbon` a test "
    "| of which the garbage collector | added by the previous code | instructions a µs here "
    "| a test, plain | added a test, with system calls | the same without the collector "
    "| added once (start-up, fixed) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=1000, help="smaller generated suite")
    parser.add_argument("--timings", type=int, default=3, help="native runs for the rate")
    parser.add_argument(
        "--suite", action="append", choices=["generated", *SUBSETS], help="default: all"
    )
    parser.add_argument(
        "--previous", default="", help="another checkout's src folder, measured as a third mode"
    )
    parser.add_argument(
        "--xdist", type=int, default=0, help="run every suite with pytest-xdist's -n N"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="counts a size and mode, medians used (default 1; 3 with --xdist, whose counts "
        "vary from run to run with the processes' timing)",
    )
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: this benchmark counts instructions with it")
    subprocess.run(  # as `pip install` does: no run compiles the package from source
        [sys.executable, "-m", "compileall", "-q", str(REPO / "src" / "pytest_carbon")], check=True
    )
    calls = syscalls()
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.suite or ["generated", *SUBSETS]:
            if name == "generated":
                # Two folders, one suite: the sizes differ in tests per module, not in modules.
                generate_suite(Path(tmp) / "small", args.tests)
                generate_suite(Path(tmp) / "large", 3 * args.tests)
                suite = Suite(f"generated, {args.tests:,} and {3 * args.tests:,} tests", Path(tmp))
                sizes = (["small"], ["large"])
            else:
                suite = fetch_pypi_suite(name)
                suite.name = f"{suite.name}, two sizes"
                sizes = SUBSETS[name]
            if args.xdist:  # every process counted: the controller and its workers
                workers = ["-n", str(args.xdist)]
                sizes = ([*workers, *sizes[0]], [*workers, *sizes[1]])
                suite.name = f"{suite.name}, -n {args.xdist}"
            print(f"{suite.name}:", file=sys.stderr)
            figures = measure(
                suite,
                sizes,
                args.timings,
                str(Path(args.previous).resolve()) if args.previous else "",
                repeat=args.repeat or (3 if args.xdist else 1),
            )
            rows.append(row(suite.name, figures, calls))
            print("\n".join([*HEADER, *rows]))
    shown = ["<checkout of it>/src" if a == args.previous else a for a in sys.argv[1:]]
    command = " ".join(["python benchmarks/bench_instructions.py", *shown])
    body = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} with `{command}` (Python "
            f"{sys.version.split()[0]}, valgrind's cachegrind). The last columns add the kernel "
            "time of the plugin's system calls, timed apart: "
            + "; ".join(
                f"`{call.name}` {call.seconds * 1e6:.2f} µs a call, of which "
                f"{call.instructions:,.0f} instructions counted, {call.per_test} a test"
                for call in calls
            )
            + ". Target: at most 20 µs a test.",
            "",
            *HEADER,
            *rows,
        ]
    )
    if args.write:
        write_section("instructions", "Per-test overhead in instructions", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
