"""MILES as MILES.md states it: Eq. 4 and every branch of Algorithm 1, with hand-computed numbers."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from trainer.miles import MilesScheduler, conditional_utilization, miles_decision, utilization_gap
from trainer.reporting import json_safe


def test_utilization_is_each_modality_share_of_the_fused_metric_beyond_the_other_head():
    # Eq. 4: u_A = (0.8 - 0.4) / 0.8, u_B = (0.8 - 0.6) / 0.8
    u = conditional_utilization(0.8, {"audio": 0.6, "image": 0.4})
    assert u == pytest.approx({"audio": 0.5, "image": 0.25})
    assert utilization_gap(u) == pytest.approx(0.25)


def test_utilization_is_undefined_when_the_fused_metric_is_zero():
    u = conditional_utilization(0.0, {"audio": 0.3, "image": 0.1})
    assert all(math.isnan(v) for v in u.values())
    decision = miles_decision(u, tau=0.2, mu=0.5)
    assert decision.branch == "undefined"
    assert decision.slowed is None
    assert decision.multipliers == {"audio": 1.0, "image": 1.0}
    data = decision.to_dict()
    assert math.isnan(data["delta"]) and all(math.isnan(v) for v in data["utilization"].values())
    assert json_safe(data)["delta"] is None and json_safe(data)["utilization"] == {"audio": None, "image": None}


def test_more_than_two_modalities_use_the_masked_fusion_extension():
    u = conditional_utilization(0.8, {"a": 0.7, "b": 0.5, "c": 0.2}, masked={"a": 0.4, "b": 0.6, "c": 0.8})
    assert u == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.0})
    with pytest.raises(ValueError, match="masked"):
        conditional_utilization(0.8, {"a": 0.7, "b": 0.5, "c": 0.2})


def test_no_action_when_the_gap_is_within_tau():
    decision = miles_decision({"audio": 0.5, "image": 0.4}, tau=0.2, mu=0.5)
    assert (decision.branch, decision.slowed) == ("within_threshold", None)
    assert decision.multipliers == {"audio": 1.0, "image": 1.0}


def test_a_gap_equal_to_tau_takes_no_action():
    # Exactly representable: u = 0.5 and 0.25, gap 0.25 = tau.
    assert miles_decision({"a": 0.5, "b": 0.25}, tau=0.25, mu=0.5).slowed is None
    # In exact arithmetic the gap is 0.2 here (fused 0.8, heads 0.6 and 0.44); in floating point
    # it is 0.20000000000000004, which must still count as equal to tau.
    u = conditional_utilization(0.8, {"a": 0.6, "b": 0.44})
    decision = miles_decision(u, tau=0.2, mu=0.5)
    assert (decision.branch, decision.slowed) == ("within_threshold", None)


def test_no_action_when_the_fusion_is_worse_than_both_heads():
    # fused 0.5, heads 0.75 and 0.55: u_A = -0.1, u_B = -0.5, gap 0.4 > tau, both negative: wait.
    u = conditional_utilization(0.5, {"a": 0.75, "b": 0.55})
    assert u == pytest.approx({"a": -0.1, "b": -0.5})
    decision = miles_decision(u, tau=0.2, mu=0.5)
    assert (decision.branch, decision.slowed) == ("fusion_below_heads", None)
    assert "waited" in decision.message(1e-3)


@pytest.mark.parametrize(
    ("u", "slowed"),
    [({"a": 0.3, "b": -0.1}, "a"), ({"a": -0.1, "b": 0.3}, "b")],
)
def test_with_opposite_signs_the_positive_modality_is_slowed(u, slowed):
    decision = miles_decision(u, tau=0.2, mu=0.5)
    assert (decision.branch, decision.slowed) == ("opposite_signs", slowed)
    assert decision.multipliers == {m: (0.5 if m == slowed else 1.0) for m in u}


@pytest.mark.parametrize(
    ("u", "slowed"),
    [({"a": 0.5, "b": 0.1}, "a"), ({"a": 0.1, "b": 0.5}, "b"), ({"a": 0.0, "b": -0.3}, "a")],
)
def test_otherwise_the_modality_with_the_larger_utilization_is_slowed(u, slowed):
    decision = miles_decision(u, tau=0.2, mu=0.25)
    assert (decision.branch, decision.slowed) == ("larger_utilization", slowed)
    assert decision.multipliers[slowed] == 0.25
    assert decision.message(1e-3).startswith(f"MILES slowed {slowed} to 2.50e-04")


def test_miles_slows_the_modality_whose_own_head_scores_higher():
    # u_A - u_B = (M(y_A) - M(y_B)) / M(y_fused): acting always slows the stronger head.
    u = conditional_utilization(0.9, {"audio": 0.45, "image": 0.85})
    assert miles_decision(u, tau=0.2, mu=0.5).slowed == "image"


@given(
    fused=st.floats(0.01, 1.0),
    a=st.floats(0.0, 1.0),
    b=st.floats(0.0, 1.0),
    tau=st.floats(0.0, 1.0),
    mu=st.floats(0.01, 1.0),
)
def test_an_action_always_slows_the_stronger_head_and_only_one_modality(fused, a, b, tau, mu):
    decision = miles_decision(conditional_utilization(fused, {"a": a, "b": b}), tau, mu)
    slowed = [m for m, f in decision.multipliers.items() if f != 1.0]
    assert len(slowed) <= 1
    if decision.slowed is not None:
        assert decision.slowed == ("a" if a > b else "b")
        assert decision.delta > tau
    assert all(f in (1.0, mu) for f in decision.multipliers.values())


def test_the_extension_slows_the_largest_utilization_unless_all_are_negative():
    decision = miles_decision({"a": 0.5, "b": 0.25, "c": 0.0}, tau=0.2, mu=0.5)
    assert (decision.branch, decision.slowed) == ("extension_slow", "a")
    assert miles_decision({"a": -0.5, "b": -0.25, "c": -0.01}, tau=0.2, mu=0.5).slowed is None
    assert miles_decision({"a": 0.3, "b": 0.25, "c": 0.2}, tau=0.2, mu=0.5).slowed is None


@pytest.mark.parametrize(("tau", "mu", "message"), [(-0.1, 0.5, "tau"), (1.5, 0.5, "tau"), (0.2, 0.0, "mu"), (0.2, 1.5, "mu")])
def test_out_of_range_hyperparameters_are_refused(tau, mu, message):
    with pytest.raises(ValueError, match=message):
        miles_decision({"a": 0.5, "b": 0.1}, tau, mu)


def _optimizer(base_lr: float) -> torch.optim.Optimizer:
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": base_lr} for _ in range(3)]
    return torch.optim.Adam(groups, lr=base_lr)


def test_the_scheduler_sets_the_rates_of_the_right_groups_and_never_touches_the_fusion_group():
    optimizer = _optimizer(1e-3)
    scheduler = MilesScheduler(optimizer, {"audio": 0, "image": 1}, base_lr=1e-3, tau=0.2, mu=0.5)
    decision = scheduler.step(0.9, {"audio": 0.45, "image": 0.85})
    assert decision.slowed == "image"
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 5e-4, 1e-3]
    assert scheduler.learning_rates == {"audio": 1e-3, "image": 5e-4}


def test_reductions_never_compound_and_only_one_modality_is_slowed():
    optimizer = _optimizer(1e-3)
    scheduler = MilesScheduler(optimizer, {"audio": 0, "image": 1}, base_lr=1e-3, tau=0.2, mu=0.5)
    scheduler.step(0.9, {"audio": 0.45, "image": 0.85})
    scheduler.step(0.9, {"audio": 0.45, "image": 0.85})
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 5e-4, 1e-3]  # mu * alpha, not mu^2 * alpha
    scheduler.step(0.9, {"audio": 0.85, "image": 0.45})  # the other modality now dominates
    assert [g["lr"] for g in optimizer.param_groups] == [5e-4, 1e-3, 1e-3]
    scheduler.step(0.9, {"audio": 0.8, "image": 0.75})  # balanced: both back at alpha
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 1e-3, 1e-3]
    assert scheduler.actions == {"audio": 1, "image": 2}


def test_the_scheduler_state_round_trips():
    optimizer = _optimizer(1e-3)
    scheduler = MilesScheduler(optimizer, {"audio": 0, "image": 1}, base_lr=1e-3, tau=0.2, mu=0.5)
    scheduler.step(0.9, {"audio": 0.45, "image": 0.85})
    copy = MilesScheduler(_optimizer(1e-3), {"audio": 0, "image": 1}, base_lr=1e-3, tau=0.2, mu=0.5)
    copy.load_state_dict(scheduler.state_dict())
    assert copy.actions == scheduler.actions
    assert copy.last == scheduler.last


def test_the_scheduler_refuses_groups_the_optimizer_does_not_have():
    with pytest.raises(ValueError, match="3 groups"):
        MilesScheduler(_optimizer(1e-3), {"audio": 0, "image": 5}, base_lr=1e-3, tau=0.2, mu=0.5)
