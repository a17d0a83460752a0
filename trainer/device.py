"""Choosing the torch device of a run."""

from __future__ import annotations

import torch


class DeviceError(RuntimeError):
    """The requested device does not exist on this machine."""


def resolve_device(spec: str) -> torch.device:
    """``auto`` is the first CUDA device when one is present, else the CPU; ``cuda[:N]`` must exist."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r} was requested but this machine has no CUDA device; use 'cpu' or 'auto'")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {spec!r} does not exist: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return device


def cuda_uuid(index: int = 0) -> str | None:
    """The NVML name of CUDA device ``index`` (``GPU-<uuid>``), to find it in NVML whatever the device order;
    None without CUDA or where torch does not report it."""
    if not torch.cuda.is_available():
        return None
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is None:
        return None
    text = str(uuid)
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"
