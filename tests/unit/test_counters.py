from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pytest_carbon.errors import CarbonWarning
from pytest_carbon.meter import counters
from pytest_carbon.meter.counters import (
    Counters,
    NvmlReader,
    RaplReader,
    cgroup_cpu_quota,
    cpu_time_ns,
    delta,
    find_rapl_domains,
    open_nvml,
    open_rapl,
    unwrap_delta,
)


def make_rapl(root: Path, sockets: dict[int, int], max_range: int = 1000) -> None:
    for socket, value in sockets.items():
        zone = root / f"intel-rapl:{socket}"
        zone.mkdir(parents=True)
        (zone / "name").write_text(f"package-{socket}\n")
        (zone / "energy_uj").write_text(f"{value}\n")
        (zone / "max_energy_range_uj").write_text(f"{max_range}\n")
        core = root / f"intel-rapl:{socket}:0"
        core.mkdir()
        (core / "name").write_text("core\n")
        (core / "energy_uj").write_text("5\n")


def set_energy(root: Path, socket: int, value: int) -> None:
    (root / f"intel-rapl:{socket}" / "energy_uj").write_text(f"{value}\n")


def test_unwrap_delta_handles_wrap_around() -> None:
    assert unwrap_delta(100, 250, 1000) == 150
    assert unwrap_delta(900, 50, 1000) == 150


def test_rapl_reader_sums_packages_and_unwraps(tmp_path: Path) -> None:
    make_rapl(tmp_path, {0: 900, 1: 10})
    domains = find_rapl_domains(tmp_path)
    assert [path.parent.name for path, _ in domains] == ["intel-rapl:0", "intel-rapl:1"]
    reader = RaplReader(domains)
    set_energy(tmp_path, 0, 100)  # wrapped: +200
    set_energy(tmp_path, 1, 60)  # +50
    assert reader.read_uj() == 250
    set_energy(tmp_path, 0, 150)
    assert reader.read_uj() == 300


def test_rapl_absent_is_not_a_failure(tmp_path: Path) -> None:
    assert open_rapl(tmp_path / "nothing") == (None, None)


def test_rapl_permission_denied_falls_back_with_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_rapl(tmp_path, {0: 1})
    original = Path.read_text

    def deny(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", deny)
    reader, reason = open_rapl(tmp_path)
    assert reader is None
    assert reason is not None
    assert "permission denied" in reason


class FakeNvml:
    """A stand-in for pynvml with two GPUs whose energy counters advance by 1000 mJ a read."""

    def __init__(self, fail_after: int | None = None, gpus: int = 2) -> None:
        self.reads = 0
        self.fail_after = fail_after
        self.gpus = gpus

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's name
        pass

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:  # noqa: N802
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:  # noqa: N802
        return b"Fake GPU"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:  # noqa: N802
        self.reads += 1
        if self.fail_after is not None and self.reads > self.fail_after:
            raise RuntimeError("GPU is lost")
        return 1000 * self.reads


def test_nvml_reader_sums_gpus() -> None:
    reader = NvmlReader(FakeNvml())
    assert reader.count == 2
    assert reader.names == ["Fake GPU", "Fake GPU"]
    first = reader.read_mj()
    assert reader.read_mj() > first


def test_nvml_missing_module_is_not_a_failure() -> None:
    def missing() -> Any:
        raise ImportError("No module named 'pynvml'")

    assert open_nvml(missing) == (None, None)


def test_nvml_without_gpus_is_not_a_failure() -> None:
    assert open_nvml(lambda: FakeNvml(gpus=0)) == (None, None)


def test_nvml_error_at_start_gives_reason() -> None:
    reader, reason = open_nvml(lambda: FakeNvml(fail_after=0))
    assert reader is None
    assert reason is not None
    assert "NVML" in reason


def test_counter_failing_mid_session_warns_once_and_falls_back(tmp_path: Path) -> None:
    make_rapl(tmp_path, {0: 1})
    nvml = NvmlReader(FakeNvml(fail_after=4))
    meter = Counters(RaplReader(find_rapl_domains(tmp_path)), nvml)
    assert meter.methods == ("rapl", "nvml")
    first = meter.read()
    assert first[2] is not None
    assert first[3] is not None
    (tmp_path / "intel-rapl:0" / "energy_uj").unlink()
    with pytest.warns(CarbonWarning) as record:
        second = meter.read()
    assert (second[2], second[3]) == (None, None)
    assert meter.methods == ()
    assert len(record) == 2  # one for RAPL, one for NVML
    third = meter.read()  # no further warning: filterwarnings=error would raise here
    assert (third[2], third[3]) == (None, None)
    assert len(meter.warnings) == 2


def test_degrade_never_raises_under_warnings_as_errors() -> None:
    meter = Counters()
    with pytest.warns(CarbonWarning):
        meter.degrade("first")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        meter.degrade("second")  # must not raise
    assert meter.warnings == ["first", "second"]


def test_delta_converts_units() -> None:
    start = (1_000_000_000, 500_000_000, 1_000_000, 2_000)
    end = (3_000_000_000, 1_500_000_000, 4_000_000, 5_000)
    assert delta(start, end) == [2.0, 1.0, 3.0, 3.0]
    assert delta((0, 0, None, None), (1, 1, None, None))[2:] == [None, None]


def test_cpu_time_counts_ended_children() -> None:
    import subprocess
    import sys

    before = cpu_time_ns()
    subprocess.run([sys.executable, "-c", "sum(i for i in range(3_000_000))"], check=True)
    assert cpu_time_ns() - before > 50_000_000  # the child burned well over 50 ms


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu.max": "garbage\n"}, None),
        ({}, None),
    ],
)
def test_cgroup_quota(tmp_path: Path, files: dict[str, str], expected: float | None) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_quota(tmp_path) == expected


def test_usable_vcpus_prefers_a_smaller_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counters, "cgroup_cpu_quota", lambda: 0.5)
    assert counters.usable_vcpus() == (0.5, "cgroup CPU quota")
