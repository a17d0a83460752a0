"""The training loop: what each epoch reports, MILES acting through it, resume and cancel."""

from __future__ import annotations

import math

import pytest

from trainer.checkpoint import CheckpointError
from trainer.config import TrainConfig
from trainer.loop import train
from trainer.miles import conditional_utilization
from trainer.reporting import MemoryReporter

SMALL_MODEL = {"embed_dim": 16, "hidden_dim": 32, "cnn_width": 4, "cnn_depth": 1}


def synthetic(**overrides) -> TrainConfig:
    spec = {
        "dataset": "synthetic",
        "dataset_params": {"signals": {"strong": 3.0, "weak": 0.8}, "train_size": 256, "val_size": 64, "test_size": 64},
        "model": SMALL_MODEL,
        "epochs": 4,
        "batch_size": 32,
        "lr": 0.003,
        "device": "cpu",
    }
    spec.update(overrides)
    return TrainConfig.model_validate(spec)


def test_every_epoch_reports_losses_metrics_utilization_and_rates():
    reporter = MemoryReporter()
    result = train(synthetic(method="miles"), reporter)
    assert result.status == "succeeded" and result.epochs_completed == 4
    training_epochs = [(e, m) for e, m in reporter.epochs if "loss/train" in m]
    assert [e for e, _ in training_epochs] == [1, 2, 3, 4]
    expected = {"loss/train", "loss/val", "util/strong", "util/weak", "util/delta", "lr/strong", "lr/weak", "lr/fusion", "time/epoch"}
    for split in ("train", "val"):
        expected |= {f"{kind}/{split}/{h}" for kind in ("metric", "loss") for h in ("fused", "strong", "weak")}
    for _, metrics in training_epochs:
        assert expected <= set(metrics)
        # Eq. 4 on the validation metrics of the same epoch
        u = conditional_utilization(metrics["metric/val/fused"], {m: metrics[f"metric/val/{m}"] for m in ("strong", "weak")})
        assert metrics["util/strong"] == pytest.approx(u["strong"])
        assert metrics["util/delta"] == pytest.approx(abs(u["strong"] - u["weak"]))


def test_a_miles_decision_sets_the_rates_of_the_next_epoch_and_never_the_fusion_rate():
    reporter = MemoryReporter()
    config = synthetic(method="miles", epochs=6, params={"tau": 0.05, "mu": 0.25})
    train(config, reporter)
    decisions = [e for e in reporter.events if e["kind"] == "miles.decision"]
    assert [d["epoch"] for d in decisions] == [1, 2, 3, 4, 5, 6]
    assert any(d["data"]["slowed"] for d in decisions), "MILES never acted on a strong/weak pair with tau 0.05"
    rates = reporter.by_epoch()
    for decision in decisions[:-1]:
        next_epoch = rates[decision["epoch"] + 1]
        for modality in ("strong", "weak"):
            expected = config.lr * (0.25 if decision["data"]["slowed"] == modality else 1.0)
            assert next_epoch[f"lr/{modality}"] == pytest.approx(expected)
    assert {m["lr/fusion"] for _, m in reporter.epochs if "lr/fusion" in m} == {config.lr}
    assert rates[1]["lr/strong"] == rates[1]["lr/weak"] == config.lr


def test_utilization_can_come_from_the_running_metrics_of_the_training_pass():
    reporter = MemoryReporter()
    train(synthetic(method="miles", params={"utilization_split": "train_running"}, epochs=2), reporter)
    metrics = reporter.by_epoch()[2]
    u = conditional_utilization(metrics["metric/train/fused"], {m: metrics[f"metric/train/{m}"] for m in ("strong", "weak")})
    assert metrics["util/weak"] == pytest.approx(u["weak"])


def test_the_summary_holds_test_metrics_of_the_best_validation_epoch_and_of_the_last():
    reporter = MemoryReporter()
    result = train(synthetic(method="joint", epochs=5), reporter)
    summary = result.summary
    best = summary["best_epoch"]
    assert summary["metric/val/fused"] == max(v for _, v in reporter.series("metric/val/fused"))
    assert summary["metric/test/fused"] == dict(reporter.series("metric/test/fused"))[best]
    assert summary["final/metric/test/fused"] == dict(reporter.series("metric/test/fused"))[5]
    assert reporter.summary == summary
    assert reporter.events[-1]["kind"] == "run.finished"


