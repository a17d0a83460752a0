"""Utilization on the training split: an evaluation after the epoch, apart from the training pass's running metrics."""

from __future__ import annotations

import pytest

from trainer.config import TrainConfig
from trainer.loop import Training
from trainer.miles import conditional_utilization
from trainer.reporting import MemoryReporter

SPEC = {
    "dataset": "synthetic",
    "dataset_params": {"signals": {"strong": 3.0, "weak": 0.8}, "train_size": 256, "val_size": 64, "test_size": 64},
    # Dropout makes the training pass (train mode, weights moving) differ from an evaluation after it.
    "model": {"embed_dim": 16, "hidden_dim": 32, "dropout": 0.5},
    "epochs": 1, "batch_size": 32, "lr": 0.003, "device": "cpu", "method": "miles", "seed": 3,
}


def trained(split: str) -> tuple[Training, dict[str, float]]:
    reporter = MemoryReporter()
    training = Training(TrainConfig.model_validate(SPEC | {"params": {"utilization_split": split}}), reporter)
    training.run()
    return training, reporter.by_epoch()[1]


def test_train_utilization_equals_a_separate_evaluation_of_the_training_split_after_the_epoch():
    training, metrics = trained("train")
    scores = training.evaluate(training.train_data)
    expected = conditional_utilization(scores.metric["fused"], scores.heads(training.modalities))
    for modality in ("strong", "weak"):
        assert metrics[f"util/{modality}"] == pytest.approx(expected[modality], abs=1e-12)


def test_train_and_train_running_differ_where_dropout_and_moving_weights_make_them_differ():
    _, evaluated = trained("train")
    _, running = trained("train_running")
    # The same training (same seed): the running metrics agree, the utilizations do not.
    assert evaluated["metric/train/fused"] == running["metric/train/fused"]
    u = conditional_utilization(running["metric/train/fused"], {m: running[f"metric/train/{m}"] for m in ("strong", "weak")})
    assert running["util/weak"] == pytest.approx(u["weak"])
    assert evaluated["util/weak"] != pytest.approx(running["util/weak"], abs=1e-6)


def test_an_unknown_split_is_refused_with_the_allowed_ones():
    with pytest.raises(ValueError, match="train_running"):
        TrainConfig.model_validate(SPEC | {"params": {"utilization_split": "test"}})
