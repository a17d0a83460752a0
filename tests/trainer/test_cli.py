"""``miles train`` end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.services import MILES

SMALL = [
    "--dataset", "synthetic", "--dataset-param", "train_size=200", "--dataset-param", "val_size=50",
    "--dataset-param", "test_size=50", "--batch-size", "32", "--device", "cpu",
]


def miles(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MILES, "train", *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd)


def without_miles_settings(**settings: str) -> dict[str, str]:
    """This environment without the developer's MILES_* variables, plus ``settings``."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MILES_")} | settings


def test_a_small_run_prints_progress_and_a_table_and_writes_json_lines(tmp_path):
    out = tmp_path / "run.jsonl"
    done = miles(*SMALL, "--method", "miles", "--tau", "0.05", "--mu", "0.5", "--epochs", "3", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "epoch 3/3" in done.stderr  # the line per epoch, beside the progress bar
    assert "loss train " in done.stderr and " val " in done.stderr  # which loss is which, said
    assert "fused" in done.stdout and "strong" in done.stdout and "weak" in done.stdout
    assert "MILES acted in" in done.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    epochs = [line["epoch"] for line in lines if "epoch" in line]
    assert epochs == [1, 2, 3], "one epoch record per epoch trained, test metrics apart"
    tests = [line["test"] for line in lines if "test" in line]
    assert tests and tests[0]["epoch"] == 3 and "metric/test/fused" in tests[0]["metrics"]
    assert any(line.get("event", {}).get("kind") == "miles.decision" for line in lines)
    summary = lines[-1]["summary"]
    assert {"best_epoch", "metric/test/fused", "metric/test/strong", "metric/test/weak"} <= set(summary)


def test_a_run_resumes_from_its_checkpoint_directory(tmp_path):
    checkpoints = tmp_path / "ckpt"
    first = miles(*SMALL, "--epochs", "2", "--checkpoint-dir", str(checkpoints))
    assert first.returncode == 0, first.stderr
    resumed = miles("--resume", str(checkpoints), "--epochs", "3")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed after epoch 2" in resumed.stderr
    assert "best validation epoch" in resumed.stdout and "of 3" in resumed.stdout


def test_bad_values_are_reported_by_field_without_a_traceback():
    done = miles(*SMALL, "--lr", "3", "--tau", "2", "--epochs", "0")
    assert done.returncode == 2
    assert "lr: must satisfy 0 < lr <= 1" in done.stderr
    assert "params.tau: must satisfy 0 <= tau <= 1" in done.stderr
    assert "epochs: must satisfy 1 <= epochs <= 1000" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_data_is_reported_plainly(tmp_path):
    done = miles("--dataset", "folder", "--data-path", str(tmp_path / "none"), "--epochs", "1")
    assert done.returncode == 1
    assert "is not a directory" in done.stderr and "Traceback" not in done.stderr


def test_datasets_are_read_under_miles_home_by_default_as_the_settings_table_says(tmp_path):
    done = miles("--dataset", "avdigits", "--epochs", "1", env=without_miles_settings(MILES_HOME=str(tmp_path / "home")),
                 cwd=tmp_path)
    assert done.returncode == 1
    assert f"under MILES_DATA_DIR ({tmp_path / 'home' / 'data'})" in done.stderr


def test_the_data_directory_may_be_set_in_a_dot_env_file(tmp_path):
    (tmp_path / ".env").write_text(f"MILES_DATA_DIR={tmp_path / 'digits'}\n")
    done = miles("--dataset", "avdigits", "--epochs", "1", env=without_miles_settings(), cwd=tmp_path)
    assert done.returncode == 1
    assert f"under MILES_DATA_DIR ({tmp_path / 'digits'})" in done.stderr


def test_a_relative_data_path_is_read_from_the_working_directory(tmp_path):
    (tmp_path / "mine").mkdir()
    done = miles("--dataset", "folder", "--data-path", "mine", "--epochs", "1",
                 env=without_miles_settings(MILES_DATA_DIR=str(tmp_path / "root")), cwd=tmp_path)
    assert done.returncode == 1 and f"{tmp_path / 'mine'} is missing train.npz" in done.stderr


def test_an_mses_run_says_what_it_froze_and_when():
    done = miles(*SMALL, "--method", "mses", "--param", "patience=1", "--epochs", "30")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if line.startswith("MSES froze"))
    assert all(group in line for group in ("strong", "weak", "fusion")), line


def test_a_depth_is_given_per_modality_and_a_bad_one_is_named_by_field():
    done = miles(*SMALL, "--depth", "strong=9", "--depth", "weak=2")
    assert done.returncode == 2
    assert "model.depths.strong: must satisfy 0 <= depth <= 8 for the mlp encoder" in done.stderr
    assert "model.depths.weak" not in done.stderr
    done = miles(*SMALL, "--depth", "strong=deep")
    assert done.returncode == 2 and "expected MODALITY=N, N a whole number of layers, e.g. pix=4" in done.stderr


def test_the_optimizer_and_its_momentum_reach_the_spec_and_a_bad_momentum_is_named(tmp_path):
    import torch

    from trainer.checkpoint import LAST

    done = miles(*SMALL, "--method", "joint", "--epochs", "1", "--optimizer", "sgd", "--momentum", "0.5", "--lr", "0.05",
                 "--checkpoint-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    state = torch.load(tmp_path / LAST, weights_only=False)
    assert (state["config"]["optimizer"], state["config"]["momentum"], state["config"]["lr"]) == ("sgd", 0.5, 0.05)
    assert {group["momentum"] for group in state["optimizer"]["param_groups"]} == {0.5}  # SGD's state, not Adam's
    done = miles(*SMALL, "--optimizer", "sgd", "--momentum", "1.5")
    assert done.returncode == 2 and "momentum: must satisfy 0 <= momentum < 1 (got 1.5)" in done.stderr
