"""`--gpus` indices are torch's, which count only the visible devices: each child sees the device meant."""

from __future__ import annotations

import pytest

from worker.supervisor import ProcessSpec, plan, visible_device


def test_without_cuda_visible_devices_an_index_is_the_device():
    assert [visible_device(i, {}) for i in (0, 3)] == ["0", "3"]


def test_an_index_names_the_entry_of_the_parents_cuda_visible_devices():
    assert [visible_device(i, {"CUDA_VISIBLE_DEVICES": "2,3"}) for i in (0, 1)] == ["2", "3"]
    uuids = {"CUDA_VISIBLE_DEVICES": " GPU-aaaa , MIG-bbbb "}
    assert [visible_device(i, uuids) for i in (0, 1)] == ["GPU-aaaa", "MIG-bbbb"]


def test_an_index_beyond_the_visible_devices_is_refused():
    with pytest.raises(ValueError, match="GPU 2 is not visible"):
        visible_device(2, {"CUDA_VISIBLE_DEVICES": "4,5"})
    with pytest.raises(ValueError, match="GPU 0 is not visible"):
        visible_device(0, {"CUDA_VISIBLE_DEVICES": ""})


def test_the_plan_gives_each_gpu_process_the_parents_device(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "6,7")
    assert plan([1, 0], cpu=True, concurrency=1) == [
        ProcessSpec("gpu1", "gpu", "7"), ProcessSpec("gpu0", "gpu", "6"), ProcessSpec("cpu0", "cpu", ""),
    ]
