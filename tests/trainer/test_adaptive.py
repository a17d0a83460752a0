"""`adaptive`'s rule (trainer/strategies/adaptive.py) on hand-computed cases, and through the training loop."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from tests.trainer.test_loop import synthetic
from trainer.loop import train
from trainer.methods import METHODS, AdaptiveParams
from trainer.miles import miles_decision
from trainer.reporting import MemoryReporter, json_safe
from trainer.strategies.adaptive import AdaptiveRule


def _rule(**params) -> AdaptiveRule:
    return AdaptiveRule(AdaptiveParams(**params), ["a", "b"])


def _improving(epoch: int) -> dict[str, float]:
    """Head metrics that set a new best every epoch (the weak head is still learning)."""
    return {"a": 0.5 + epoch / 1000, "b": 0.25 + epoch / 1000}


def test_the_brake_is_continuous_in_the_excess_of_the_gap_over_tau():
    # gap 0.75 - 0.25 = 0.5, excess over tau 0.25 is 0.25: m = 1 - kappa * 0.25
    for kappa, expected in [(1.0, 0.75), (2.0, 0.5), (0.5, 0.875)]:
        decision = _rule(tau=0.25, kappa=kappa, mu=0.25).step(1, {"a": 0.75, "b": 0.25}, _improving(1))
        assert decision.branch == "braked" and decision.slowed == "a"
        assert decision.gap == 0.5
        assert decision.multipliers == {"a": expected, "b": 1.0}


def test_the_brake_never_goes_below_mu():
    # 1 - 4 * 0.25 = 0: floored at mu, MILES's own brake
    decision = _rule(tau=0.25, kappa=4.0, mu=0.25).step(1, {"a": 0.75, "b": 0.25}, _improving(1))
    assert decision.multipliers == {"a": 0.25, "b": 1.0}


def test_the_other_way_round_the_other_modality_is_slowed():
    decision = _rule(tau=0.25, kappa=1.0).step(1, {"a": 0.25, "b": 0.75}, _improving(1))
    assert (decision.dominant, decision.weak, decision.multipliers) == ("b", "a", {"a": 1.0, "b": 0.75})


def test_with_boost_the_weak_modality_is_sped_up_by_the_same_excess_up_to_boost():
    # gap 0.5, excess over tau 0.25 is 0.25: m_w = min(boost, 1 + kappa * 0.25), beside m_d = max(mu, 1 - kappa * 0.25)
    for kappa, boost, expected in [(1.0, 2.0, {"a": 0.75, "b": 1.25}), (2.0, 2.0, {"a": 0.5, "b": 1.5}),
                                   (4.0, 1.5, {"a": 0.25, "b": 1.5})]:
        decision = _rule(tau=0.25, kappa=kappa, mu=0.25, boost=boost).step(1, {"a": 0.75, "b": 0.25}, _improving(1))
        assert (decision.branch, decision.slowed, decision.sped_up) == ("braked", "a", "b")
        assert decision.multipliers == expected
        assert decision.message(1e-3, 0.25).startswith(
            f"adaptive slowed a to {expected['a'] * 1e-3:.2e} (x{expected['a']:.3f}) and sped up b to {expected['b'] * 1e-3:.2e}")


def test_with_mu_1_and_a_boost_only_the_weak_modality_changes_and_only_its_boosts_are_counted():
    rule = _rule(tau=0.25, kappa=2.0, mu=1.0, boost=3.0)
    decision = rule.step(1, {"a": 0.25, "b": 0.75}, _improving(1))  # a is the weak one: 1 + 2 * 0.25 = 1.5
    assert (decision.slowed, decision.sped_up, decision.multipliers) == (None, "a", {"a": 1.5, "b": 1.0})
    assert decision.to_dict()["sped_up"] == "a" and decision.to_dict()["slowed"] is None
    assert decision.message(1e-3, 0.25).startswith("adaptive sped up a to 1.50e-03 (x1.500) (")
    assert (rule.actions, rule.boosts, rule.acted) == ({"a": 0, "b": 0}, {"a": 1, "b": 0}, 1)


def test_the_boost_is_released_with_the_brake_once_the_weak_head_stops_improving():
    rule = _rule(tau=0.25, kappa=1.0, patience=1, boost=2.0)
    u = {"a": 0.75, "b": 0.25}
    assert rule.step(1, u, {"a": 0.5, "b": 0.5}).multipliers == {"a": 0.75, "b": 1.25}
    released = rule.step(2, u, {"a": 0.5, "b": 0.5})
    assert (released.branch, released.sped_up, released.multipliers) == ("weak_at_ceiling", None, {"a": 1.0, "b": 1.0})


def test_without_boost_the_weak_rate_stays_and_the_spec_is_what_it_was():
    decision = _rule(tau=0.25, kappa=1.0).step(1, {"a": 0.75, "b": 0.25}, _improving(1))
    assert decision.sped_up is None and decision.multipliers["b"] == 1.0
    assert "boost" not in AdaptiveParams().model_dump()  # specs written before the field read the same
    assert AdaptiveParams(boost=2).model_dump()["boost"] == 2


def test_no_brake_within_tau():
    decision = _rule(tau=0.25).step(1, {"a": 0.5, "b": 0.25}, _improving(1))
    assert (decision.branch, decision.slowed, decision.multipliers) == ("within_threshold", None, {"a": 1.0, "b": 1.0})


def test_no_brake_when_the_fusion_is_below_every_head():
    decision = _rule(tau=0.0).step(1, {"a": -0.125, "b": -0.5}, _improving(1))
    assert decision.branch == "fusion_below_heads" and decision.multipliers == {"a": 1.0, "b": 1.0}


def test_the_utilization_is_smoothed_by_an_exponential_moving_average():
    rule = _rule(tau=0.25, kappa=1.0, beta=0.5)
    first = rule.step(1, {"a": 0.5, "b": 0.0}, _improving(1))
    assert first.smoothed == {"a": 0.5, "b": 0.0}  # the first epoch initialises the average
    second = rule.step(2, {"a": 0.25, "b": 0.25}, _improving(2))
    # ū_a = 0.5 * 0.5 + 0.5 * 0.25 = 0.375, ū_b = 0.5 * 0 + 0.5 * 0.25 = 0.125: gap 0.25 = tau, no brake
    assert second.smoothed == {"a": 0.375, "b": 0.125}
    assert second.branch == "within_threshold"
    third = rule.step(3, {"a": 1.0, "b": 0.0}, _improving(3))
    # ū_a = 0.6875, ū_b = 0.0625: gap 0.625, excess 0.375, m = 1 - 0.375 = 0.625
    assert third.smoothed == {"a": 0.6875, "b": 0.0625}
    assert third.multipliers == {"a": 0.625, "b": 1.0}


def test_a_noisy_gap_that_flips_miles_moves_the_smoothed_brake_little():
    # Gaps 0.5, 0, 0.5, 0 around tau 0.25: MILES brakes at mu in epochs 1 and 3 and releases in 2 and 4.
    sequence = [{"a": 0.5, "b": 0.0}, {"a": 0.25, "b": 0.25}] * 2
    miles = [miles_decision(u, tau=0.25, mu=0.5).multipliers["a"] for u in sequence]
    assert miles == [0.5, 1.0, 0.5, 1.0]
    rule = _rule(tau=0.125, kappa=1.0, mu=0.5, beta=0.5)
    smoothed = [rule.step(e, u, _improving(e)).multipliers["a"] for e, u in enumerate(sequence, 1)]
    # smoothed gaps 0.5, 0.25, 0.375, 0.1875: m = 1 - (gap - 0.125), floored at 0.5
    assert smoothed == [0.625, 0.875, 0.75, 0.9375]


def test_the_brake_is_released_once_the_weak_head_stops_improving_and_returns_when_it_improves():
    rule = _rule(tau=0.25, kappa=1.0, patience=2)
    u = {"a": 0.75, "b": 0.25}
    assert rule.step(1, u, {"a": 0.5, "b": 0.5}).branch == "braked"  # best of b: 0.5 at epoch 1
    assert rule.step(2, u, {"a": 0.5, "b": 0.5}).branch == "braked"  # 1 epoch without a new best < patience
    released = rule.step(3, u, {"a": 0.5, "b": 0.4375})  # 2 epochs without a new best: at its ceiling
    assert (released.branch, released.weak_best, released.weak_stalled) == ("weak_at_ceiling", 0.5, 2)
    assert released.multipliers == {"a": 1.0, "b": 1.0}
    assert "released" in released.message(1e-3, 0.25)
    again = rule.step(4, u, {"a": 0.5, "b": 0.5625})  # a new best: still learning, braked again
    assert (again.branch, again.multipliers) == ("braked", {"a": 0.75, "b": 1.0})
    assert rule.actions == {"a": 3, "b": 0}


def test_undefined_utilization_keeps_every_rate_and_the_average():
    rule = _rule(tau=0.25)
    rule.step(1, {"a": 0.75, "b": 0.25}, _improving(1))
    decision = rule.step(2, {"a": math.nan, "b": math.nan}, _improving(2))
    assert decision.branch == "undefined" and decision.multipliers == {"a": 1.0, "b": 1.0}
    assert rule.smoothed == {"a": 0.75, "b": 0.25}
    assert json_safe(decision.to_dict())["gap"] is None


def test_more_modalities_slow_the_largest_smoothed_utilization():
    rule = AdaptiveRule(AdaptiveParams(tau=0.25, kappa=1.0), ["a", "b", "c"])
    decision = rule.step(1, {"a": 0.25, "b": 0.75, "c": 0.0}, {"a": 0.5, "b": 0.5, "c": 0.5})
    assert (decision.dominant, decision.weak, decision.multipliers) == ("b", "c", {"a": 1.0, "b": 0.5, "c": 1.0})


def test_the_state_round_trips():
    rule = _rule(tau=0.25, patience=2)
    for epoch in (1, 2):
        rule.step(epoch, {"a": 0.75, "b": 0.25}, {"a": 0.5, "b": 0.5})
    copy = _rule(tau=0.25, patience=2)
    copy.load_state_dict(rule.state_dict())
    u = {"a": 0.5, "b": 0.25}
    assert copy.step(3, u, {"a": 0.5, "b": 0.5}) == rule.step(3, u, {"a": 0.5, "b": 0.5})


def test_a_checkpoint_written_before_the_boost_existed_still_loads():
    rule = _rule(tau=0.25)
    rule.step(1, {"a": 0.75, "b": 0.25}, _improving(1))
    state = rule.state_dict()
    del state["boosts"], state["acted"]  # what such a checkpoint holds: only the brakes, one modality each
    copy = _rule(tau=0.25)
    copy.load_state_dict(state)
    assert copy.boosts == {"a": 0, "b": 0} and copy.actions == {"a": 1, "b": 0} and copy.acted == 1


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [("tau", -0.1, "must satisfy 0 <= tau <= 1 (got -0.1)"), ("kappa", 0, "must satisfy 0 < kappa <= 100 (got 0)"),
     ("mu", 1.5, "must satisfy 0 < mu <= 1 (got 1.5)"), ("beta", 1.0, "must satisfy 0 <= beta < 1 (got 1.0)"),
     ("patience", 0, "must satisfy 1 <= patience <= 1000 (got 0)"), ("boost", 0.5, "must satisfy 1 <= boost <= 10 (got 0.5)")],
)
def test_out_of_range_parameters_are_refused_naming_the_field(field, value, allowed):
    with pytest.raises(ValidationError) as error:
        AdaptiveParams(**{field: value})
    assert error.value.errors()[0]["loc"] == (field,)
    assert allowed in str(error.value)


def test_it_is_in_the_catalogue_after_the_other_methods():
    assert list(METHODS)[-1] == "adaptive"
    assert set(METHODS["adaptive"].params_schema()["properties"]) == {"tau", "kappa", "mu", "beta", "patience", "boost"}


@pytest.mark.parametrize("boost", [1.0, 2.0])
def test_through_the_loop_each_decision_sets_the_next_epochs_rates_and_never_the_fusion_rate(boost):
    reporter = MemoryReporter()
    params = {"tau": 0.0, "kappa": 4.0, "mu": 0.25, "patience": 100, "boost": boost}
    config = synthetic(method="adaptive", epochs=6, params=params)
    result = train(config, reporter)
    decisions = [e for e in reporter.events if e["kind"] == "adaptive.decision"]
    assert [d["epoch"] for d in decisions] == [1, 2, 3, 4, 5, 6]
    assert any(d["data"]["slowed"] for d in decisions), "adaptive never braked a strong/weak pair with tau 0"
    rates = reporter.by_epoch()
    assert rates[1]["lr/strong"] == rates[1]["lr/weak"] == config.lr
    for decision in decisions[:-1]:
        for modality in ("strong", "weak"):
            expected = config.lr * decision["data"]["multipliers"][modality]
            assert rates[decision["epoch"] + 1][f"lr/{modality}"] == pytest.approx(expected)
    assert {m["lr/fusion"] for _, m in reporter.epochs if "lr/fusion" in m} == {config.lr}
    assert result.summary["adaptive/actions"] == sum(1 for d in decisions if d["data"]["slowed"] or d["data"]["sped_up"])
    sped_up = [d["data"]["sped_up"] for d in decisions if d["data"]["sped_up"]]
    if boost == 1.0:
        assert not sped_up and not any(key.startswith("adaptive/sped_up/") for key in result.summary)
    else:
        assert sped_up, "adaptive never sped up the weak modality with tau 0 and a boost"
        assert {m: result.summary[f"adaptive/sped_up/{m}"] for m in ("strong", "weak")} == {
            m: sped_up.count(m) for m in ("strong", "weak")}
