"""The shared CI history of the matrix benchmarks: where it is, and loading it split for replay."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pytest_carbon.matrix.history import Run, group_runs, load_history

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "travis-python-dev.csv.gz"


def history_parser(doc: str | None) -> argparse.ArgumentParser:
    """A parser taking the history file (default: the shared one) and ``--write``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("history", nargs="?", default=str(DATA))
    parser.add_argument("--write", action="store_true", help="update docs/performance.md")
    return parser


def load_runs(history: str) -> list[Run] | None:
    """The runs of a history file; None, after saying so, when the file is missing."""
    path = Path(history)
    if not path.is_file():
        print(f"history file {path.name} not found; pass its path", file=sys.stderr)
        return None
    return group_runs(load_history([path], with_tests=False))
