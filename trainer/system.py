"""System metrics of a training process, and the facts of the machine it runs on.

`SystemProbe.sample()` reads, for the process it runs in, its CPU use and resident
memory (psutil) and, when it trains on an NVIDIA GPU, that GPU's utilization, memory
used, temperature and power draw through NVML (nvidia-ml-py: the driver's own library,
never by parsing ``nvidia-smi``). Each reading is a key of the ``sys/`` family:

=========================  ==========================================================
``sys/cpu_percent``        CPU time of the process over the last interval, percent of
                           one core (a process busy on 4 cores reads 400)
``sys/memory_mib``         resident memory of the process, MiB
``sys/gpu_util_percent``   percent of the interval in which the GPU ran a kernel
``sys/gpu_memory_mib``     GPU memory in use on the device (every process), MiB
``sys/gpu_temperature_c``  GPU core temperature, degrees Celsius
``sys/gpu_power_w``        GPU power draw, watts
``sys/samples_per_s``      training samples per second over the last interval
=========================  ==========================================================

A reading the device cannot give (a MIG slice has no utilization of its own, some
boards report no power) is left out rather than reported as zero. Stored as metrics,
a ``sys/`` key's step is the whole number of seconds since the run started (see
`seconds_since`), so its series lie on a time axis while every other key's step is
the epoch.

This module imports neither torch nor the server: the notebook client uses it too.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

log = logging.getLogger("miles.system")

PREFIX = "sys/"
CPU, MEMORY, THROUGHPUT = "sys/cpu_percent", "sys/memory_mib", "sys/samples_per_s"
GPU_UTIL, GPU_MEMORY, GPU_TEMPERATURE, GPU_POWER = (
    "sys/gpu_util_percent", "sys/gpu_memory_mib", "sys/gpu_temperature_c", "sys/gpu_power_w",
)
MIB = 1024 * 1024


def is_system(key: str) -> bool:
    """Whether a metric key is a system metric (its step is seconds since the run started, not an epoch)."""
    return key.startswith(PREFIX)


def seconds_since(started: datetime, now: datetime) -> int:
    """The step of a system sample taken at ``now``: whole seconds since the run ``started`` (rounded)."""
    return max(0, round((now - started).total_seconds()))


# -- the GPU, through NVML ---------------------------------------------------------------------------


class Gpu:
    """One NVIDIA device, read through NVML; `open` returns None where there is no NVML or no such device."""

    def __init__(self, nvml: Any, handle: Any) -> None:
        self.nvml = nvml
        self.handle = handle
        self._unsupported: set[str] = set()

    @classmethod
    def open(cls, *, uuid: str | None = None, visible: str | None = None) -> Gpu | None:
        """The device with this NVML ``uuid`` (``GPU-...`` or ``MIG-...``), else the first entry of ``visible``
        (a ``CUDA_VISIBLE_DEVICES`` value: an index, or a uuid), else device 0. None without a usable NVML."""
        try:
            import pynvml
        except ImportError:
            return None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as error:  # no driver library on this machine, or no GPU
            log.debug("NVML is not available (%s): no GPU metrics", error)
            return None
        first = (visible or "").split(",")[0].strip() if visible is not None else "0"
        if not (uuid or first.startswith(("GPU-", "MIG-")) or first.isdigit()):
            return None  # CUDA_VISIBLE_DEVICES="" (or -1): this process sees no GPU
        problems = []
        for name in (uuid, first):  # torch's uuid when it gave one; else (or if NVML does not know it) the first visible
            if not name:
                continue
            try:
                if name.startswith(("GPU-", "MIG-")):
                    return cls(pynvml, pynvml.nvmlDeviceGetHandleByUUID(name))
                if name.isdigit():
                    return cls(pynvml, pynvml.nvmlDeviceGetHandleByIndex(int(name)))
            except pynvml.NVMLError as error:
                problems.append(f"{name}: {error}")
        log.warning("NVML cannot find this process's GPU (%s): no GPU metrics", "; ".join(problems) or first)
        return None

    def _read(self, what: str, read: Callable[[], float]) -> float | None:
        if what in self._unsupported:
            return None
        try:
            return float(read())
        except self.nvml.NVMLError as error:
            # Not supported stays so: ask once. Anything else (the GPU fell off the bus) is worth a line.
            if isinstance(error, self.nvml.NVMLError_NotSupported):
                self._unsupported.add(what)
            else:
                log.warning("NVML: cannot read %s (%s)", what, error)
            return None

    def name(self) -> str:
        name = self.nvml.nvmlDeviceGetName(self.handle)
        return name.decode() if isinstance(name, bytes) else str(name)

    def memory_total_mib(self) -> int:
        return int(self.nvml.nvmlDeviceGetMemoryInfo(self.handle).total // MIB)

    def sample(self) -> dict[str, float]:
        nvml, handle = self.nvml, self.handle
        readings = {
            GPU_UTIL: self._read("utilization", lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
            GPU_MEMORY: self._read("memory", lambda: nvml.nvmlDeviceGetMemoryInfo(handle).used / MIB),
            GPU_TEMPERATURE: self._read(
                "temperature", lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)
            ),
            GPU_POWER: self._read("power", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000),  # milliwatts
        }
        return {key: value for key, value in readings.items() if value is not None}


# -- the process -------------------------------------------------------------------------------------


class Throughput:
    """Samples per second between two readings of a counter of training samples (the trainer's hook)."""

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count
        self._last = (time.monotonic(), count())

    def rate(self) -> float:
        now, seen = time.monotonic(), self.count()
        then, before = self._last
        self._last = (now, seen)
        return (seen - before) / (now - then) if now > then else 0.0


class SystemProbe:
    """The ``sys/`` readings of this process (and of its GPU, if any); each `sample` covers the time since the last."""

    def __init__(self, gpu: Gpu | None = None) -> None:
        import psutil

        self.process = psutil.Process(os.getpid())
        self.process.cpu_percent(None)  # the first call only starts the count
        self.gpu = gpu
        self.throughput: Throughput | None = None

    def count_samples(self, count: Callable[[], int] | None) -> None:
        """Report ``sys/samples_per_s`` from this counter of training samples (None: stop reporting it)."""
        self.throughput = Throughput(count) if count is not None else None

    def sample(self) -> dict[str, float]:
        values = {CPU: self.process.cpu_percent(None), MEMORY: self.process.memory_info().rss / MIB}
        if self.gpu is not None:
            values |= self.gpu.sample()
        if self.throughput is not None:
            values[THROUGHPUT] = self.throughput.rate()
        return values


# -- the machine -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MachineFacts:
    """Where a run trains: recorded with the run, and with the worker that trains it."""

    host: str
    device: str  # "cuda" or "cpu"
    device_name: str  # "NVIDIA H200", or the CPU's model
    gpu_memory_mib: int | None
    cuda: str | None  # the CUDA version torch was built with
    torch: str | None
    version: str  # of miles-dashboard

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_name() -> str:
    """The CPU's model, e.g. "AMD EPYC 9554 64-Core Processor" (Linux reads it from /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def _installed(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def machine_facts(
    device: str, gpu: Gpu | None = None, *, cuda: str | None = None, cuda_name: str | None = None,
) -> MachineFacts:
    """The facts of this machine for a process training on ``device`` ("cuda" or "cpu") with ``gpu``.

    ``cuda``: torch's CUDA version (``torch.version.cuda``), and ``cuda_name`` the device's name as torch
    tells it (for a GPU that NVML cannot see), which the caller that imported torch knows."""
    if gpu is not None:
        name = gpu.name()
    else:
        name = (cuda_name or "CUDA device") if device == "cuda" else cpu_name()
    return MachineFacts(
        host=socket.gethostname(), device=device, device_name=name,
        gpu_memory_mib=gpu.memory_total_mib() if gpu is not None else None,
        cuda=cuda, torch=_installed("torch"), version=_installed("miles-dashboard") or "unknown",
    )
