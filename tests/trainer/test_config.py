"""TrainConfig: defaults per dataset and method, and errors that name the field and what is allowed."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from trainer.config import ModelConfig, TrainConfig
from trainer.spec import explain


def errors_of(**spec) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        TrainConfig.model_validate(spec)
    return {e.field: e.message for e in explain(caught.value)}


def test_defaults_fill_the_dataset_pair_and_the_method_hyperparameters():
    config = TrainConfig(dataset="mfeat")
    assert config.modalities == ["pix", "fou"]
    assert config.method == "miles"
    assert config.params == {"tau": 0.2, "mu": 0.5, "utilization_split": "val"}
    assert config.device == "auto"


def test_the_spec_round_trips_through_json():
    config = TrainConfig(dataset="synthetic", method="joint", epochs=3)
    assert TrainConfig.model_validate_json(config.model_dump_json()) == config


@pytest.mark.parametrize(
    ("spec", "field", "fragment"),
    [
        ({"epochs": 0}, "epochs", "1 <= epochs <= 1000"),
        ({"epochs": 1001}, "epochs", "1 <= epochs <= 1000"),
        ({"batch_size": 5000}, "batch_size", "1 <= batch_size <= 4096"),
        ({"lr": 0}, "lr", "0 < lr <= 1"),
        ({"lr": 1.5}, "lr", "0 < lr <= 1"),
        ({"params": {"tau": 1.2}}, "params.tau", "0 <= tau <= 1"),
        ({"params": {"mu": 0}}, "params.mu", "0 < mu <= 1"),
        ({"params": {"utilization_split": "test"}}, "params.utilization_split", "'val', 'train' or 'train_running'"),
        ({"fusion": "mean"}, "fusion", "'concat', 'sum', 'film' or 'gated'"),
        ({"device": "tpu"}, "device", "'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ({"model": {"cnn_depth": 9}}, "model.cnn_depth", "1 <= cnn_depth <= 6"),
    ],
)
def test_out_of_range_values_name_the_field_and_the_allowed_range(spec, field, fragment):
    errors = errors_of(dataset="mfeat", **spec)
    assert fragment in errors[field]


def test_unknown_fields_are_rejected_with_the_allowed_ones():
    errors = errors_of(dataset="mfeat", learning_rate=0.1, params={"gamma": 1})
    assert "allowed fields" in errors["learning_rate"] and "lr" in errors["learning_rate"]
    assert "tau, mu, utilization_split" in errors["params.gamma"]


def test_methods_without_hyperparameters_refuse_any():
    assert "params.tau" in errors_of(dataset="mfeat", method="joint", params={"tau": 0.2})


def test_unknown_dataset_and_method_list_the_known_ones():
    assert "mfeat, avdigits, synthetic, folder" in errors_of(dataset="cifar")["dataset"]
    assert "joint, joint_aux, miles" in errors_of(dataset="mfeat", method="mmpareto")["method"]


def test_modalities_must_exist_be_distinct_and_at_least_two():
    assert "available: fac, fou, kar, mor, pix, zer" in errors_of(dataset="mfeat", modalities=["pix", "rgb"])["modalities"]
    assert "at least two" in errors_of(dataset="mfeat", modalities=["pix"])["modalities"]
    assert "only once" in errors_of(dataset="mfeat", modalities=["pix", "pix"])["modalities"]


def test_data_path_is_only_for_datasets_read_from_disk():
    assert "avdigits, folder" in errors_of(dataset="mfeat", data_path="x")["data_path"]
    assert "needs data_path" in errors_of(dataset="folder")["data_path"]
    assert TrainConfig(dataset="folder", data_path="mine").modalities is None  # known once the files are read


def test_dataset_options_are_validated_by_the_dataset():
    errors = errors_of(dataset="synthetic", dataset_params={"dim": 0, "signals": {"a": -1}})
    assert "1 <= dim <= 4096" in errors["dataset_params.dim"]
    assert "0 <= signal <= 100" in errors["dataset_params.signals"]
    config = TrainConfig(dataset="synthetic", dataset_params={"signals": {"x": 1, "y": 2, "z": 3}})
    assert config.modalities == ["x", "y", "z"]


@pytest.mark.parametrize(
    ("depths", "encoders", "fragment"),
    [
        ({"zz": 3}, {}, "'zz' not in dataset 'mfeat'; available: fac, fou, kar, mor, pix, zer"),
        ({"pix": 9}, {}, "must satisfy 0 <= depth <= 8 for the mlp encoder (its model.mlp_layers; got 9)"),
        ({"pix": -1}, {}, "must satisfy 0 <= depth <= 8"),
        ({"pix": 2}, {"pix": "resnet18"}, "encoder resnet18 has no depth setting; model.depths applies to the mlp and cnn encoders"),
    ],
)
def test_a_modality_depth_names_its_field_and_what_is_allowed(depths, encoders, fragment):
    errors = errors_of(dataset="mfeat", model={"depths": depths, "encoders": encoders})
    (modality,) = depths
    assert fragment in errors[f"model.depths.{modality}"]


def test_a_cnn_depth_is_checked_against_the_cnn_range_before_the_dataset_is_known():
    with pytest.raises(ValidationError) as caught:
        ModelConfig.model_validate({"encoders": {"image": "cnn"}, "depths": {"image": 0}})
    assert {e.field: e.message for e in explain(caught.value)} == {
        "depths.image": "must satisfy 1 <= depth <= 6 for the cnn encoder (its model.cnn_depth; got 0)"
    }


def test_a_spec_without_depths_is_written_as_before_the_field_existed():
    assert "depths" not in TrainConfig(dataset="mfeat").model_dump(mode="json")["model"]
    deeper = TrainConfig.model_validate({"dataset": "mfeat", "model": {"depths": {"pix": 4}}})
    assert deeper.model_dump(mode="json")["model"]["depths"] == {"pix": 4}
    assert TrainConfig.model_validate_json(deeper.model_dump_json()) == deeper


def test_momentum_is_sgds_its_default_is_recorded_and_adam_specs_read_as_before():
    sgd = TrainConfig.model_validate({"dataset": "synthetic", "optimizer": "sgd"})
    assert sgd.momentum == 0.9 and sgd.model_dump()["momentum"] == 0.9 and sgd.model_dump()["optimizer"] == "sgd"
    adam = TrainConfig.model_validate({"dataset": "synthetic"}).model_dump()
    assert "optimizer" not in adam and "momentum" not in adam  # as every spec written before the fields
    with pytest.raises(ValidationError) as caught:
        TrainConfig.model_validate({"dataset": "synthetic", "momentum": 0.5})
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [
        (("momentum",), "only SGD has a momentum; with optimizer 'adam' leave it out")
    ]
