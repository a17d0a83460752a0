"""G-Blend (Wang et al., CVPR 2020): G and O from a trial's losses, the weights from known G and O,
and the trial trainings leaving the run itself untouched."""

from __future__ import annotations

import pytest

from trainer.strategies.gblend import blending_weights, generalization_and_overfitting
from trainer.trials import TrialLosses


def test_g_is_the_held_out_loss_decrease_and_o_the_growth_of_the_held_out_train_gap():
    trial = TrialLosses(fit_start={"a": 2.0}, fit_end={"a": 0.5}, held_start={"a": 2.1}, held_end={"a": 1.3})
    g, o = generalization_and_overfitting(trial, "a")
    assert g == pytest.approx(0.8)  # 2.1 - 1.3
    assert o == pytest.approx(0.7)  # (1.3 - 0.5) - (2.1 - 2.0)


def test_weights_are_g_over_o_squared_normalised_to_one():
    # raw: fused 0.4 / 0.2^2 = 10, audio 0.3 / 0.1^2 = 30, image 0.1 / 0.5^2 = 0.4; Z = 40.4
    w = blending_weights({"fused": 0.4, "audio": 0.3, "image": 0.1}, {"fused": 0.2, "audio": -0.1, "image": 0.5})
    assert w == pytest.approx({"fused": 10 / 40.4, "audio": 30 / 40.4, "image": 0.4 / 40.4})
    assert sum(w.values()) == pytest.approx(1.0)


def test_a_head_whose_held_out_loss_rose_gets_no_weight():
    w = blending_weights({"fused": 0.5, "audio": -0.2}, {"fused": 0.5, "audio": 0.1})
    assert w == {"fused": 1.0, "audio": 0.0}


def test_weights_stay_uniform_when_no_head_generalized():
    assert blending_weights({"fused": -0.1, "a": 0.0}, {"fused": 0.3, "a": 0.2}) == {"fused": 0.5, "a": 0.5}


def _synthetic(**overrides):
    from tests.trainer.test_loop import synthetic

    return synthetic(**overrides)


def test_a_trial_trains_a_copy_and_leaves_the_run_its_weights_and_random_state():
    import torch

    from trainer.loop import Training

    training = Training(_synthetic(method="gblend"))
    weights = {k: v.clone() for k, v in training.model.state_dict().items()}
    rng = torch.get_rng_state()
    shuffle = training.shuffle.get_state()
    trial = training.trials.run(["strong", "weak"], epochs=2, holdout=0.25, learning_rates=training.strategy.learning_rates())
    assert all(torch.equal(v, weights[k]) for k, v in training.model.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng) and torch.equal(training.shuffle.get_state(), shuffle)
    fit, held = training.trials.split(0.25)
    assert (fit.size, held.size) == (192, 64) and not set(fit.rows.tolist()) & set(held.rows.tolist())
    # the unimodal heads learned on the rows they saw; every head is measured on both parts
    assert trial.fit_end["strong"] < trial.fit_start["strong"] and trial.fit_end["weak"] < trial.fit_start["weak"]
    assert set(trial.held_start) == set(trial.held_end) == {"fused", "strong", "weak"}


@pytest.mark.parametrize(("mode", "estimated_at"), [("offline", [1]), ("online", [1, 3])])
def test_gblend_weights_are_estimated_reported_and_used(mode, estimated_at):
    from trainer.loop import train
    from trainer.reporting import MemoryReporter

    reporter = MemoryReporter()
    result = train(_synthetic(method="gblend", epochs=4, params={"mode": mode, "super_epoch": 2}), reporter)
    events = [e for e in reporter.events if e["kind"] == "gblend.weights"]
    assert [e["data"]["epoch"] for e in events] == estimated_at
    for event in events:
        weights = event["data"]["weights"]
        assert set(weights) == {"fused", "strong", "weak"} and sum(weights.values()) == pytest.approx(1.0)
        assert event["data"]["seconds"] > 0
    epochs = reporter.by_epoch()
    last = events[-1]["data"]["weights"]
    assert {h: epochs[4][f"weight/{h}"] for h in last} == pytest.approx(last)
    assert "time/trials" in epochs[1] and "time/trials" not in epochs[2]
    assert result.summary["time/trials"] > 0 and result.summary["gblend/estimates"] == len(estimated_at)


def test_an_online_run_resumed_inside_an_estimating_epoch_repeats_the_uninterrupted_one(tmp_path):
    from trainer.loop import train
    from trainer.reporting import MemoryReporter

    config = _synthetic(method="gblend", epochs=4, params={"mode": "online", "super_epoch": 2},
                        dataset_params={"signals": {"strong": 3.0, "weak": 0.8}, "train_size": 192, "val_size": 64, "test_size": 64})
    whole = MemoryReporter()
    train(config, whole, checkpoint_dir=tmp_path / "whole")

    class StopInEpochThree(MemoryReporter):
        batches = 0

        def should_stop(self) -> bool:
            self.batches += 1
            return self.batches > 2 * 6 + 2  # 6 batches per epoch: stop inside epoch 3, after its trials

    first = StopInEpochThree()
    assert train(config, first, checkpoint_dir=tmp_path / "split").status == "cancelled"
    second = MemoryReporter()
    train(config, second, checkpoint_dir=tmp_path / "split", resume=True)
    combined = first.by_epoch() | {e: m for e, m in second.by_epoch().items() if e > 2}

    def untimed(metrics):
        return {k: v for k, v in metrics.items() if not k.startswith("time/")}

    assert {e: untimed(m) for e, m in combined.items()} == {e: untimed(m) for e, m in whole.by_epoch().items()}
    estimates = [e["data"]["weights"] for e in whole.events if e["kind"] == "gblend.weights"]
    assert [e["data"]["weights"] for e in second.events if e["kind"] == "gblend.weights"] == estimates[1:]
