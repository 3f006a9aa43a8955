"""Overhead of ``pytest --carbon`` against plain pytest, in paired alternating runs.

For each suite, every round runs each mode once, in rotated order, as a fresh process:

- ``plain``: pytest with the plugin blocked (``-p no:carbon``) — the baseline;
- ``off``: the plugin installed but not switched on (must cost nothing measurable);
- ``carbon``: ``--carbon``, the hardware known from pytest's cache (every run after the first);
- ``carbon-detect``: ``--carbon --carbon-detect``, codecarbon detecting the hardware in its side
  process, as on a machine's first run (a fresh CI runner without a restored cache);
- ``codecarbon-tasks``: codecarbon's task API wrapped around every test, as users write by hand.

The package is byte-compiled first, as ``pip install`` does. A probe plugin (``_probe.py``)
timestamps the start of the test loop and its end, so that start-up (process launch → first test),
the loop (per-test cost) and shutdown (report building, waiting for codecarbon) are measured
apart; collection noise does not blur the per-test figure.

Run ``python benchmarks/bench_overhead.py --help``. Results go to stdout as markdown and, with
``--write``, into docs/performance.md between the ``overhead`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from _doc import write_section

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = HERE / ".cache"

MODES: dict[str, list[str]] = {
    "plain": ["-p", "no:carbon"],
    "off": [],
    "carbon": ["--carbon"],
    "carbon-detect": ["--carbon", "--carbon-detect"],
    "codecarbon-tasks": ["-p", "no:carbon", "-p", "_codecarbon_tasks"],
}


@dataclass
class Suite:
    """A test suite to run: its folder, extra pytest arguments and environment."""

    name: str
    path: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


#: Real third-party suites: sdist, extra test requirements, pytest arguments, PYTHONPATH.
PYPI_SUITES: dict[str, tuple[list[str], list[str], str]] = {
    "more-itertools==10.5.0": ([], ["tests"], "."),
    # packaging's own config turns warnings into errors; newer pytest deprecations must not count.
    "packaging==24.2": (
        ["pretend"],
        [
            "tests",
            "-W",
            "ignore::pytest.PytestRemovedIn10Warning",
            "-W",
            "ignore::DeprecationWarning",
        ],
        "src",
    ),
}


def generate_suite(root: Path, tests: int) -> Suite:
    """A suite of ``tests`` trivial tests in 50 modules (the per-test cost is all overhead)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    per_module = max(tests // 50, 1)
    for module in range(50):
        lines = [f"def test_{i}():\n    assert {i} + 1 > {i}\n" for i in range(per_module)]
        (root / f"test_m{module:02d}.py").write_text("\n".join(lines))
    return Suite(f"generated {per_module * 50:,} tests", root)


def fetch_pypi_suite(spec: str) -> Suite:
    """Download a source distribution from PyPI, unpack it, install its test requirements."""
    extra, args, pythonpath = PYPI_SUITES[spec]
    CACHE.mkdir(exist_ok=True)
    name, version = spec.split("==")
    target = CACHE / f"{name}-{version}"
    if not target.exists():
        download = Path(tempfile.mkdtemp())
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(download),
                spec,
            ],
            check=True,
        )
        (archive,) = download.glob("*.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(CACHE, filter="data")
        unpacked = next(
            p
            for p in CACHE.iterdir()
            if p.is_dir()
            and p.name.lower().replace("_", "-").startswith(name.lower())
            and p.name.endswith(version)
        )
        if unpacked != target:
            unpacked.rename(target)
        shutil.rmtree(download)
    if extra:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *extra], check=True)
    env = {"PYTHONPATH": os.pathsep.join([str(target / pythonpath), str(HERE)])}
    return Suite(f"{name} {version} (PyPI sdist)", target, args, env)


