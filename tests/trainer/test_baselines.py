"""The paper's baselines MSES and MSLR, and `unimodal`: each mechanism on small hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from trainer.config import ModelConfig, TrainConfig
from trainer.datasets import ModalitySpec
from trainer.loop import Training, train
from trainer.methods import MsesParams, MslrDynamicParams, MslrParams
from trainer.models import MultiHeadFusionNet
from trainer.reporting import MemoryReporter
from trainer.spec import explain
from trainer.strategies.base import EpochResult, SplitScores, Strategy
from trainer.strategies.mses import MsesStrategy
from trainer.strategies.mslr import MslrDynamicStrategy, MslrKeepStrategy, MslrSmoothStrategy

LR = 0.01
SPECS = {"a": ModalitySpec("vector", (3,)), "b": ModalitySpec("vector", (3,))}


def bound(strategy: Strategy) -> tuple[MultiHeadFusionNet, Strategy]:
    model = MultiHeadFusionNet(SPECS, "concat", 2, ModelConfig(embed_dim=4, hidden_dim=4))
    strategy.bind(torch.optim.Adam(strategy.param_groups(model), lr=LR))
    return model, strategy


def epoch(number: int, fused: float, a: float, b: float) -> EpochResult:
    scores = SplitScores(metric={"fused": fused, "a": a, "b": b}, loss={})
    return EpochResult(number, scores, scores, {}, math.nan)


def synthetic(**overrides) -> TrainConfig:
    spec = {
        "dataset": "synthetic",
        "dataset_params": {"signals": {"strong": 3.0, "weak": 0.8}, "train_size": 256, "val_size": 64, "test_size": 64},
        "model": {"embed_dim": 16, "hidden_dim": 32, "cnn_width": 4, "cnn_depth": 1},
        "epochs": 4, "batch_size": 32, "lr": 0.003, "device": "cpu",
    }
    return TrainConfig.model_validate(spec | overrides)


# -- MSES ------------------------------------------------------------------------------------------------------


def test_mses_freezes_a_modality_after_patience_epochs_without_improvement():
    model, mses = bound(MsesStrategy(MsesParams(patience=2), ["a", "b"], LR))
    # a peaks at epoch 2 (0.6); epochs 3 and 4 do not beat it: frozen after epoch 4, not before.
    history = [(0.7, 0.5, 0.3), (0.8, 0.6, 0.4), (0.9, 0.6, 0.5)]
    for number, values in enumerate(history, start=1):
        assert mses.on_epoch_end(epoch(number, *values)) == []
    (event,) = mses.on_epoch_end(epoch(4, 0.95, 0.55, 0.6))
    assert event.kind == "mses.freeze" and "froze a after epoch 4" in event.message
    assert event.data | {"learning_rates": None} == {
        "group": "a", "best": 0.6, "best_epoch": 2, "value": 0.55, "flat_epochs": 2, "patience": 2, "learning_rates": None,
    }
    assert mses.learning_rates() == {"a": 0.0, "b": LR, "fusion": LR}
    assert not any(p.requires_grad for p in model.encoders["a"].parameters())
    assert not any(p.requires_grad for p in model.aux_heads["a"].parameters())
    assert all(p.requires_grad for p in model.encoders["b"].parameters())
    assert mses.epoch_metrics() == {"frozen/a": 1.0, "frozen/b": 0.0, "frozen/fusion": 0.0}
    assert not mses.should_stop()


def test_mses_ends_the_run_once_every_part_is_frozen():
    _, mses = bound(MsesStrategy(MsesParams(patience=1), ["a", "b"], LR))
    mses.on_epoch_end(epoch(1, 0.8, 0.5, 0.4))
    frozen = mses.on_epoch_end(epoch(2, 0.8, 0.6, 0.4))  # fused and b flat for 1 epoch
    assert [e.data["group"] for e in frozen] == ["b", "fusion"] and not mses.should_stop()
    (last,) = mses.on_epoch_end(epoch(3, 0.9, 0.6, 0.9))  # only a is watched still
    assert last.data["group"] == "a" and mses.should_stop()
    assert mses.summary() == {"mses/frozen_after/b": 2, "mses/frozen_after/fusion": 2, "mses/frozen_after/a": 3}


def test_a_resumed_mses_run_keeps_its_frozen_parts_frozen():
    _, before = bound(MsesStrategy(MsesParams(patience=1), ["a", "b"], LR))
    before.on_epoch_end(epoch(1, 0.8, 0.5, 0.4))
    before.on_epoch_end(epoch(2, 0.9, 0.5, 0.5))
    model, after = bound(MsesStrategy(MsesParams(patience=1), ["a", "b"], LR))
    after.load_state_dict(before.state_dict())
    assert after.frozen == {"a": 2} and after.learning_rates()["a"] == 0.0
    assert not any(p.requires_grad for p in model.encoders["a"].parameters())


def test_an_mses_run_stops_early_with_frozen_rates_at_zero_and_frozen_weights_fixed():
    reporter = MemoryReporter()
    training = Training(synthetic(method="mses", params={"patience": 1}, epochs=40), reporter)
    result = training.run()
    assert result.epochs_completed < 40
    assert any(e["kind"] == "run.stopped_early" for e in reporter.events)
    freezes = {e["data"]["group"]: e["epoch"] for e in reporter.events if e["kind"] == "mses.freeze"}
    assert set(freezes) == {"strong", "weak", "fusion"}
    by_epoch = reporter.by_epoch()
    for group, frozen_after in freezes.items():
        for number in range(1, result.epochs_completed + 1):
            assert by_epoch[number][f"frozen/{group}"] == float(number >= frozen_after)
            if number > frozen_after:
                assert by_epoch[number][f"lr/{group}"] == 0.0


# -- MSLR ------------------------------------------------------------------------------------------------------


def test_mslr_keep_trains_each_modality_at_its_own_rate_and_the_fusion_at_the_global_one():
    _, keep = bound(MslrKeepStrategy(MslrParams(lrs={"a": 1e-4, "b": 1e-3}), ["a", "b"], LR))
    assert keep.learning_rates() == {"a": 1e-4, "b": 1e-3, "fusion": LR}
    (event,) = keep.on_epoch_end(epoch(1, 0.9, 0.5, 0.4))
    assert event.kind == "mslr.rates" and keep.on_epoch_end(epoch(2, 0.9, 0.5, 0.4)) == []
    assert keep.learning_rates() == {"a": 1e-4, "b": 1e-3, "fusion": LR}


def test_mslr_smooth_moves_each_rate_halfway_toward_the_mean_of_the_rates():
    _, smooth = bound(MslrSmoothStrategy(MslrParams(lrs={"a": 1e-4, "b": 1e-3}), ["a", "b"], LR))
    # mean 5.5e-4: a (1e-4 + 5.5e-4) / 2 = 3.25e-4, b (1e-3 + 5.5e-4) / 2 = 7.75e-4
    rates = smooth.learning_rates()
    assert rates["a"] == pytest.approx(3.25e-4) and rates["b"] == pytest.approx(7.75e-4) and rates["fusion"] == LR


def test_mslr_dynamic_rescales_the_initial_rate_by_the_metric_over_its_mean_of_the_previous_window():
    _, dynamic = bound(MslrDynamicStrategy(MslrDynamicParams(lrs={"a": 1e-3, "b": 1e-4}, window=2), ["a", "b"], LR))
    a_metric, b_metric = [0.5, 0.6, 0.66, 0.6], [0.2, 0.2, 0.3, 0.1]
    expected = [
        (1e-3, 1e-4),  # epoch 1: no previous epoch, the initial rates stay
        (1e-3 * 0.6 / 0.5, 1e-4 * 0.2 / 0.2),
        (1e-3 * 0.66 / 0.55, 1e-4 * 0.3 / 0.2),
        (1e-3 * 0.6 / 0.63, 1e-4 * 0.1 / 0.25),  # window 2: the mean of epochs 2 and 3 only
    ]
    for number, (a, b, (lr_a, lr_b)) in enumerate(zip(a_metric, b_metric, expected, strict=True), start=1):
        events = dynamic.on_epoch_end(epoch(number, 0.9, a, b))
        rates = dynamic.learning_rates()
        assert rates["a"] == pytest.approx(lr_a) and rates["b"] == pytest.approx(lr_b) and rates["fusion"] == LR
        # epoch 1: the rates the run trains at; then each rescaling
        assert [e.kind for e in events] == ["mslr.rates"] and ("ratios" in events[0].data) == (number > 1)
    assert events[-1].data["ratios"] == pytest.approx({"a": 0.6 / 0.63, "b": 0.4})


def errors_of(**overrides) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        synthetic(**overrides)
    return {e.field: e.message for e in explain(caught.value)}


def test_mslr_rates_must_name_exactly_the_runs_modalities_each_in_range():
    errors = errors_of(method="mslr_keep", params={"lrs": {"strong": 1e-3}})
    assert errors == {"params.lrs": "must name exactly the run's modalities (strong, weak); got strong"}
    errors = errors_of(method="mslr_smooth", params={"lrs": {"strong": 1e-3, "weak": 0.0}})
    assert errors == {"params.lrs": "the rate of 'weak' must satisfy 0 < lr <= 1 (got 0.0)"}
    errors = errors_of(method="mslr_dynamic", params={"lrs": {"strong": 1e-3, "weak": 1e-3}, "window": 0})
    assert errors == {"params.window": "must satisfy 1 <= window <= 100 (got 0)"}
    assert errors_of(method="mses", params={"patience": 0}) == {"params.patience": "must satisfy 1 <= patience <= 1000 (got 0)"}


def test_mslr_without_rates_takes_those_tune_lr_recorded_or_says_how_to_record_them(tmp_path, monkeypatch):
    from trainer.tuned_rates import record_tuned

    monkeypatch.setenv("MILES_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="miles tune-lr --dataset synthetic --modality strong; miles tune-lr --dataset synthetic --modality weak"):
        synthetic(method="mslr_keep")
    record_tuned("synthetic", "strong", {"lr": 3e-3})
    assert "give a learning rate per modality (strong, weak)" in errors_of(method="mslr_keep")["params.lrs"]  # weak: none yet
    record_tuned("synthetic", "weak", {"lr": 1e-4})
    assert synthetic(method="mslr_keep").params["lrs"] == {"strong": 3e-3, "weak": 1e-4}


# -- unimodal --------------------------------------------------------------------------------------------------


def test_unimodal_trains_one_modality_with_the_encoder_and_head_of_the_multimodal_model():
    reporter = MemoryReporter()
    training = Training(synthetic(method="unimodal", modalities=["weak"], epochs=3), reporter)
    result = training.run()
    fused = MultiHeadFusionNet(training.info.modalities, "concat", training.info.num_classes, training.config.model)
    alone = training.model
    assert set(alone.encoders) == {"weak"} and alone.fusion is None and alone.head is None
    shapes = [p.shape for p in [*alone.encoders["weak"].parameters(), *alone.aux_heads["weak"].parameters()]]
    assert shapes == [p.shape for p in [*fused.encoders["weak"].parameters(), *fused.aux_heads["weak"].parameters()]]
    for metrics in reporter.by_epoch().values():
        if "loss/train" not in metrics:
            continue
        assert metrics["metric/val/weak"] == metrics["metric/val/fused"]
        assert metrics["loss/train"] == metrics["loss/train/weak"]  # the head's loss alone, not counted twice
        assert set(k for k in metrics if k.startswith("lr/")) == {"lr/weak"} and not any(k.startswith("util/") for k in metrics)
    assert result.summary["metric/test/weak"] == result.summary["metric/test/fused"] > 0.3


def test_unimodal_learns_the_modality_alone():
    reporter = MemoryReporter()
    train(synthetic(method="unimodal", modalities=["strong"], epochs=3), reporter)
    accuracy = [m["metric/val/strong"] for _, m in reporter.epochs if "loss/train" in m]
    assert accuracy[-1] > 0.8  # the strong signal alone is easy; chance is far below


def test_unimodal_names_exactly_one_modality():
    with pytest.raises(ValueError, match="trains one modality alone: name exactly one"):
        synthetic(method="unimodal", modalities=["strong", "weak"])


# -- joint, unchanged ------------------------------------------------------------------------------------------


def test_a_seeded_joint_run_gives_the_numbers_it_gave_before_the_baselines():
    """Pinned from the same run on the code before MSES, MSLR, unimodal and the train-split evaluation."""
    reporter = MemoryReporter()
    config = synthetic(method="joint", seed=7, epochs=3, model={"embed_dim": 16, "hidden_dim": 32, "cnn_width": 4, "cnn_depth": 1, "dropout": 0.2})
    result = train(config, reporter)
    last = reporter.by_epoch()[3]
    assert last["loss/train"] == pytest.approx(3.62943297624588, rel=1e-6)
    assert last["loss/val"] == pytest.approx(3.320688486099243, rel=1e-6)
    assert (last["metric/val/fused"], last["metric/val/strong"], last["metric/val/weak"]) == (1.0, 0.796875, 0.34375)
    assert result.summary["final/metric/test/weak"] == 0.234375


def test_mslr_takes_only_rates_tuned_with_the_runs_optimizer(tmp_path, monkeypatch):
    from trainer.tuned_rates import record_tuned

    monkeypatch.setenv("MILES_HOME", str(tmp_path))
    record_tuned("synthetic", "strong", {"lr": 3e-3})  # recorded before the optimizer was: Adam's
    record_tuned("synthetic", "weak", {"lr": 1e-3, "optimizer": "adam"})
    assert synthetic(method="mslr_keep").params["lrs"] == {"strong": 3e-3, "weak": 1e-3}
    message = errors_of(method="mslr_keep", optimizer="sgd")["params.lrs"]
    assert "miles tune-lr --dataset synthetic --modality strong --optimizer sgd" in message
    record_tuned("synthetic", "strong", {"lr": 0.03, "optimizer": "sgd"})
    record_tuned("synthetic", "weak", {"lr": 0.1, "optimizer": "sgd"})
    assert synthetic(method="mslr_keep", optimizer="sgd").params["lrs"] == {"strong": 0.03, "weak": 0.1}
    assert "params.lrs" in errors_of(method="mslr_keep")  # and Adam's are gone with them
