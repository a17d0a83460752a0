"""Ceilings and learning speed of every mfeat view (or another dataset's modalities), on validation only.

    python scripts/ceilings.py [--seeds 0-4] [--workers 2] > ceilings.json
    python scripts/ceilings.py --dataset avdigits --views audio,image --epochs 40 --seeds 0-2 > avdigits40.json
    python scripts/ceilings.py --views kar,pix --deeper kar=4 --deeper kar=6 --workers 1 \
        --reuse docs/results/adaptive/ceilings.json > deeper.json
    python scripts/ceilings.py --views kar,pix --deeper kar=6 --optimizer sgd --lr 0.03 --epochs 60 > sgd.json

For each view, ``unimodal`` runs (one view alone, 30 epochs) give its ceiling: the
validation metric at its best validation epoch. For each pair of views, ``joint_aux``
runs give, per epoch, the utilization gap (``util/delta``) and each head's
validation metric, from which the epochs each head needs to reach 95% of its own
ceiling. ``--deeper VIEW=N`` measures, beside each pair as it is, the pairs holding
VIEW with VIEW's encoder N hidden layers deep (``model.depths``), against VIEW's
ceiling with that same encoder (keys ``pix=4`` and ``kar+pix/pix=4``). Nothing here
reads the test split (``evaluate_test`` is off), so a pair can be chosen from this
output without touching test data. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from trainer.config import OPTIMIZERS

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


def _named(name: str, depths: dict[str, int]) -> str:
    """A view or pair with its deeper encoder, if any: ``pix``, ``pix=4``, ``kar+pix/pix=4``."""
    if not depths:
        return name
    deeper = ",".join(f"{view}={depth}" for view, depth in depths.items())
    return f"{name}/{deeper}" if "+" in name else deeper


def regime_name(modalities: list[str], depths: dict[str, int]) -> str:
    """A pair as a folder or file name: ``kar6+pix`` for kar + pix with kar's encoder 6 hidden layers deep."""
    return "+".join(f"{m}{depths[m]}" if m in depths else m for m in modalities)


def _deeper(texts: list[str], views: list[str]) -> list[tuple[str, int]]:
    out = []
    for text in texts:
        view, _, depth = text.partition("=")
        if view not in views or not depth.isdigit():
            raise SystemExit(f"--deeper {text!r}: expected VIEW=N with VIEW one of {', '.join(views)}, e.g. pix=4")
        out.append((view, int(depth)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4", help="a range like 0-4")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dataset", default="mfeat", help="the dataset (default mfeat); another needs --views")
    parser.add_argument("--views", help=f"comma-separated views (mfeat: {','.join(VIEWS)}); every pair of them is measured")
    parser.add_argument("--pairs", help="only these pairs of --views, e.g. kar+pix,fac+pix")
    parser.add_argument("--deeper", action="append", default=[], metavar="VIEW=N",
                        help="also measure VIEW alone and in each of its pairs with its encoder N hidden layers deep (repeatable)")
    parser.add_argument("--epochs", type=int, default=BASE["epochs"], help="epochs of every run")
    parser.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="optimizer of every run (SGD: momentum 0.9)")
    parser.add_argument("--lr", type=float, default=BASE["lr"], help="learning rate of every run")
    parser.add_argument("--reuse", type=Path, help="an earlier output of this script, with the same --seeds and --epochs: "
                        "its views and pairs as they are are copied, not trained again")
    args = parser.parse_args()
    low, _, high = args.seeds.partition("-")
    seeds = list(range(int(low), int(high or low) + 1))
    if args.views is None and args.dataset != "mfeat":
        raise SystemExit(f"--views: name the modalities of {args.dataset} to measure, e.g. --views audio,image")
    views = (args.views or ",".join(VIEWS)).split(",")
    pairs = [tuple(p.split("+")) for p in args.pairs.split(",")] if args.pairs else list(itertools.combinations(views, 2))
    deeper = _deeper(args.deeper, views)
    earlier = json.loads(args.reuse.read_text()) if args.reuse else {"ceilings_val": {}, "pairs": {}}
    if args.reuse and earlier.get("dataset", "mfeat") != args.dataset:
        raise SystemExit(f"--reuse {args.reuse}: its runs are of {earlier.get('dataset', 'mfeat')}, not {args.dataset}")
    for setting, default in (("epochs", BASE["epochs"]), ("optimizer", "adam"), ("lr", BASE["lr"])):
        if args.reuse and earlier.get(setting, default) != getattr(args, setting):
            raise SystemExit(f"--reuse {args.reuse}: its runs trained with {setting} {earlier.get(setting, default)}, "
                             f"not {getattr(args, setting)}")
    # Each view alone and each pair as they are (unless reused), and again with each deeper encoder of a view they hold.
    alone = [(v, {}) for v in views if v not in earlier["ceilings_val"]] + [(v, {v: n}) for v, n in deeper]
    together = ([(p, {}) for p in pairs if "+".join(p) not in earlier["pairs"]]
                + [(p, {v: n}) for p in pairs for v, n in deeper if v in p])
    common = {"dataset": args.dataset, "epochs": args.epochs, "optimizer": args.optimizer, "lr": args.lr}
    specs = [{"method": "unimodal", "modalities": [v], "seed": s, "model": {"depths": d}, **common}
             for v, d in alone for s in seeds]
    specs += [{"method": "joint_aux", "modalities": list(p), "seed": s, "model": {"depths": d}, **common}
              for p, d in together for s in seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(run_with_curves, specs))

    def trained(method: str, modalities: list[str], depths: dict[str, int]) -> list[dict[str, Any]]:
        return [r for r in runs if r["spec"]["method"] == method and r["spec"]["modalities"] == modalities
                and r["spec"]["model"]["depths"] == depths]

    ceilings = {v: earlier["ceilings_val"][v] for v in views if v in earlier["ceilings_val"]}
    ceilings |= {_named(view, depths): _mean_sd([r["summary"][f"metric/val/{view}"] for r in trained("unimodal", [view], depths)])
                 for view, depths in alone}
    out: dict[str, Any] = {**common, "seeds": seeds, "ceilings_val": ceilings,
                           "pairs": {"+".join(p): earlier["pairs"]["+".join(p)] for p in pairs if "+".join(p) in earlier["pairs"]}}
    for pair, depths in together:
        mine = trained("joint_aux", list(pair), depths)
        # Each view's ceiling with its encoder as it is in this pair.
        ceiling = {view: ceilings[_named(view, {view: depths[view]} if view in depths else {})] for view in pair}
        entry: dict[str, Any] = {"ceiling_gap": abs(ceiling[pair[0]][0] - ceiling[pair[1]][0])}
        for view in pair:
            target = REACHED * ceiling[view][0]
            reached = [next((i + 1 for i, e in enumerate(r["epochs"]) if e[f"metric/val/{view}"] >= target), None)
                       for r in mine]
            entry[f"epochs_to_95/{view}"] = reached
            entry[f"val_curve/{view}"] = [statistics.fmean(r["epochs"][i][f"metric/val/{view}"] for r in mine)
                                          for i in range(len(mine[0]["epochs"]))]
            entry[f"best_val/{view}"] = _mean_sd([r["summary"][f"metric/val/{view}"] for r in mine])
        entry["delta_curve"] = [statistics.fmean(r["epochs"][i].get("util/delta", float("nan")) for r in mine)
                                for i in range(len(mine[0]["epochs"]))]
        out["pairs"][_named("+".join(pair), depths)] = entry
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
