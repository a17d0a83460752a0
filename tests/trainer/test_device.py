"""Device choice: ``auto`` falls back to the CPU, and a CUDA device that is not there is refused by name."""

from __future__ import annotations

import pytest
import torch

from trainer.device import DeviceError, resolve_device


def test_auto_and_cpu_run_on_the_cpu_of_a_machine_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="'cuda' was requested but this machine has no CUDA device; use 'cpu' or 'auto'"):
        resolve_device("cuda")


def test_auto_picks_cuda_when_present_and_an_index_past_the_last_device_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match=r"'cuda:2' does not exist: this machine has 2 CUDA device\(s\), cuda:0 to cuda:1"):
        resolve_device("cuda:2")