def suite_environment(suite: Suite, first: str = "") -> dict[str, str]:
    """This process's environment with the suite's PYTHONPATH and the benchmarks' folder (and
    ``first`` before them, when given)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [first, suite.env.get("PYTHONPATH", ""), str(HERE), env.get("PYTHONPATH", "")])
    )
    return env


def run_once(suite: Suite, mode: str, extra: list[str], cache_dir: Path) -> dict[str, float]:
    """One pytest process; the probe's timings (each mode has pytest's cache, in its own folder)."""
    probe = Path(tempfile.mkstemp(suffix=".json")[1])
    env = suite_environment(suite)
    env["CARBON_BENCH_PROBE"] = str(probe)
    env["CARBON_BENCH_LAUNCH"] = repr(time.time())
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-o",
        f"cache_dir={cache_dir}",
        "-p",
        "_probe",
        *MODES[mode],
        *extra,
        *suite.args,
    ]
    done = subprocess.run(command, cwd=suite.path, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"{mode} run of {suite.name} failed:\n{done.stdout[-2000:]}{done.stderr}")
    timings: dict[str, float] = json.loads(probe.read_text())
    probe.unlink()
    return timings


def measure(
    suite: Suite, rounds: int, modes: list[str], extra: list[str]
) -> dict[str, list[dict[str, float]]]:
    """Paired alternating runs: each round runs every mode once, the order rotating."""
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    caches = Path(tempfile.mkdtemp(prefix="carbon-bench-cache-"))
    for mode in modes:  # warm-up: bytecode, disk cache, and pytest's cache of each mode
        run_once(suite, mode, extra, caches / mode)
    for round_ in range(rounds):
        order = modes[round_ % len(modes) :] + modes[: round_ % len(modes)]
        for mode in order:
            runs[mode].append(run_once(suite, mode, extra, caches / mode))
        print(f"  round {round_ + 1}/{rounds} done", file=sys.stderr)
    shutil.rmtree(caches, ignore_errors=True)
    return runs


def paired(runs: dict[str, list[dict[str, float]]], mode: str, key: str) -> float:
    """Median over rounds of (mode − plain) for one timing."""
    return statistics.median(
        run[key] - base[key] for run, base in zip(runs[mode], runs["plain"], strict=True)
    )


def ratio(runs: dict[str, list[dict[str, float]]], mode: str) -> float:
    """Median over rounds of total wall time, mode ÷ plain."""
    return statistics.median(
        run["total"] / base["total"] for run, base in zip(runs[mode], runs["plain"], strict=True)
    )


def summarise(name: str, runs: dict[str, list[dict[str, float]]]) -> list[str]:
    """Markdown rows for one suite."""
    tests = int(runs["plain"][0]["tests"])
    plain_total = statistics.median(r["total"] for r in runs["plain"])
    rows = []
    for mode in runs:
        if mode == "plain":
            rows.append(f"| {name} | {tests:,} | plain | {plain_total:.2f} s | 1.000 | — | — | — |")
            continue
        per_test = paired(runs, mode, "loop") / tests * 1e6
        per_test_cpu = paired(runs, mode, "loop_cpu") / tests * 1e6
        startup = paired(runs, mode, "launch_to_loop")
        shutdown = paired(runs, mode, "loop_to_exit")
        total = statistics.median(r["total"] for r in runs[mode])
        rows.append(
            f"| {name} | {tests:,} | {mode} | {total:.2f} s | {ratio(runs, mode):.3f} | "
            f"{per_test:+.1f} µs | {per_test_cpu:+.1f} µs | {startup:+.3f} s | {shutdown:+.3f} s |"
        )
    return rows


HEADER = [
    "| suite | tests | mode | median wall | wall ratio | per test (wall) | per test (CPU) "
    "| start-up | shutdown |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=5000, help="size of the generated suite")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--suite",
        action="append",
        choices=["generated", "generated-xdist", *PYPI_SUITES],
        help="suites to run (default: all)",
    )
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes")
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    args = parser.parse_args()
    suites = args.suite or ["generated", "generated-xdist", *PYPI_SUITES]
    # As `pip install` does: byte-compile the package, so that no run compiles it from source
    # (an editable install has no bytecode, and PYTHONDONTWRITEBYTECODE keeps it from being kept).
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(REPO / "src" / "pytest_carbon")], check=True
    )
    modes = ["plain", *[m for m in args.modes.split(",") if m != "plain"]]
    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in suites:
            extra: list[str] = []
            if name.startswith("generated"):
                suite = generate_suite(Path(tmp) / name, args.tests)
                if name.endswith("xdist"):
                    extra = ["-n", "2"]
                    suite.name += ", -n 2"
            else:
                suite = fetch_pypi_suite(name)
            print(f"{suite.name}:", file=sys.stderr)
            rows += summarise(suite.name, measure(suite, args.rounds, modes, extra))
            print("\n".join([*HEADER, *rows]))
    if args.write:
        command = " ".join(["python benchmarks/bench_overhead.py", *sys.argv[1:]])
        write_section("overhead", "Plugin overhead", overhead_section(rows, command, args.rounds))
    return 0


def overhead_section(rows: list[str], command: str, rounds: int) -> str:
    """The markdown of the overhead section: provenance, then the table."""
    return "\n".join(
        [
            f"Measured {time.strftime('%Y-%m-%d')} with `{command}` ({rounds} paired rounds, "
            f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs).",
            "",
            *HEADER,
            *rows,
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
