"""Check, on a machine with an NVIDIA GPU, that a run's system metrics show the GPU really at work.

    python scripts/gpu_check.py [--epochs 30] [--gpu 0]

Starts `miles server` and `miles worker --gpus N` on a fresh SQLite file (local mode, with the
process helpers of the test suite) with MILES_SYSTEM_INTERVAL=1, trains one run on that GPU,
and prints JSON: what NVML reads directly, the worker as GET /api/v1/workers lists it while the
run trains, the machine the run recorded, and per ``sys/gpu_*`` key the number of samples and
their peak. It exits 1 when the GPU metrics are missing or never moved (utilization and memory
used stay at zero), so that it can gate a release on a GPU machine. Takes a minute or two.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import migrated  # noqa: E402
from tests.services import MilesStack, wait_until  # noqa: E402
from trainer.system import GPU_MEMORY, GPU_POWER, GPU_TEMPERATURE, GPU_UTIL, Gpu  # noqa: E402

GPU_KEYS = (GPU_UTIL, GPU_MEMORY, GPU_TEMPERATURE, GPU_POWER)


def config(epochs: int) -> dict[str, Any]:
    """Big enough batches of synthetic data that the GPU, not Python, sets the pace."""
    return {
        "dataset": "synthetic", "dataset_params": {"dim": 512, "classes": 10, "train_size": 20000, "val_size": 2000,
                                                   "test_size": 2000},
        "model": {"embed_dim": 256, "hidden_dim": 1024}, "method": "miles", "epochs": epochs, "batch_size": 256,
        "device": "cuda",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--gpu", default="0", help="The GPU index for `miles worker --gpus`.")
    args = parser.parse_args()
    direct = Gpu.open(visible=args.gpu)
    report: dict[str, Any] = {"nvml": {"name": direct.name(), "memory_total_mib": direct.memory_total_mib(),
                                       "sample": direct.sample()} if direct else None}
    with tempfile.TemporaryDirectory(prefix="miles-gpu-check-") as home:
        stack = MilesStack(home=Path(home), database_url=migrated(f"sqlite:///{home}/miles.db"), redis=None,
                           settings={"system_interval": 1})
        try:
            stack.start("--gpus", args.gpu)
            run = stack.submit(config(args.epochs), name="gpu check")
            stack.wait_for_status(run["id"], "running", timeout=120)
            with stack.api as api:
                report["worker_while_training"] = wait_until(
                    lambda: next((w for w in api.get("/workers").json()["items"] if w["status"] == "busy"), None),
                    30, "the GPU worker busy")
            finished = stack.wait_for_status(run["id"], "succeeded", "failed", "cancelled", timeout=1800)
            with stack.api as api:
                series = api.get(f"/runs/{run['id']}/metrics", params={"keys": "sys/*"}).json()["series"]
        finally:
            stack.close()
    report["run"] = {"status": finished["status"], "error": finished["error"], "machine": finished["machine"],
                     "seconds": finished["summary"].get("time/train") if finished["summary"] else None}
    report["sys"] = {key: {"samples": len(s["values"]), "peak": max(s["values"], default=None),
                           "last": s["values"][-1] if s["values"] else None} for key, s in sorted(series.items())}
    print(json.dumps(report, indent=2))
    moved = all(report["sys"].get(key, {}).get("peak") for key in (GPU_UTIL, GPU_MEMORY))
    return 0 if finished["status"] == "succeeded" and moved else 1


if __name__ == "__main__":
    sys.exit(main())
