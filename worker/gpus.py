"""How many CUDA devices torch sees on this machine, asked of a short-lived child process.

The supervisor of `miles worker` and `miles up` trains nothing: importing torch there would
add seconds to every start and keep hundreds of megabytes mapped for as long as it runs.
Its worker processes import torch themselves; the child asked here sees the same
``CUDA_VISIBLE_DEVICES`` they do, so it numbers the devices as they will.
"""

from __future__ import annotations

import subprocess
import sys

PROBE = "import torch; print(torch.cuda.device_count())"
PROBE_TIMEOUT = 120.0  # seconds; the first import of torch on a cold disk is slow


class GpuProbeFailed(RuntimeError):
    """torch could not be asked how many CUDA devices there are; the message says why."""


def cuda_device_count() -> int:
    """``torch.cuda.device_count()`` as a child process finds it (0 on a machine without CUDA)."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=PROBE_TIMEOUT, check=False,
        )
    except subprocess.TimeoutExpired:
        raise GpuProbeFailed(f"torch took more than {PROBE_TIMEOUT:g} s to say how many GPUs there are") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].isdigit():
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise GpuProbeFailed(f"could not ask torch how many GPUs there are: {reason}")
    return int(lines[-1])
