"""Streaming a prepared folder through a DataLoader: the same batches as in memory, and when it applies."""

from __future__ import annotations

import pytest
import torch

from tests.trainer.datasets.releases import write_luma
from trainer import loop
from trainer.acceleration import Acceleration
from trainer.config import TrainConfig
from trainer.datasets import load_dataset, luma
from trainer.datasets.preparation import prepare
from trainer.loop import Batches, Training
from trainer.reporting import MemoryReporter
from trainer.streaming import StreamingBatches


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("luma")
    settings = luma.PrepareSettings(samples_per_class=8, val_size=6, test_size=6, size=24)
    prepare(luma.preparation(write_luma(root / "source"), settings), root / "prepared")
    return root / "prepared"


def config(folder, **changes) -> TrainConfig:
    spec = {"preset": "luma", "data_path": str(folder), "epochs": 2, "batch_size": 8, "device": "cpu",
            "model": {"embed_dim": 16, "encoders": {"audio": "cnn", "image": "cnn"}, "cnn_width": 4}} | changes
    return TrainConfig.model_validate(spec)


def test_streamed_batches_are_the_in_memory_batches_in_the_same_order(folder):
    split = load_dataset(config(folder)).train
    streamed = StreamingBatches(split, torch.device("cpu"), workers=2)
    memory = Batches(split.in_memory(), torch.device("cpu"))
    pairs = zip(streamed.shuffled(8, torch.Generator().manual_seed(3)), memory.shuffled(8, torch.Generator().manual_seed(3)), strict=True)
    for (inputs, labels), (expected, expected_labels) in pairs:
        assert torch.equal(labels, expected_labels)
        for modality in ("audio", "image"):
            assert torch.equal(inputs[modality], expected[modality])


def test_a_run_streaming_from_disk_learns_exactly_what_one_in_memory_learns(folder):
    results = []
    for loading in ("stream", "memory"):
        training = Training(config(folder, performance={"data_loading": loading, "loader_workers": 1}), MemoryReporter())
        assert training.streaming == (loading == "stream")
        results.append(training.run().summary)
    streamed, in_memory = results
    assert {k: v for k, v in streamed.items() if k.startswith("metric/")} == {k: v for k, v in in_memory.items() if k.startswith("metric/")}


def test_auto_streams_only_data_larger_than_memory_should_hold(folder, monkeypatch):
    assert not Training(config(folder)).streaming
    monkeypatch.setattr(loop, "STREAM_ABOVE_BYTES", 1000)
    assert Training(config(folder)).streaming


def test_on_cpu_mixed_precision_and_channels_last_stay_off():
    acceleration = Acceleration(torch.device("cpu"), mixed_precision=True, channels_last=True)
    batch = {"image": torch.randn(2, 3, 4, 4)}
    assert not acceleration.mixed_precision and not acceleration.channels_last and not acceleration.scaler.is_enabled()
    assert acceleration.inputs(batch)["image"].is_contiguous()
    with acceleration.autocast():
        assert torch.ones(2, 2).mm(torch.ones(2, 2)).dtype == torch.float32
