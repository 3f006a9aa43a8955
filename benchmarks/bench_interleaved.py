"""Per-test overhead of ``--carbon`` end to end, with the plugin switched on and off inside runs.

``bench_overhead.py`` compares whole runs; on a shared machine two identical runs differ by
±10 % in their test loops, which is ±100 µs a test on a fast suite, so a 20 µs effect cannot be
seen there without hundreds of runs. Here every session is a real ``pytest --carbon`` run in
which a probe plugin (``_interleave.py``) switches the carbon plugin's per-test hooks on and off
in blocks of consecutive tests (on, off, off, on, …) and times every block. Sessions come in
mirrored pairs, the second running each block the other way round, so that every block's tests
run once with the hooks and once without:

    overhead per test = (Σ time of blocks run with the hooks − Σ time of the same blocks
                         run without them) ÷ tests

Everything else a test costs inside pytest (the real hook machinery, the other plugins, the
terminal's progress, the memory the records take) is in the measured blocks. Start-up and
shutdown are not (``bench_overhead.py`` measures them). The 95 % interval comes from resampling
the blocks (bootstrap, 2,000 draws).

Run ``python benchmarks/bench_interleaved.py [--suite NAME] [--pairs 3] [--block 50] [--write]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _doc import write_section
from bench_overhead import HERE, PYPI_SUITES, REPO, Suite, fetch_pypi_suite, generate_suite

PATTERNS = ("onfirst", "offfirst")


def run_session(suite: Suite, pattern: str, block: int, cache_dir: Path) -> list[dict[str, int]]:
    """One ``pytest --carbon -p _interleave`` session; its blocks' timings."""
    probe = Path(tempfile.mkstemp(suffix=".json")[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [suite.env.get("PYTHONPATH", ""), str(HERE), env.get("PYTHONPATH", "")])
    )
    env.update(
        CARBON_BENCH_INTERLEAVE=str(probe),
        CARBON_BENCH_PATTERN=pattern,
        CARBON_BENCH_BLOCK=str(block),
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-o",
        f"cache_dir={cache_dir}",
        "-p",
        "_interleave",
        "--carbon",
        *suite.args,
    ]
    done = subprocess.run(command, cwd=suite.path, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"run of {suite.name} failed:\n{done.stdout[-2000:]}{done.stderr}")
    blocks: list[dict[str, int]] = json.loads(probe.read_text())["blocks"]
    probe.unlink()
    return blocks


def block_pairs(sessions: list[list[dict[str, int]]]) -> list[tuple[int, int, int, int, int]]:
    """``(tests, on wall, off wall, on cpu, off cpu)`` (ns) for every block of every mirrored
    pair of sessions."""
    pairs = []
    for first, second in zip(sessions[::2], sessions[1::2], strict=True):
        for a, b in zip(first, second, strict=False):
            if a["tests"] != b["tests"] or a["on"] == b["on"]:
                raise SystemExit("mirrored sessions disagree on their blocks")
            on, off = (a, b) if a["on"] else (b, a)
            pairs.append((on["tests"], on["wall_ns"], off["wall_ns"], on["cpu_ns"], off["cpu_ns"]))
    return pairs


def per_test_us(pairs: list[tuple[int, int, int, int, int]], on: int, off: int) -> float:
    """Σ on − Σ off over the blocks, per test, in µs (``on``/``off``: field indices)."""
    tests = sum(p[0] for p in pairs)
    return (sum(p[on] for p in pairs) - sum(p[off] for p in pairs)) / tests / 1e3


def interval(
    pairs: list[tuple[int, int, int, int, int]], on: int, off: int, draws: int = 2000
) -> tuple[float, float]:
    """95 % bootstrap interval of :func:`per_test_us`, resampling blocks."""
    chooser = random.Random(7)
    estimates = sorted(
        per_test_us(chooser.choices(pairs, k=len(pairs)), on, off) for _ in range(draws)
    )
    return estimates[int(0.025 * draws)], estimates[int(0.975 * draws) - 1]


def measure(suite: Suite, pairs: int, block: int) -> str:
    """Run ``pairs`` mirrored pairs of sessions; the suite's markdown row."""
    sessions = []
    with tempfile.TemporaryDirectory(prefix="carbon-bench-cache-") as caches:
        run_session(suite, PATTERNS[0], block, Path(caches))  # warm-up: bytecode, caches
        for index in range(2 * pairs):
            sessions.append(run_session(suite, PATTERNS[index % 2], block, Path(caches)))
            print(f"  session {index + 1}/{2 * pairs} done", file=sys.stderr)
    measured = block_pairs(sessions)
    tests = sum(p[0] for p in measured)
    plain_us = sum(p[2] for p in measured) / tests / 1e3
    wall = per_test_us(measured, 1, 2)
    wall_low, wall_high = interval(measured, 1, 2)
    cpu = per_test_us(measured, 3, 4)
    cpu_low, cpu_high = interval(measured, 3, 4)
    by_pair = [per_test_us(block_pairs(sessions[2 * i : 2 * i + 2]), 1, 2) for i in range(pairs)]
    return (
        f"| {suite.name} | {tests // pairs:,} | {len(measured)} | {plain_us:,.0f} µs "
        f"| **{wall:+.1f} µs** ({wall_low:+.1f} to {wall_high:+.1f}) "
        f"| {cpu:+.1f} µs ({cpu_low:+.1f} to {cpu_high:+.1f}) "
        f"| {statistics.median(by_pair):+.1f} µs ({min(by_pair):+.1f} to {max(by_pair):+.1f}) "
        f"| {1 + wall / plain_us:.3f} |"
    )


HEADER = [
    "| suite | tests a session | blocks compared | a test without the hooks (wall) "
    "| overhead a test, wall (95 % interval) | overhead a test, CPU (95 % interval) "
    "| wall, median of pairs (range) | test loop ratio |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=5000, help="size of the generated suite")
    parser.add_argument("--pairs", type=int, default=3, help="mirrored pairs of sessions")
    parser.add_argument("--block", type=int, default=50, help="tests a block")
    parser.add_argument(
        "--suite", action="append", choices=["generated", *PYPI_SUITES], help="default: all"
    )
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    subprocess.run(  # as `pip install` does: no run compiles the package from source
        [sys.executable, "-m", "compileall", "-q", str(REPO / "src" / "pytest_carbon")], check=True
    )
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.suite or ["generated", *PYPI_SUITES]:
            suite = (
                generate_suite(Path(tmp) / name, args.tests)
                if name == "generated"
                else fetch_pypi_suite(name)
            )
            print(f"{suite.name}:", file=sys.stderr)
            rows.append(measure(suite, args.pairs, args.block))
            print("\n".join([*HEADER, *rows]))
    command = " ".join(["python benchmarks/bench_interleaved.py", *sys.argv[1:]])
    body = "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} with `{command}` (Python "
            f"{sys.version.split()[0]}, {os.cpu_count()} CPUs): {args.pairs} mirrored pairs of "
            f"`pytest --carbon` sessions a suite, the carbon plugin's per-test hooks switched on "
            f"and off in blocks of {args.block} tests (on, off, off, on, …; the second session "
            "of a pair the other way round), so every block ran once each way. Target: at most "
            "20 µs a test.",
            "",
            *HEADER,
            *rows,
        ]
    )
    if args.write:
        write_section("interleaved", "Per-test overhead, switched inside runs", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
