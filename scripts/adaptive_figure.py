"""Figure per regime: the fused and the weak head against epochs for joint_aux, miles and adaptive.

    python scripts/adaptive_figure.py [--seeds 0-4] [--workers 2] [--regimes kar6+pix]
    python scripts/adaptive_figure.py --grid docs/results/compare/avdigits   # docs/images/adaptive_avdigits.png
    python scripts/adaptive_figure.py --grid docs/results/compare/avdigits40 --fusion sum   # ..._avdigits40_sum.png

Trains, for each mfeat regime of docs/results.md's `adaptive` comparison (a pair, and the depth of
an encoder made deeper; concat, 30 epochs, the settings of `scripts/ceilings.py`), joint_aux, miles
and adaptive on every seed and draws, per regime, the validation accuracy of the fused head and of the weak head and the dominant modality's
learning rate (dominant and weak as `miles compare` chose them on validation, read from its folder
docs/results/compare/adaptive/<regime>), each the mean over seeds with a band of one standard deviation. Writes
docs/images/adaptive_<regime>.png. Validation only: the test split is not evaluated.

With ``--grid FOLDER`` nothing is trained: the curves are the per-epoch metrics that `miles compare`
kept in that folder's cells (of ``--fusion``, concat by default; the seeds whose cells hold them),
and the figure is docs/images/adaptive_<folder name>.png (``..._<fusion>.png`` for another fusion).
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from ceilings import regime_name, run_with_curves
from paired import records

from trainer.comparison import dominance

ROOT = Path(__file__).resolve().parents[1]
COMPARE = ROOT / "docs" / "results" / "compare" / "adaptive"
# Each regime: a pair, and the depth of an encoder made deeper (none: the pair as it is).
REGIMES: list[tuple[list[str], dict[str, int]]] = [(["pix", "fou"], {}), (["kar", "pix"], {}), (["fou", "zer"], {})]
METHODS = {"joint_aux": "#7f7f7f", "miles": "#1f77b4", "adaptive": "#d62728"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--workers", type=int, default=2)
    names = [regime_name(*regime) for regime in REGIMES]
    parser.add_argument("--regimes", default=",".join(names), help=f"comma-separated, of {', '.join(names)}")
    parser.add_argument("--grid", type=Path, help="Draw from the cells of this miles compare folder instead of training.")
    parser.add_argument("--fusion", default="concat", help="With --grid: the fusion whose cells are drawn.")
    args = parser.parse_args()
    if args.grid is not None:
        runs = grid_curves(args.grid, args.fusion)
        seeds = sorted({r["spec"]["seed"] for r in runs})
        config = runs[0]["config"]
        title = (f"{config['dataset']} {'+'.join(config['modalities'])} ({args.fusion}): "
                 f"mean ± sd over seeds {', '.join(map(str, seeds))}")
        suffix = "" if args.fusion == "concat" else f"_{args.fusion}"
        draw(args.grid, runs, title, ROOT / "docs" / "images" / f"adaptive_{args.grid.name}{suffix}.png")
        return
    low, _, high = args.seeds.partition("-")
    seeds = range(int(low), int(high or low) + 1)
    chosen = args.regimes.split(",")
    unknown = sorted(set(chosen) - set(names))
    if unknown:
        raise SystemExit(f"--regimes: unknown {', '.join(unknown)}; known: {', '.join(names)}")
    regimes = {name: regime for name, regime in zip(names, REGIMES, strict=True) if name in chosen}
    specs = [{"method": m, "modalities": pair, "model": {"depths": depths}, "seed": s}
             for pair, depths in regimes.values() for m in METHODS for s in seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(run_with_curves, specs))
    for name, (modalities, depths) in regimes.items():
        mine = [r for r in runs if regime_name(r["spec"]["modalities"], r["spec"]["model"]["depths"]) == name]
        deeper = "".join(f", {view}'s encoder {depth} hidden layers deep" for view, depth in depths.items())
        title = f"mfeat {'+'.join(modalities)}{deeper} (concat): mean ± sd over seeds {args.seeds}"
        draw(COMPARE / name, mine, title, ROOT / "docs" / "images" / f"adaptive_{name}.png")


def grid_curves(folder: Path, fusion: str = "concat") -> list[dict[str, Any]]:
    """The ``fusion`` cells of `METHODS` in a compare folder that kept their epochs, as `run_with_curves` returns runs."""
    runs = []
    for method in METHODS:
        for path in sorted((folder / "cells").glob(f"{method}.{fusion}.seed*.json")):
            cell = json.loads(path.read_text(encoding="utf-8"))
            if cell.get("history"):
                runs.append({"spec": {"method": method, "seed": cell["config"]["seed"]}, "config": cell["config"],
                             "epochs": cell["history"]})
    missing = [m for m in METHODS if not any(r["spec"]["method"] == m for r in runs)]
    if missing:
        raise SystemExit(f"{folder}: no {fusion} cell of {', '.join(missing)} holds its epochs (cells kept by an older miles compare)")
    return runs


def draw(folder: Path, runs: list[dict[str, Any]], title: str, path: Path) -> None:
    """Weak head, fused head and both modalities' rates against epochs, per method, mean ± sd band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roles = dominance([r for r in records(folder) if not r.single])  # as miles compare chose them
    assert roles is not None, f"run the comparison in {folder} first (docs/results.md)"
    dominant, weak = roles.dominant, roles.weak
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    titles = [f"{weak} head (weak), validation accuracy", "fused head, validation accuracy",
              f"rates: {dominant} (dominant, solid), {weak} (weak, dashed)"]
    # (panel, key, line): a schedule brakes the dominant modality's rate or speeds up the weak one's.
    series = [(0, f"metric/val/{weak}", "-"), (1, "metric/val/fused", "-"), (2, f"lr/{dominant}", "-"), (2, f"lr/{weak}", "--")]
    for method, color in METHODS.items():
        mine = [r for r in runs if r["spec"]["method"] == method]
        for panel, key, line in series:
            ax = axes[panel]
            values = np.array([[e[key] for e in r["epochs"]] for r in mine])
            epochs = np.arange(1, values.shape[1] + 1)
            mean, sd = values.mean(axis=0), values.std(axis=0, ddof=1) if len(mine) > 1 else 0 * values[0]
            ax.plot(epochs, mean, color=color, ls=line, label=f"{method} ({len(mine)} seeds)" if panel == 0 else None)
            ax.fill_between(epochs, mean - sd, mean + sd, color=color, alpha=0.2, lw=0)
    for ax, title_of in zip(axes, titles, strict=True):
        ax.set_title(title_of, fontsize=10)
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=9)
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
