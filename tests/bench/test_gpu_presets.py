"""bench/gpu_presets.py's CPU path: a preset's model trains a few steps and the JSON says how fast."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_the_gpu_check_runs_on_the_cpu_and_prints_throughput_as_json():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_presets.py"), "--device", "cpu", "--presets", "luma",
         "--steps", "2", "--steps-per-epoch", "1", "--batch-size", "2", "--precision", "fp32"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = json.loads(done.stdout)["results"]
    run = result["fp32"]
    assert (run["preset"], run["device"], run["precision"], run["steps"]) == ("luma", "cpu", "full precision", 2)
    assert run["samples_per_s"] > 0
    # Two ResNet-6 trunks (the ImageNet count less its head), the audio one with a one-channel stem; two
    # auxiliary heads of 128 features x 22 classes and the fused head on the concatenated 256.
    trunk = 442_664 - (128 * 1000 + 1000)
    assert run["parameters"] == 2 * trunk - 2 * 64 * 7 * 7 + 2 * (128 * 22 + 22) + (256 * 22 + 22)
    assert "peak_memory_gib" not in run
