"""``miles tune-lr`` end to end: a grid of rates for one modality alone, its table, and the record MSLR reads."""

from __future__ import annotations

import json
import subprocess

from tests.services import MILES
from tests.trainer.test_cli import SMALL, without_miles_settings
from trainer.config import TrainConfig
from trainer.tune_lr import Trial, best_trial


def tune(home, *args: str) -> subprocess.CompletedProcess[str]:
    env = without_miles_settings(MILES_HOME=str(home))
    return subprocess.run([MILES, "tune-lr", *SMALL, *args], capture_output=True, text=True, timeout=180, env=env)


def test_tune_lr_prints_the_table_and_records_the_best_rate_where_mslr_takes_it(tmp_path, monkeypatch):
    for modality in ("strong", "weak"):
        done = tune(tmp_path, "--modality", modality, "--lrs", "1e-5,1e-2", "--epochs", "2")
        assert done.returncode == 0, done.stderr
        assert "val accuracy" in done.stdout and "<- best" in done.stdout
        assert "epoch" in done.stderr  # the progress bar
    record = json.loads((tmp_path / "tuned_lrs.json").read_text())["synthetic"]
    # 1e-5 barely moves the weights in two epochs; the strong signal at 1e-2 is learned.
    assert record["strong"]["lr"] == 1e-2 and set(record["strong"]["table"]) == {"1e-05", "0.01"}
    unrecorded = tune(tmp_path, "--modality", "strong", "--lrs", "1e-4", "--epochs", "1", "--no-record")
    assert "best learning rate for strong on synthetic: 0.0001" in unrecorded.stdout
    assert json.loads((tmp_path / "tuned_lrs.json").read_text())["synthetic"] == record
    monkeypatch.setenv("MILES_HOME", str(tmp_path))
    config = TrainConfig.model_validate({"dataset": "synthetic", "method": "mslr_keep"})
    assert config.params["lrs"] == {"strong": record["strong"]["lr"], "weak": record["weak"]["lr"]}


def test_bad_rates_and_unknown_modalities_are_named():
    done = subprocess.run([MILES, "tune-lr", *SMALL, "--modality", "strong", "--lrs", "0.1,2"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--lrs" in done.stderr and "0 < lr <= 1" in done.stderr
    done = subprocess.run([MILES, "tune-lr", *SMALL, "--modality", "loud"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "modalities" in done.stderr and "'loud' not in dataset 'synthetic'" in done.stderr


def test_the_best_rate_is_chosen_on_validation_and_a_tie_goes_to_the_smaller_rate():
    trials = [Trial(1e-3, 0.9, 3), Trial(1e-2, 0.9, 2), Trial(1e-4, 0.5, 5)]
    assert best_trial(trials).lr == 1e-3


def test_tune_lr_trains_the_modality_with_its_deeper_encoder_and_records_the_depth(tmp_path):
    done = tune(tmp_path, "--modality", "strong", "--lrs", "1e-3", "--epochs", "1", "--depth", "3")
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "tuned_lrs.json").read_text())["synthetic"]["strong"]["depth"] == 3
    done = tune(tmp_path, "--modality", "strong", "--lrs", "1e-3", "--depth", "9")
    assert done.returncode == 2 and "model.depths.strong: must satisfy 0 <= depth <= 8" in done.stderr


def test_rates_tuned_with_sgd_are_recorded_as_sgds_and_taken_only_by_sgd_runs(tmp_path, monkeypatch):
    for modality in ("strong", "weak"):
        done = tune(tmp_path, "--modality", modality, "--lrs", "1e-3,0.05", "--epochs", "1", "--optimizer", "sgd", "--momentum", "0.5")
        assert done.returncode == 0, done.stderr
    record = json.loads((tmp_path / "tuned_lrs.json").read_text())["synthetic"]
    assert {record[m]["optimizer"] for m in ("strong", "weak")} == {"sgd"}
    monkeypatch.setenv("MILES_HOME", str(tmp_path))
    config = TrainConfig.model_validate({"dataset": "synthetic", "method": "mslr_keep", "optimizer": "sgd"})
    assert config.params["lrs"] == {"strong": record["strong"]["lr"], "weak": record["weak"]["lr"]}
    done = subprocess.run([MILES, "tune-lr", *SMALL, "--modality", "strong", "--optimizer", "rmsprop"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--optimizer" in done.stderr and "'adam', 'sgd'" in done.stderr
