"""A sweep as asked for, checked against the catalogue: spaces per method, budgets, the paper preset, the objective."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.settings import Settings
from server.store.errors import Invalid
from server.sweeps.objective import Objective
from server.sweeps.space import Dimension, paper_space
from server.sweeps.spec import SweepCreate, plan

BASE = {"dataset": "mfeat", "modalities": ["pix", "fou"], "epochs": 5}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'x.db'}", auth="off", max_epochs=100)


def planned(settings: Settings, **fields: Any):
    return plan(SweepCreate.model_validate({"config": BASE, "methods": ["miles"], **fields}), settings)


def problems(settings: Settings, **fields: Any) -> dict[str, str]:
    with pytest.raises(Invalid) as refused:
        planned(settings, **fields)
    return {problem.field: problem.message for problem in refused.value.errors}


def test_a_hyperparameter_is_searched_only_for_the_methods_that_have_it(settings):
    sweep = planned(settings, methods=["miles", "joint"], space={
        "lr": {"low": 1e-4, "high": 1e-2, "log": True}, "params.tau": {"low": 0.0, "high": 0.5},
    })
    assert set(sweep.spaces["miles"]) == {"lr", "params.tau"}
    assert set(sweep.spaces["joint"]) == {"lr"}
    assert sweep.kinds["miles"] == {"lr": "float", "params.tau": "float"}


def test_the_budget_counts_trials_per_method(settings):
    sweep = planned(settings, methods=["miles", "joint"], space={"lr": {"low": 1e-4, "high": 1e-2}}, budget=7)
    assert sweep.budgets == {"miles": 7, "joint": 7} and sweep.total_budget == 14


def test_every_end_of_a_range_and_every_choice_must_be_a_valid_value(settings):
    found = problems(settings, space={
        "lr": {"low": 0.0, "high": 2.0}, "params.mu": {"choices": [0.5, 0.0]}, "epochs": {"low": 1, "high": 500},
    })
    assert found["space.lr.low"] == "must satisfy 0 < lr <= 1 (got 0.0)"
    assert found["space.lr.high"] == "must satisfy 0 < lr <= 1 (got 2.0)"
    assert found["space.params.mu.choices.1"] == "must satisfy 0 < mu <= 1 (got 0.0)"
    assert "MILES_MAX_EPOCHS" in found["space.epochs.high"]


def test_an_unknown_field_is_refused_with_the_fields_that_can_be_searched(settings):
    found = problems(settings, methods=["joint"], space={"params.tau": {"low": 0.0, "high": 0.5}})
    message = found["space.params.tau"]
    assert message.startswith("is not a field a sweep can search for joint; allowed: ")
    assert "lr" in message and "model.dropout" in message and "params.tau" not in message


def test_choice_fields_need_choices_and_integer_fields_whole_ends(settings):
    found = problems(settings, space={"fusion": {"low": 0.0, "high": 1.0}, "batch_size": {"low": 16.5, "high": 64}})
    assert found["space.fusion"] == "takes one of 'concat', 'sum', 'film', 'gated': give choices, not a range"
    assert found["space.batch_size"] == "is an integer field: low, high and step must be whole numbers"


def test_a_dimension_is_a_range_or_choices_never_both():
    with pytest.raises(ValueError, match="either choices or a range"):
        Dimension(low=0, high=1, choices=[1])
    with pytest.raises(ValueError, match="low and high"):
        Dimension(low=0)
    with pytest.raises(ValueError, match="log range needs low > 0"):
        Dimension(low=0, high=1, log=True)


def test_a_grid_budget_is_its_grid_and_every_dimension_must_be_enumerable(settings):
    sweep = planned(settings, sampler="grid", space={
        "batch_size": {"choices": [32, 64]}, "params.tau": {"low": 0.1, "high": 0.3, "step": 0.1},
        "model.mlp_layers": {"low": 0, "high": 2},
    })
    assert sweep.budgets == {"miles": 2 * 3 * 3}
    assert problems(settings, sampler="grid", space={"lr": {"low": 1e-4, "high": 1e-2}}) == {
        "space.lr": "a grid needs values to enumerate: choices, or a range with a step (integers step by 1)",
    }
    assert "is its grid (miles 2 combinations)" in problems(
        settings, sampler="grid", budget=5, space={"batch_size": {"choices": [32, 64]}},
    )["budget"]


def test_the_paper_preset_searches_lr_and_each_numeric_hyperparameter_then_reruns_five_seeds(settings):
    sweep = planned(settings, methods=["miles", "joint"], preset="paper")
    assert (sweep.sampler, sweep.budgets, sweep.seeds_for_best) == ("random", {"miles": 80, "joint": 80}, 5)
    assert sweep.spaces["joint"] == {"lr": Dimension(low=1e-4, high=1e-2, log=True)}
    miles = sweep.spaces["miles"]
    assert set(miles) == {"lr", "params.tau", "params.mu"}  # utilization_split is a choice: left at its default
    assert (miles["params.tau"].low, miles["params.tau"].high) == (0.0, 1.0)  # 0 <= tau <= 1
    assert (miles["params.mu"].low, miles["params.mu"].high) == (pytest.approx(0.01), 1.0)  # 0 < mu <= 1


def test_what_is_given_explicitly_wins_over_the_preset(settings):
    sweep = planned(settings, preset="paper", budget=8, seeds_for_best=2, space={"params.tau": {"choices": [0.2]}})
    assert sweep.budgets == {"miles": 8} and sweep.seeds_for_best == 2
    assert sweep.spaces["miles"]["params.tau"] == Dimension(choices=[0.2])


def test_the_preset_reads_a_methods_schema_for_bounds_it_does_not_know_by_name():
    space = paper_space("mfeat", "miles")
    assert set(space) == {"lr", "params.tau", "params.mu"}
    assert space["params.tau"] == Dimension(low=0.0, high=1.0)


def test_the_method_and_its_params_are_the_sweeps_own_fields(settings):
    found = problems(settings, config={**BASE, "method": "joint"}, params={"joint": {}})
    assert "name the methods in 'methods'" in found["config.method"]
    assert found["params.joint"] == "is not one of the sweep's methods (miles)"


def test_a_fixed_hyperparameter_is_checked_by_its_method(settings):
    assert problems(settings, params={"miles": {"tau": 3}}, space={"lr": {"low": 1e-4, "high": 1e-2}}) == {
        "params.miles.tau": "must satisfy 0 <= tau <= 1 (got 3)",
    }


def test_parallelism_is_bounded_by_the_active_runs_a_token_may_have(settings):
    found = problems(settings, parallelism=50, space={"lr": {"low": 1e-4, "high": 1e-2}})
    assert "MILES_MAX_ACTIVE_RUNS" in found["parallelism"]


def test_a_trial_never_evaluates_test_and_a_rerun_of_the_best_does_on_a_new_seed(settings):
    sweep = planned(settings, space={"lr": {"low": 1e-4, "high": 1e-2}}, seeds_for_best=2)
    trial = sweep.run_config("miles", {"lr": 0.003, "params.tau": 0.4})
    assert trial["evaluate_test"] is False and trial["lr"] == 0.003 and trial["params"]["tau"] == 0.4
    assert trial["seed"] == 0 and sweep.best_seeds == [1, 2]
    rerun = sweep.run_config("miles", {"lr": 0.003}, seed=2)
    assert rerun["evaluate_test"] is True and rerun["seed"] == 2


# -- the objective --------------------------------------------------------------------------------

SUMMARY = {"metric/val/fused": 0.9, "metric/val/pix": 0.8, "metric/val/fou": 0.6, "metric/test/fused": 0.99}


def test_the_default_objective_is_the_fused_heads_validation_metric():
    assert Objective().value(SUMMARY, ["pix", "fou"]) == 0.9


def test_the_weak_objective_is_the_lowest_modality_head():
    assert Objective(kind="weak").value(SUMMARY, ["pix", "fou"]) == 0.6


def test_a_weighted_objective_sums_heads_and_never_reads_test():
    objective = Objective(kind="weighted", weights={"fused": 0.5, "weak": 0.5})
    assert objective.value(SUMMARY, ["pix", "fou"]) == pytest.approx(0.5 * 0.9 + 0.5 * 0.6)
    assert objective.keys(["pix", "fou"]) == ["metric/val/fou", "metric/val/fused", "metric/val/pix"]


def test_a_missing_head_gives_no_objective():
    assert Objective(kind="weak").value({"metric/val/fused": 0.9, "metric/val/pix": 0.8}, ["pix", "fou"]) is None


def test_a_weighted_objective_names_unknown_heads(settings):
    found = problems(settings, space={"lr": {"low": 1e-4, "high": 1e-2}},
                     objective={"kind": "weighted", "weights": {"fused": 1, "audio": 1}})
    assert found["objective.weights.audio"] == "is not a head of these runs; heads: fused, weak, pix, fou"


def test_the_optimizer_is_searched_as_choices_and_sgds_momentum_only_with_sgd(settings):
    assert planned(settings, space={"optimizer": {"choices": ["adam", "sgd"]}}).kinds["miles"] == {"optimizer": "enum"}
    assert problems(settings, space={"momentum": {"low": 0.5, "high": 0.95}}) == {
        "space.momentum.low": "only SGD has a momentum; with optimizer 'adam' leave it out",
        "space.momentum.high": "only SGD has a momentum; with optimizer 'adam' leave it out",
    }
    sgd = plan(SweepCreate.model_validate({
        "config": BASE | {"optimizer": "sgd"}, "methods": ["miles"], "space": {"momentum": {"low": 0.5, "high": 0.95}},
    }), settings)
    assert sgd.kinds["miles"] == {"momentum": "float"}
    assert sgd.run_config("miles", {"momentum": 0.7})["momentum"] == 0.7
