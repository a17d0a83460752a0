"""Presets: the paper's setting for each task as a starting point that every given field overrides."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from trainer.cli import train_command
from trainer.config import TrainConfig
from trainer.datasets import DatasetError
from trainer.presets import PRESETS
from trainer.spec import explain


def test_a_preset_gives_the_papers_encoders_epochs_and_miles():
    config = TrainConfig.model_validate({"preset": "cremad", "data_path": "cremad"})
    assert (config.dataset, config.epochs, config.method, config.fusion) == ("cremad", 200, "miles", "concat")
    assert config.model.encoders == {"audio": "resnet18", "visual": "resnet18"}
    assert (config.params["tau"], config.params["mu"]) == (0.2, 0.5)
    assert config.modalities == ["audio", "visual"] and config.preset == "cremad"


def test_fields_given_beside_a_preset_win_nested_ones_key_by_key():
    config = TrainConfig.model_validate({
        "preset": "smnist", "data_path": "smnist", "epochs": 3, "params": {"tau": 0.1},
        "model": {"encoders": {"audio": "resnet6"}}, "batch_size": None,
    })
    assert config.epochs == 3 and config.params["tau"] == 0.1 and config.params["mu"] == 0.5
    assert config.model.encoders == {"image": "resnet10", "audio": "resnet6"}
    assert config.batch_size == 64  # null takes the preset's value


def test_another_method_leaves_the_presets_miles_hyperparameters_out():
    config = TrainConfig.model_validate({"preset": "luma", "data_path": "luma", "method": "joint_aux"})
    assert config.method == "joint_aux" and config.params == {}


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_a_valid_run_of_its_dataset(name):
    config = TrainConfig.model_validate({"preset": name, "data_path": name})
    assert config.dataset == name and set(config.model.encoders) == set(config.modalities)


def test_an_unknown_preset_is_named_with_the_known_ones():
    with pytest.raises(ValidationError, match="unknown preset 'cifar'; allowed: cremad, smnist, luma, mmimdb"):
        TrainConfig.model_validate({"preset": "cifar"})


def test_mm_imdb_starts_from_pretrained_bert_base_and_imagenet_resnet50():
    config = TrainConfig.model_validate({"preset": "mmimdb", "data_path": "mmimdb"})
    assert config.model.pretrained == {"text": "bert-base-uncased", "image": "imagenet"}
    assert config.model.encoders == {"text": "bert", "image": "resnet50"}


def test_an_encoder_that_cannot_read_a_modality_is_refused_at_submission():
    with pytest.raises(ValidationError) as raised:
        TrainConfig.model_validate({"preset": "cremad", "data_path": "c", "model": {"encoders": {"visual": "bert"}}})
    assert [str(p) for p in explain(raised.value)] == [
        "model.encoders.visual: bert encodes token ids (text), not image inputs of shape (3, 224, 224)"
    ]
    with pytest.raises(ValidationError) as raised:
        TrainConfig.model_validate({"preset": "luma", "data_path": "l", "model": {"pretrained": {"image": "imagenet"}}})
    assert [p.field for p in explain(raised.value)] == ["model.pretrained.image"]
    assert "'imagenet' weights are published for resnet18 and resnet50 only" in str(raised.value)


def test_on_the_command_line_only_the_options_given_override_the_preset(monkeypatch):
    seen = {}

    def capture(config, **kwargs):
        seen["config"] = config
        raise DatasetError("captured")  # the spec is all this test needs; the CLI reports this and exits

    monkeypatch.setattr("trainer.loop.Training", capture)
    result = CliRunner().invoke(train_command, ["--preset", "cremad", "--data-path", "c", "--lr", "0.01",
                                                "--encoder", "visual=resnet6", "--tau", "0.3"])
    assert result.exit_code == 1 and "captured" in result.output
    config = seen["config"]
    assert (config.epochs, config.batch_size, config.lr) == (200, 64, 0.01)  # not the command's own defaults (30 epochs)
    assert config.model.encoders == {"audio": "resnet18", "visual": "resnet6"} and config.params["tau"] == 0.3
