"""``miles data prepare`` and ``miles train --preset`` on each release's fixture, as a user runs them."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess

import pytest

from tests.conftest import need
from tests.services import MILES
from tests.trainer.datasets.releases import (
    write_cremad,
    write_luma,
    write_mmimdb,
    write_smnist,
    write_tiny_bert,
)
from trainer.datasets import cremad, luma, mmimdb, smnist
from trainer.datasets.preparation import prepare

pytestmark = pytest.mark.slow


def miles(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MILES, *args], capture_output=True, text=True, timeout=timeout)


def train(folder, preset: str, out, *extra: str) -> dict:
    """``miles train --preset`` for two short epochs with MILES; the run's JSON lines."""
    done = miles("train", "--preset", preset, "--data-path", str(folder), "--epochs", "2", "--batch-size", "8",
                 "--device", "cpu", "--tau", "0.0", "--out", str(out), *extra)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MILES acted in" in done.stdout and "best validation epoch" in done.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["epoch"] for line in lines if "epoch" in line][:2] == [1, 2]
    assert any(line.get("event", {}).get("kind") == "miles.decision" for line in lines)
    return lines[-1]["summary"]


def test_prepare_shows_progress_writes_the_folder_and_says_how_to_train_it(tmp_path):
    source = write_smnist(tmp_path / "release")
    done = miles("data", "prepare", "smnist", "--source", str(source), "--dest", str(tmp_path / "smnist"),
                 "--option", "train_size=20", "--option", "val_size=10", "--option", "test_size=10", "--workers", "1")
    assert done.returncode == 0, done.stderr
    assert "preparing smnist" in done.stderr and "40/40" in done.stderr  # the progress bar over samples
    assert "20 train / 10 val / 10 test; image 1x28x28 image, audio 1x28x28 spectrogram" in done.stdout
    assert f"train it: miles train --preset smnist --data-path {tmp_path / 'smnist'}" in done.stdout
    assert miles("data", "verify", str(tmp_path / "smnist")).returncode == 0
    again = miles("data", "prepare", "smnist", "--source", str(source), "--dest", str(tmp_path / "smnist"),
                  "--option", "train_size=30", "--option", "val_size=10", "--option", "test_size=10")
    assert again.returncode == 1 and "One folder holds one preparation" in again.stderr and "Traceback" not in again.stderr


def test_ctrl_c_stops_a_preparation_that_the_same_command_then_continues(tmp_path):
    source = write_smnist(tmp_path / "release")
    command = [MILES, "data", "prepare", "smnist", "--source", str(source), "--dest", str(tmp_path / "smnist"),
               "--option", "train_size=3200", "--option", "val_size=400", "--option", "test_size=400", "--workers", "2"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True)
    seen = ""
    # 4,000 samples, so that on an idle machine (about 700 a second) the command is still running when
    # the interrupt arrives. At least two chunks of 256 samples are done (the bar may skip a redraw on a busy
    # machine), so both worker processes have started and ignore SIGINT: one still starting when the
    # interrupt reaches the process group would die of it before its initializer runs.
    while not any(int(done) >= 512 for done in re.findall(r"(\d+)/4000 \[", seen)):
        character = process.stderr.read(1)
        assert character, f"prepare ended before its first chunk: {seen[-2000:]}"
        seen += character
    os.killpg(process.pid, signal.SIGINT)  # as Ctrl-C in a terminal: to the command and its worker processes
    rest = process.stderr.read()
    assert process.wait(timeout=120) == 130, rest
    assert "stopped; run the same command again to continue" in rest and "Traceback" not in rest
    assert not (tmp_path / "smnist" / "manifest.json").exists()
    again = miles(*command[1:])
    assert again.returncode == 0, again.stderr
    started = re.search(r"(\d+)/4000 \[", again.stderr)
    assert started and int(started.group(1)) >= 256, "the second run started from nothing"
    assert miles("data", "verify", str(tmp_path / "smnist")).returncode == 0


def test_prepare_reports_a_wrong_layout_and_a_bad_option_without_a_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    done = miles("data", "prepare", "cremad", "--source", str(tmp_path / "empty"), "--dest", str(tmp_path / "out"))
    assert done.returncode == 1 and "missing:" in done.stderr and "AudioWAV/" in done.stderr and "Traceback" not in done.stderr
    bad = miles("data", "prepare", "luma", "--source", str(tmp_path / "empty"), "--dest", str(tmp_path / "out"), "--option", "size=8")
    assert bad.returncode == 2 and "size: must satisfy 16 <= size <= 512 (got 8)" in bad.stderr


def test_cremad_trains_with_miles_from_the_cli(tmp_path):
    source = write_cremad(tmp_path / "release", actors=2)
    prepare(cremad.preparation(source, cremad.PrepareSettings(size=32)), tmp_path / "cremad")
    summary = train(tmp_path / "cremad", "cremad", tmp_path / "run.jsonl", "--encoder", "audio=resnet6", "--encoder", "visual=resnet6",
                    "--model-param", "embed_dim=128")
    assert {"metric/test/fused", "metric/test/audio", "metric/test/visual"} <= set(summary)


def test_smnist_trains_with_miles_from_the_cli(tmp_path):
    source = write_smnist(tmp_path / "release")
    prepare(smnist.preparation(source, smnist.PrepareSettings(train_size=20, val_size=10, test_size=10)), tmp_path / "smnist")
    # ResNet-6 instead of the preset's ResNet-10 keeps this under a few seconds of training on a CPU.
    summary = train(tmp_path / "smnist", "smnist", tmp_path / "run.jsonl", "--encoder", "image=resnet6",
                    "--encoder", "audio=resnet6", "--model-param", "embed_dim=128")
    assert {"metric/test/image", "metric/test/audio"} <= set(summary)


def test_luma_trains_with_miles_and_the_papers_resnet6s_streaming_from_disk(tmp_path):
    source = write_luma(tmp_path / "release")
    prepare(luma.preparation(source, luma.PrepareSettings(samples_per_class=8, val_size=6, test_size=6)), tmp_path / "luma")
    summary = train(tmp_path / "luma", "luma", tmp_path / "run.jsonl", "--performance", "data_loading=stream",
                    "--performance", "loader_workers=2")
    assert {"metric/test/audio", "metric/test/image"} <= set(summary)


def test_mmimdb_trains_with_miles_bert_and_f1_from_the_cli(tmp_path):
    need(importlib.util.find_spec("transformers") is not None, "transformers (the text extra) is not installed")
    bert = write_tiny_bert(tmp_path / "bert")
    settings = mmimdb.PrepareSettings(tokenizer=str(bert), max_tokens=16, image_size=32)
    prepare(mmimdb.preparation(write_mmimdb(tmp_path / "release"), settings), tmp_path / "mmimdb")
    summary = train(tmp_path / "mmimdb", "mmimdb", tmp_path / "run.jsonl", "--pretrained", f"text={bert}",
                    "--encoder", "image=resnet6", "--pretrained", "image=", "--model-param", "embed_dim=16", "--lr", "1e-3")
    assert 0.0 <= summary["metric/test/fused"] <= 1.0 and "metric/test/text" in summary
