"""System metrics of a training process: the GPU sampler with NVML faked, the process readings, the step axis."""

from __future__ import annotations

import sys
import types
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from trainer import system
from trainer.system import Gpu, SystemProbe, Throughput, machine_facts, seconds_since

GIB = 1024**3


class NVMLError(Exception):
    pass


class NVMLError_NotSupported(NVMLError):  # noqa: N801 (pynvml's name)
    pass


def fake_nvml(*, utilization: int = 87, used: int = 3 * GIB, total: int = 80 * GIB, temperature: int = 61,
              milliwatts: int = 312_500, power_supported: bool = True) -> types.ModuleType:
    """A stand-in for ``pynvml`` with one H100-like device, recording the handles asked for."""
    nvml = types.ModuleType("pynvml")
    nvml.NVMLError, nvml.NVMLError_NotSupported = NVMLError, NVMLError_NotSupported
    nvml.NVML_TEMPERATURE_GPU = 0
    nvml.asked = []
    nvml.nvmlInit = lambda: None
    nvml.nvmlDeviceGetHandleByUUID = lambda uuid: nvml.asked.append(("uuid", uuid)) or "handle"
    nvml.nvmlDeviceGetHandleByIndex = lambda index: nvml.asked.append(("index", index)) or "handle"
    nvml.nvmlDeviceGetName = lambda handle: b"NVIDIA H100 80GB HBM3"
    nvml.nvmlDeviceGetUtilizationRates = lambda handle: SimpleNamespace(gpu=utilization, memory=40)
    nvml.nvmlDeviceGetMemoryInfo = lambda handle: SimpleNamespace(used=used, total=total, free=total - used)
    nvml.nvmlDeviceGetTemperature = lambda handle, sensor: temperature

    def power(handle: object) -> int:
        if not power_supported:
            nvml.power_asked = getattr(nvml, "power_asked", 0) + 1
            raise NVMLError_NotSupported("Not Supported")
        return milliwatts

    nvml.nvmlDeviceGetPowerUsage = power
    return nvml


@pytest.fixture
def nvml(monkeypatch: pytest.MonkeyPatch):
    def install(**readings: object) -> types.ModuleType:
        module = fake_nvml(**readings)
        monkeypatch.setitem(sys.modules, "pynvml", module)
        return module

    return install


def test_the_gpu_sampler_reports_utilization_memory_temperature_and_power_in_their_units(nvml):
    nvml(utilization=87, used=3 * GIB, temperature=61, milliwatts=312_500)

    gpu = Gpu.open(uuid="GPU-1234")

    assert gpu is not None and gpu.sample() == {
        "sys/gpu_util_percent": 87.0, "sys/gpu_memory_mib": 3072.0, "sys/gpu_temperature_c": 61.0, "sys/gpu_power_w": 312.5,
    }
    assert gpu.name() == "NVIDIA H100 80GB HBM3" and gpu.memory_total_mib() == 80 * 1024


def test_a_reading_the_device_does_not_support_is_left_out_and_not_asked_again(nvml):
    module = nvml(power_supported=False)
    gpu = Gpu.open(uuid="MIG-abc")
    assert gpu is not None

    first, second = gpu.sample(), gpu.sample()

    assert "sys/gpu_power_w" not in first and first == second and module.power_asked == 1


@pytest.mark.parametrize(("uuid", "visible", "asked"), [
    ("GPU-aaaa", "3", ("uuid", "GPU-aaaa")),  # torch's uuid wins over the device order
    (None, "GPU-bbbb,GPU-cccc", ("uuid", "GPU-bbbb")),
    (None, "2,3", ("index", 2)),
    (None, None, ("index", 0)),
])
def test_the_gpu_is_found_by_uuid_else_by_the_first_visible_device(nvml, uuid, visible, asked):
    module = nvml()
    assert Gpu.open(uuid=uuid, visible=visible) is not None
    assert module.asked == [asked]


def test_a_uuid_nvml_does_not_know_falls_back_to_the_first_visible_device(nvml):
    module = nvml()

    def unknown(uuid: str) -> object:
        module.asked.append(("uuid", uuid))
        raise NVMLError("Not Found")

    module.nvmlDeviceGetHandleByUUID = unknown
    assert Gpu.open(uuid="GPU-from-torch", visible="1") is not None
    assert module.asked == [("uuid", "GPU-from-torch"), ("index", 1)]


def test_a_process_that_sees_no_gpu_has_no_gpu_sampler(nvml):
    nvml()
    assert Gpu.open(visible="") is None


def test_without_the_nvml_library_there_is_no_gpu_sampler(monkeypatch):
    module = fake_nvml()

    def missing() -> None:
        raise NVMLError("NVML Shared Library Not Found")

    module.nvmlInit = missing
    monkeypatch.setitem(sys.modules, "pynvml", module)
    assert Gpu.open(uuid="GPU-1") is None


def test_the_process_probe_reads_cpu_and_resident_memory_of_this_process():
    probe = SystemProbe()
    sum(i * i for i in range(200_000))  # some CPU time to measure

    values = probe.sample()

    assert set(values) == {"sys/cpu_percent", "sys/memory_mib"}
    assert values["sys/cpu_percent"] >= 0 and 10 < values["sys/memory_mib"] < 100_000


def test_with_a_gpu_and_a_sample_counter_the_probe_reports_every_key(nvml):
    nvml()
    seen = [0]
    probe = SystemProbe(Gpu.open(uuid="GPU-1"))
    probe.count_samples(lambda: seen[0])
    seen[0] = 640

    assert set(probe.sample()) == {
        "sys/cpu_percent", "sys/memory_mib", "sys/gpu_util_percent", "sys/gpu_memory_mib", "sys/gpu_temperature_c",
        "sys/gpu_power_w", "sys/samples_per_s",
    }


def test_throughput_is_samples_between_two_readings_over_the_seconds_between_them(monkeypatch):
    clock = iter([100.0, 102.0, 106.0])
    monkeypatch.setattr(system.time, "monotonic", lambda: next(clock))
    counts = iter([0, 1000, 1400])
    throughput = Throughput(lambda: next(counts))

    assert throughput.rate() == 500.0  # 1000 samples in 2 s
    assert throughput.rate() == 100.0  # 400 in 4 s


def test_a_system_step_is_the_whole_second_since_the_run_started():
    started = datetime(2026, 1, 1, tzinfo=UTC)
    assert [seconds_since(started, started + timedelta(seconds=s)) for s in (0, 0.4, 9.6, 3600.2)] == [0, 0, 10, 3600]


def test_machine_facts_name_the_gpu_and_its_memory_or_the_cpu(nvml):
    nvml(total=80 * GIB)
    gpu = machine_facts("cuda", Gpu.open(uuid="GPU-1"), cuda="12.8")
    cpu = machine_facts("cpu")

    assert (gpu.device, gpu.device_name, gpu.gpu_memory_mib, gpu.cuda) == ("cuda", "NVIDIA H100 80GB HBM3", 81920, "12.8")
    assert cpu.device == "cpu" and cpu.device_name and cpu.gpu_memory_mib is None
    assert cpu.torch and cpu.version and cpu.host