def test_a_run_told_not_to_evaluate_test_never_reports_a_test_metric():
    reporter = MemoryReporter()
    result = train(synthetic(method="joint", epochs=3, evaluate_test=False), reporter)
    reported = {key for _, metrics in reporter.epochs for key in metrics}
    assert not [key for key in reported | set(result.summary) if "test" in key]
    assert result.summary["metric/val/fused"] == max(v for _, v in reporter.series("metric/val/fused"))
    assert reporter.events[-1]["message"].endswith("(the test split was not evaluated)")


def test_three_modalities_report_the_masked_fusion_utilization():
    config = synthetic(
        method="miles",
        epochs=2,
        dataset_params={"signals": {"a": 3.0, "b": 1.0, "c": 0.5}, "train_size": 128, "val_size": 64, "test_size": 32},
    )
    reporter = MemoryReporter()
    train(config, reporter)
    metrics = reporter.by_epoch()[2]
    assert {"util/a", "util/b", "util/c", "util/delta"} <= set(metrics)
    decision = [e for e in reporter.events if e["kind"] == "miles.decision"][-1]
    assert decision["data"]["branch"].startswith("extension")


def test_a_multilabel_task_reports_macro_f1(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    for split, n in (("train", 96), ("val", 32), ("test", 32)):
        labels = rng.integers(0, 2, (n, 3)).astype(np.float32)
        np.savez(tmp_path / f"{split}.npz", label=labels,
                 text=(np.repeat(labels, 2, axis=1) * 3 + 0.3 * rng.standard_normal((n, 6))).astype(np.float32),
                 image=rng.standard_normal((n, 6, 6)).astype(np.float32))
    reporter = MemoryReporter()
    train(synthetic(dataset="folder", data_path=str(tmp_path), dataset_params={}, method="joint_aux", epochs=8, lr=0.01), reporter)
    f1 = reporter.series("metric/val/text")
    assert all(0.0 <= v <= 1.0 for _, v in f1)
    assert f1[-1][1] > 0.8


@pytest.mark.parametrize("fusion", ["sum", "film", "gated"])
def test_each_fusion_trains(fusion):
    result = train(synthetic(fusion=fusion, epochs=2))
    assert result.summary["metric/val/fused"] > 0.25


def test_a_resumed_run_gives_the_same_metrics_as_an_uninterrupted_one(tmp_path):
    config = synthetic(
        method="miles", epochs=4, params={"tau": 0.05},
        model=SMALL_MODEL | {"dropout": 0.3},
        dataset_params={"signals": {"strong": 3.0, "weak": 0.8}, "image_modalities": ["weak"], "train_size": 200, "val_size": 64, "test_size": 64},
    )
    whole = MemoryReporter()
    train(config, whole, checkpoint_dir=tmp_path / "whole")

    class StopInEpochThree(MemoryReporter):
        batches = 0

        def should_stop(self) -> bool:
            self.batches += 1
            return self.batches > 2 * 7 + 3  # 7 batches per epoch: stop inside epoch 3

    first = StopInEpochThree()
    assert train(config, first, checkpoint_dir=tmp_path / "split").status == "cancelled"
    second = MemoryReporter()
    resumed = train(config, second, checkpoint_dir=tmp_path / "split", resume=True)
    assert resumed.status == "succeeded"
    assert second.events[0]["kind"] == "run.resumed"
    combined = first.by_epoch() | {e: m for e, m in second.by_epoch().items() if e > 2}

    def strip_times(metrics):
        return {k: v for k, v in metrics.items() if not k.startswith("time/")}

    uninterrupted = whole.by_epoch()
    assert sorted(combined) == [1, 2, 3, 4]
    for epoch in (1, 2, 3, 4):
        assert strip_times(combined[epoch]) == strip_times(uninterrupted[epoch]), f"epoch {epoch} differs"
    assert strip_times(resumed.summary) == strip_times(whole.summary)


def test_cancelling_stops_before_the_next_batch():
    class StopAfterFive(MemoryReporter):
        calls = 0

        def should_stop(self) -> bool:
            self.calls += 1
            return self.calls > 5

    reporter = StopAfterFive()
    result = train(synthetic(epochs=3), reporter)
    assert result.status == "cancelled"
    assert result.epochs_completed == 0
    assert reporter.calls == 6 and reporter.epochs == []


def test_resuming_with_a_different_spec_is_refused(tmp_path):
    train(synthetic(epochs=1), checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="different lr"):
        train(synthetic(epochs=2, lr=0.01), checkpoint_dir=tmp_path, resume=True)
    longer = train(synthetic(epochs=2), checkpoint_dir=tmp_path, resume=True)  # more epochs is fine
    assert longer.epochs_completed == 2


def test_a_fused_metric_of_zero_reports_no_utilization():
    reporter = MemoryReporter()
    train(synthetic(method="miles", epochs=1, lr=1e-9, dataset_params={"signals": {"a": 0.0, "b": 0.0}, "classes": 2,
                                                                          "train_size": 8, "val_size": 1, "test_size": 2}), reporter)
    metrics = reporter.by_epoch()[1]
    decision = next(e for e in reporter.events if e["kind"] == "miles.decision")
    if metrics["metric/val/fused"] == 0:
        assert "util/delta" not in metrics
        assert decision["data"]["branch"] == "undefined"
    else:
        assert math.isfinite(metrics["util/delta"])


def test_a_corrupt_checkpoint_is_a_checkpoint_error(tmp_path):
    train(synthetic(epochs=1), checkpoint_dir=tmp_path)
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        train(synthetic(epochs=2), checkpoint_dir=tmp_path, resume=True)


def test_joint_without_depths_trains_as_before_the_field_existed():
    """The recorded result of `miles compare` (docs/results/compare/adaptive/pix+fou), trained before
    ``model.depths``, ``optimizer`` and ``momentum`` existed, comes out again: same spec, same seeded metrics."""
    import json
    from pathlib import Path

    import torch

    cell = Path(__file__).resolve().parents[2] / "docs/results/compare/adaptive/pix+fou/cells/joint.concat.seed0.json"
    recorded = json.loads(cell.read_text(encoding="utf-8"))
    config = TrainConfig.model_validate(recorded["config"] | {"device": "cpu"})
    assert config.model_dump(mode="json") == recorded["config"] | {"device": "cpu"}  # no optimizer, momentum nor depths
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each cell of `miles compare` trains
    try:
        summary = train(config).summary
    finally:
        torch.set_num_threads(threads)
    for key in ("best_epoch", "metric/val/fused", "metric/test/fused", "metric/test/pix", "metric/test/fou", "final/metric/test/fused"):
        assert summary[key] == pytest.approx(recorded["summary"][key], abs=1e-9), key


@pytest.mark.parametrize("method", ["miles", "gblend"])
def test_sgd_trains_the_run_and_its_trials_with_momentum_and_each_groups_rate(method):
    import torch

    from trainer.loop import Training

    config = synthetic(method=method, optimizer="sgd", momentum=0.8, lr=0.05, weight_decay=1e-4)
    training = Training(config)
    assert type(training.optimizer) is torch.optim.SGD
    assert {(g["momentum"], g["weight_decay"], g["lr"]) for g in training.optimizer.param_groups} == {(0.8, 1e-4, 0.05)}
    trial = training.trials.optimizer([{"params": [torch.nn.Parameter(torch.zeros(2))], "lr": 0.02}])
    assert type(trial) is torch.optim.SGD and trial.param_groups[0]["lr"] == 0.02 and trial.param_groups[0]["momentum"] == 0.8
    assert type(Training(synthetic(method=method)).optimizer) is torch.optim.Adam  # the default, as before the field
    result = training.run()
    assert result.status == "succeeded"
    assert result.summary["metric/val/strong"] > 0.5  # it learned (chance is 0.25: four classes)


def test_a_miles_decision_scales_the_rate_of_an_sgd_group_as_it_does_adams():
    reporter = MemoryReporter()
    config = synthetic(method="miles", epochs=4, optimizer="sgd", lr=0.05, params={"tau": 0.01, "mu": 0.25})
    train(config, reporter)
    decisions = {e["epoch"]: e["data"]["slowed"] for e in reporter.events if e["kind"] == "miles.decision"}
    rates = reporter.by_epoch()
    for epoch in (2, 3, 4):
        for modality in ("strong", "weak"):
            expected = config.lr * (0.25 if decisions[epoch - 1] == modality else 1.0)
            assert rates[epoch][f"lr/{modality}"] == pytest.approx(expected)
    assert any(decisions.values()), "MILES never acted with tau 0.01"
