"""``miles train`` end to end, as a user runs it."""

from __future__ import annotations

import json
import subprocess

from tests.services import MILES

SMALL = [
    "--dataset", "synthetic", "--dataset-param", "train_size=200", "--dataset-param", "val_size=50",
    "--dataset-param", "test_size=50", "--batch-size", "32", "--device", "cpu",
]


def miles(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MILES, "train", *args], capture_output=True, text=True, timeout=120)


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
