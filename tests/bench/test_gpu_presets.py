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
        [sys.executable, str(ROOT / "bench" / "gpu_presets.py"), "--device", "cpu", "--presets", "smnist",
         "--steps", "2", "--steps-per-epoch", "1", "--batch-size", "2", "--precision", "fp32"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (result,) = json.loads(done.stdout)["results"]
    run = result["fp32"]
    assert (run["preset"], run["device"], run["precision"], run["steps"]) == ("smnist", "cpu", "full precision", 2)
    assert run["samples_per_s"] > 0
    # Two ResNet-10 trunks of one input channel (the ImageNet count less its head and two of the stem's three
    # channels), two auxiliary heads of 512 x 10 and the fused head on the concatenated 1,024 features.
    trunk = 5_418_792 - (512 * 1000 + 1000) - 2 * 64 * 7 * 7
    assert run["parameters"] == 2 * trunk + 2 * (512 * 10 + 10) + (1024 * 10 + 10)
    assert "peak_memory_gib" not in run
