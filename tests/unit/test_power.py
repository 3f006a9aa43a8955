from __future__ import annotations

from pathlib import Path

import pytest

from pytest_carbon.meter.power import (
    DEFAULT_WATTS_PER_VCPU,
    Overrides,
    Sidecar,
    SidecarResult,
    build_power_model,
    cpuinfo_value,
    parse_sidecar_line,
    runs_in_vm,
)

HARDWARE = {
    "cpu_model": "Xeon Platinum 8370C",
    "cpu_tdp_w": 270.0,
    "ram_watts": 10.0,
    "gpu_count": 0,
}


def test_vm_does_not_charge_the_whole_socket() -> None:
    model = build_power_model(
        HARDWARE,
        vcpus=4,
        vcpus_source="CPU affinity",
        overrides=Overrides(),
        visible_cpus=4,
        in_vm=True,
    )
    assert model.cpu_watts_per_vcpu == DEFAULT_WATTS_PER_VCPU
    assert model.cpu_watts == 4 * DEFAULT_WATTS_PER_VCPU
    assert any("whole CPU socket" in note for note in model.notes)


def test_bare_metal_divides_tdp_by_visible_cpus() -> None:
    model = build_power_model(
        {**HARDWARE, "cpu_tdp_w": 65.0},
        vcpus=4,
        vcpus_source="cgroup CPU quota",
        overrides=Overrides(),
        visible_cpus=16,
        in_vm=False,
    )
    assert model.cpu_watts_per_vcpu == pytest.approx(65 / 16)
    assert model.cpu_watts == pytest.approx(4 * 65 / 16)
    assert any("4 vCPUs this run may use" in note for note in model.notes)


def test_overrides_win_and_are_labelled() -> None:
    model = build_power_model(
        HARDWARE,
        vcpus=2,
        vcpus_source="x",
        overrides=Overrides(cpu_watts=30, ram_watts=5, pue=1.4),
        visible_cpus=2,
    )
    assert model.cpu_watts == 30
    assert model.cpu_watts_per_vcpu == 15
    assert model.ram_watts == 5
    assert model.pue == 1.4
    assert model.sources["cpu_watts"] == "user override"
    assert model.sources["ram_watts"] == "user override"


def test_without_codecarbon_falls_back_to_labelled_defaults() -> None:
    model = build_power_model(
        None, vcpus=2, vcpus_source="x", overrides=Overrides(), visible_cpus=2
    )
    assert model.cpu_watts_per_vcpu == DEFAULT_WATTS_PER_VCPU
    assert model.ram_watts > 0
    assert "codecarbon unavailable" in model.sources["ram_watts"]
    assert model.cpu_model == "unknown CPU"


def test_method_reflects_hardware_counters() -> None:
    model = build_power_model(
        {**HARDWARE, "gpu_count": 1},
        vcpus=2,
        vcpus_source="x",
        overrides=Overrides(),
        energy_methods=("rapl",),
        visible_cpus=2,
    )
    assert model.method == "rapl"
    assert any("GPU energy not counted" in note for note in model.notes)
    with_gpu = build_power_model(
        HARDWARE,
        vcpus=2,
        vcpus_source="x",
        overrides=Overrides(),
        energy_methods=("nvml",),
        visible_cpus=2,
    )
    assert with_gpu.method == "cpu-time-model+nvml"


def parse_sidecar_output(text: str, result: SidecarResult) -> None:
    for line in text.splitlines():
        parse_sidecar_line(line, result)


def test_parse_sidecar_output_reads_events_and_ignores_noise() -> None:
    result = SidecarResult()
    parse_sidecar_output(
        'noise\n{"event": "ready", "cpu_model": "X", "cpu_tdp_w": 8}\n[1]\n'
        '{"event": "stopped", "energy_kwh": 1e-6, "cpu_s": 1.5}\n',
        result,
    )
    assert result.hardware == {"cpu_model": "X", "cpu_tdp_w": 8}
    assert result.estimate == {"energy_kwh": 1e-6}
    assert result.cpu_s == 1.5
    assert result.errors == []


def test_parse_sidecar_errors_name_the_stage() -> None:
    result = SidecarResult()
    parse_sidecar_output(
        '{"event": "error", "stage": "stop", "message": "boom", "cpu_s": 0.2}', result
    )
    assert result.errors == ["codecarbon failed at stop: boom"]
    assert result.cpu_s == 0.2


def test_real_codecarbon_sidecar_detects_hardware() -> None:
    """Runs the real codecarbon offline tracker in its sidecar process."""
    sidecar = Sidecar("FRA")
    sidecar.start()
    try:
        assert sidecar.detected() is not None
        result = sidecar.finish()
    finally:
        sidecar.abandon()
    assert result.errors == []
    assert result.hardware is not None
    assert result.hardware["codecarbon_version"].startswith("3.")
    assert result.hardware["ram_watts"] > 0
    assert result.hardware["cpu_tdp_w"] > 0
    assert result.estimate is not None
    assert result.estimate["energy_kwh"] > 0
    assert result.cpu_s > 0


def test_cpuinfo_fields_and_the_hypervisor_flag(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\nflags\t\t: fpu vme hypervisor lm\n"
        "processor\t: 1\nmodel name\t: Some CPU @ 2.0GHz\n"
    )
    assert cpuinfo_value("model name", cpuinfo) == "Some CPU @ 2.0GHz"
    assert cpuinfo_value("bogomips", cpuinfo) is None
    assert runs_in_vm(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu vme lm hypervisorish\n")
    assert not runs_in_vm(cpuinfo)
    assert not runs_in_vm(tmp_path / "missing")
