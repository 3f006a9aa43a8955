from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_carbon.meter.hardware import (
    CACHE_KEY,
    CachedHardware,
    _metadata_version,
    codecarbon_version,
    fingerprint,
    load,
    metadata_version,
    store,
)

HARDWARE = {"cpu_model": "X", "cpu_tdp_w": 95.0, "ram_watts": 10.5, "codecarbon_version": "3.3.2"}


class DictCache:
    """pytest's cache, as a dict."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str, default: Any) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: object) -> None:
        self.data[key] = value


def test_fingerprint_names_this_machine() -> None:
    current = fingerprint(gpu_count=2)
    assert current["cpu_count"]
    assert current["cpu_count"] >= 1
    assert current["ram_bytes"] > 0
    assert current["gpu_count"] == 2
    assert current["codecarbon"]
    assert current["codecarbon"].startswith("3.")
    assert fingerprint(gpu_count=2) == current  # stable between calls


def test_stored_detection_is_reused_on_the_same_machine() -> None:
    cache = DictCache()
    current = fingerprint()
    assert load(cache, current) is None
    store(cache, current, HARDWARE)
    found = load(cache, current)
    assert found is not None
    assert found[0] == HARDWARE
    assert len(found[1]) == 10  # ISO date


@pytest.mark.parametrize("changed", ["cpu_model", "cpu_count", "ram_bytes", "codecarbon"])
def test_a_changed_machine_is_detected_again(changed: str) -> None:
    cache = DictCache()
    current = fingerprint()
    store(cache, current, HARDWARE)
    assert load(cache, {**current, changed: "something else"}) is None


@pytest.mark.parametrize(
    "entry",
    [
        None,
        "garbage",
        {"version": 99},
        {"version": 1, "fingerprint": {}, "hardware": HARDWARE},
        {"version": 1, "hardware": [1, 2]},
        {"version": 1, "hardware": {"cpu_model": "X"}},  # no RAM figure: not a detection
    ],
)
def test_a_damaged_entry_is_ignored(entry: Any) -> None:
    cache = DictCache()
    current = fingerprint()
    cache.data[CACHE_KEY] = (
        {**entry, "fingerprint": current}
        if isinstance(entry, dict) and "fingerprint" not in entry
        else entry
    )
    assert load(cache, current) is None


def test_no_cache_means_no_reuse_and_no_error() -> None:
    assert load(None, fingerprint()) is None
    store(None, fingerprint(), HARDWARE)


def test_an_unwritable_cache_is_not_an_error() -> None:
    class Broken(DictCache):
        def set(self, key: str, value: object) -> None:
            raise OSError("read-only file system")

    store(Broken(), fingerprint(), HARDWARE)


def test_cached_hardware_stands_in_for_the_sidecar() -> None:
    source = CachedHardware(dict(HARDWARE), "2026-01-02")
    source.start()
    source.request_stop()
    assert source.detected() == HARDWARE
    result = source.finish()
    assert result.hardware == HARDWARE
    assert result.estimate is None
    assert result.errors == []
    assert result.cpu_s == 0.0
    assert source.note
    assert "2026-01-02" in source.note
    assert "--carbon-detect" in source.note
    source.abandon()


def test_codecarbon_version_is_read_as_importlib_metadata_reads_it() -> None:
    from importlib.metadata import version

    assert codecarbon_version() == version("codecarbon")


def test_the_version_header_is_read_up_to_the_end_of_the_headers(tmp_path: Path) -> None:
    metadata = tmp_path / "METADATA"
    metadata.write_text("Metadata-Version: 2.1\nName: codecarbon\nVersion: 9.8.7\n\nVersion: 0\n")
    assert metadata_version(metadata) == "9.8.7"
    metadata.write_text("Metadata-Version: 2.1\nName: codecarbon\n\nVersion: 0\n")
    assert metadata_version(metadata) is None
    assert metadata_version(tmp_path / "missing") is None


def test_codecarbon_version_falls_back_to_importlib_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    from pytest_carbon.meter import hardware

    monkeypatch.setattr(hardware, "metadata_version", lambda path: None)
    assert codecarbon_version() == _metadata_version()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert codecarbon_version() is None
