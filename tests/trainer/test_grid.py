"""A grid expands into one validated TrainConfig per cell, and names every bad field where it was written."""

from __future__ import annotations

import pytest
from pydantic import ValidationError, model_validator

from trainer import grid as grid_module
from trainer.config import TrainConfig
from trainer.grid import MAX_CELLS, Grid
from trainer.methods import METHODS, MethodSpec, NoParams
from trainer.spec import explain, field_error

BASE = {"dataset": "mfeat", "modalities": ["pix", "fou"], "epochs": 3}


def errors_of(**grid) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        Grid.model_validate(grid)
    return {e.field: e.message for e in explain(caught.value)}


@pytest.fixture
def solo(monkeypatch: pytest.MonkeyPatch) -> str:
    """A catalogue entry of a method that trains one modality alone, as `unimodal` does."""
    monkeypatch.setitem(METHODS, "solo", MethodSpec("solo", "Solo", "One modality alone.", NoParams, "none:None", single_modality=True))
    return "solo"


def test_methods_fusions_and_seeds_expand_in_order_with_a_key_per_cell():
    cells = Grid(config=BASE, methods=["joint", "miles"], fusions=["concat", "sum"], seeds=[0, 1]).cells
    assert [c.key for c in cells] == [
        "joint/concat/seed0", "joint/concat/seed1", "joint/sum/seed0", "joint/sum/seed1",
        "miles/concat/seed0", "miles/concat/seed1", "miles/sum/seed0", "miles/sum/seed1",
    ]
    assert [(c.config.method, c.config.fusion, c.config.seed) for c in cells[-2:]] == [("miles", "sum", 0), ("miles", "sum", 1)]
    assert cells[0].label == "joint · concat · seed 0"


def test_the_same_grid_expands_to_the_same_cells_every_time():
    spec = {"config": BASE, "methods": ["joint_aux", "miles"], "fusions": ["sum"], "seeds": [2, 0]}
    first, again = Grid.model_validate(spec).cells, Grid.model_validate(spec).cells
    assert [(c.key, c.config) for c in first] == [(c.key, c.config) for c in again]
    assert len({c.key for c in first}) == len(first) == 4


def test_common_settings_reach_every_cell_and_params_only_their_method():
    cells = Grid(
        config=BASE | {"lr": 0.003, "batch_size": 32, "model": {"embed_dim": 16}},
        methods=["joint", "miles"], params={"miles": {"tau": 0.05}},
    ).cells
    assert {(c.config.lr, c.config.batch_size, c.config.epochs, c.config.model.embed_dim) for c in cells} == {(0.003, 32, 3, 16)}
    assert cells[0].config.params == {}
    assert cells[1].config.params == {"tau": 0.05, "mu": 0.5, "utilization_split": "val"}


def test_the_dataset_default_pair_is_filled_in_when_modalities_are_not_given():
    (cell,) = Grid(config={"dataset": "mfeat"}, methods=["joint"]).cells
    assert cell.config.modalities == ["pix", "fou"]


def test_cells_of_one_seed_do_not_share_nested_settings_with_another():
    first, second = Grid(config=BASE, methods=["miles"], seeds=[0, 1]).cells
    first.config.params["tau"] = 0.9
    assert second.config.params["tau"] == 0.2


def test_a_method_of_one_modality_runs_once_per_modality_of_the_pair_and_not_per_fusion(solo: str):
    cells = Grid(config=BASE, methods=[solo, "joint"], fusions=["concat", "sum"], seeds=[0, 1]).cells
    assert [c.key for c in cells] == [
        "solo/pix/seed0", "solo/pix/seed1", "solo/fou/seed0", "solo/fou/seed1",
        "joint/concat/seed0", "joint/concat/seed1", "joint/sum/seed0", "joint/sum/seed1",
    ]
    assert [c.config.modalities for c in cells[:4]] == [["pix"], ["pix"], ["fou"], ["fou"]]
    assert {(c.fusion, c.modality) for c in cells[:4]} == {(None, "pix"), (None, "fou")}


def test_a_run_of_a_method_of_one_modality_names_exactly_one(solo: str):
    assert TrainConfig(dataset="mfeat", modalities=["fou"], method=solo).modalities == ["fou"]
    with pytest.raises(ValidationError, match="method 'solo' trains one modality alone: name exactly one"):
        TrainConfig(dataset="mfeat", modalities=["pix", "fou"], method=solo)


def test_every_problem_is_named_at_once_where_it_was_written():
    errors = errors_of(
        config=BASE | {"epochs": 0}, methods=["joint", "nope"], fusions=["concat", "mean"], seeds=[1, -1],
        params={"joint": {"x": 1}},
    )
    assert errors == {
        "methods.1": "unknown method 'nope'; allowed: " + ", ".join(METHODS),
        "fusions.1": "unknown fusion 'mean'; allowed: concat, sum, film, gated",
        "seeds": "must satisfy 0 <= seed <= 2147483647 (got -1)",
        "params.joint.x": "unknown field; allowed fields: none",
        "config.epochs": "must satisfy 1 <= epochs <= 1000 (got 0)",
    }


def test_a_repeated_method_fusion_or_seed_is_an_error():
    errors = errors_of(config=BASE, methods=["joint", "joint"], fusions=["sum", "sum"], seeds=[2, 2])
    assert errors == {
        "methods": "'joint' appears more than once; name each method once",
        "fusions": "'sum' appears more than once; name each fusion once",
        "seeds": "2 appears more than once; name each seed once",
    }


def test_common_settings_and_params_are_named_once_not_per_cell():
    errors = errors_of(
        config=BASE | {"epochs": 0, "seed": 4}, methods=["joint", "miles"], fusions=["concat", "sum"], seeds=[0, 1, 2],
        params={"miles": {"tau": 3}, "joint_aux": {}},
    )
    assert errors == {
        "config.seed": "is set per cell by the grid: give it as seeds",
        "params.joint_aux": "method 'joint_aux' is not among the grid's methods (joint, miles)",
        "params.miles.tau": "must satisfy 0 <= tau <= 1 (got 3)",
        "config.epochs": "must satisfy 1 <= epochs <= 1000 (got 0)",
    }


def test_a_problem_of_one_combination_names_its_cell(monkeypatch: pytest.MonkeyPatch):
    class NoJointFilm(TrainConfig):
        @model_validator(mode="after")
        def _refuse(self) -> NoJointFilm:
            if self.method == "joint" and self.fusion == "film":
                raise field_error("TrainConfig", "fusion", self.fusion, "joint refuses film here")
            return self

    monkeypatch.setattr(grid_module, "TrainConfig", NoJointFilm)
    errors = errors_of(config=BASE, methods=["joint", "miles"], fusions=["concat", "film"], seeds=[0, 1, 2])
    assert errors == {"cells.joint/film.fusion": "joint refuses film here"}  # once, not once per seed


def test_a_grid_of_more_cells_than_allowed_is_refused():
    errors = errors_of(config=BASE, methods=["joint", "joint_aux", "miles"], fusions=["concat", "sum", "film", "gated"],
                       seeds=list(range(100)))
    assert errors == {"seeds": f"the grid has 1200 cells, more than the {MAX_CELLS} allowed; name fewer methods, fusions or seeds"}


def test_the_common_settings_need_a_dataset():
    assert errors_of(config={"epochs": 2}, methods=["joint"]) == {"config.dataset": "Field required"}
