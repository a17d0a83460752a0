"""Ceilings and learning speed of every mfeat view, on validation only (issue 16, step 1).

    python scripts/ceilings.py [--seeds 0-4] [--workers 2] > ceilings.json

For each view, ``unimodal`` runs (one view alone, 30 epochs) give its ceiling: the
validation metric at its best validation epoch. For each pair of views, ``joint_aux``
runs give, per epoch, the utilization gap (``util/delta``) and each head's
validation metric, from which the epochs each head needs to reach 95% of its own
ceiling. Nothing here reads the test split (``evaluate_test`` is off), so a pair can
be chosen from this output without touching test data. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from typing import Any

VIEWS = ("fac", "fou", "kar", "mor", "pix", "zer")
BASE = {"dataset": "mfeat", "epochs": 30, "batch_size": 64, "lr": 1e-3, "device": "cpu", "evaluate_test": False}
REACHED = 0.95  # a head has "learned" its view once it is at 95% of that view's ceiling


def run_with_curves(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one run (``BASE`` updated by ``spec``) in this process; its summary and, per epoch, its
    validation metrics, utilization gap and learning rates."""
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    from trainer.config import TrainConfig
    from trainer.loop import train
    from trainer.reporting import BaseReporter

    torch.set_num_threads(1)

    class Curves(BaseReporter):
        def __init__(self) -> None:
            self.epochs: list[dict[str, float]] = []

        def on_epoch(self, epoch: int, metrics: Any) -> None:
            if "loss/train" in metrics:
                self.epochs.append({k: v for k, v in metrics.items() if k.startswith(("metric/val/", "util/delta", "lr/"))})

    curves = Curves()
    result = train(TrainConfig.model_validate(BASE | spec), curves)
    return {"spec": spec, "summary": result.summary, "epochs": curves.epochs}


def _mean_sd(values: list[float]) -> list[float]:
    return [statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4", help="a range like 0-4")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    low, _, high = args.seeds.partition("-")
    seeds = list(range(int(low), int(high or low) + 1))
    specs = [{"method": "unimodal", "modalities": [v], "seed": s} for v in VIEWS for s in seeds]
    pairs = list(itertools.combinations(VIEWS, 2))
    specs += [{"method": "joint_aux", "modalities": list(p), "seed": s} for p in pairs for s in seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(run_with_curves, specs))

    ceilings = {}
    for view in VIEWS:
        best = [r["summary"][f"metric/val/{view}"] for r in runs if r["spec"]["method"] == "unimodal"
                and r["spec"]["modalities"] == [view]]
        ceilings[view] = _mean_sd(best)
    out: dict[str, Any] = {"ceilings_val": ceilings, "pairs": {}}
    for pair in pairs:
        mine = [r for r in runs if r["spec"]["method"] == "joint_aux" and r["spec"]["modalities"] == list(pair)]
        entry: dict[str, Any] = {"ceiling_gap": abs(ceilings[pair[0]][0] - ceilings[pair[1]][0])}
        for view in pair:
            target = REACHED * ceilings[view][0]
            reached = [next((i + 1 for i, e in enumerate(r["epochs"]) if e[f"metric/val/{view}"] >= target), None)
                       for r in mine]
            entry[f"epochs_to_95/{view}"] = reached
            entry[f"val_curve/{view}"] = [statistics.fmean(r["epochs"][i][f"metric/val/{view}"] for r in mine)
                                          for i in range(len(mine[0]["epochs"]))]
            entry[f"best_val/{view}"] = _mean_sd([r["summary"][f"metric/val/{view}"] for r in mine])
        entry["delta_curve"] = [statistics.fmean(r["epochs"][i].get("util/delta", float("nan")) for r in mine)
                                for i in range(len(mine[0]["epochs"]))]
        out["pairs"]["+".join(pair)] = entry
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
