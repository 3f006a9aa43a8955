"""Learn which CI matrix jobs fail together and plan which ones to run."""

from __future__ import annotations

from pytest_carbon.matrix.baseline import MozillaBaseline
from pytest_carbon.matrix.history import JobResult, LoadNotes, Run, group_runs, load_history
from pytest_carbon.matrix.replay import ReplayConfig, ReplayResult, replay, split_history
from pytest_carbon.matrix.selector import MatrixSelector, Observation, Plan, RunContext, Skip
from pytest_carbon.matrix.store import HistoryStore, ingest_sources

__all__ = [
    "HistoryStore",
    "JobResult",
    "LoadNotes",
    "MatrixSelector",
    "MozillaBaseline",
    "Observation",
    "Plan",
    "ReplayConfig",
    "ReplayResult",
    "Run",
    "RunContext",
    "Skip",
    "group_runs",
    "ingest_sources",
    "load_history",
    "replay",
    "split_history",
]
