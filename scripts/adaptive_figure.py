"""Figure per regime: the fused and the weak head against epochs for joint_aux, miles and adaptive.

    python scripts/adaptive_figure.py [--seeds 0-4] [--workers 2]

Trains, for each mfeat pair of docs/results.md's `adaptive` comparison (concat, 30 epochs, the
settings of `scripts/ceilings.py`), joint_aux, miles and adaptive on every seed and draws, per
pair, the validation accuracy of the fused head and of the weak head and the dominant modality's
learning rate (dominant and weak as `miles compare` chose them on validation, read from its folder
docs/results/compare/adaptive/<pair>), each the mean over seeds with a band of one standard deviation. Writes
docs/images/adaptive_<pair>.png. Validation only: the test split is not evaluated.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from ceilings import run_with_curves
from paired import records

from trainer.comparison import dominance

ROOT = Path(__file__).resolve().parents[1]
COMPARE = ROOT / "docs" / "results" / "compare" / "adaptive"
PAIRS = ("pix+fou", "kar+pix", "fou+zer")
METHODS = {"joint_aux": "#7f7f7f", "miles": "#1f77b4", "adaptive": "#d62728"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    low, _, high = args.seeds.partition("-")
    seeds = range(int(low), int(high or low) + 1)
    specs = [{"method": m, "modalities": pair.split("+"), "seed": s} for pair in PAIRS for m in METHODS for s in seeds]
    with ProcessPoolExecutor(args.workers) as pool:
        runs = list(pool.map(run_with_curves, specs))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for pair in PAIRS:
        roles = dominance([r for r in records(COMPARE / pair) if not r.single])  # as miles compare chose them
        assert roles is not None, f"run the comparison of {pair} first (docs/results.md)"
        dominant, weak = roles.dominant, roles.weak
        fig, axes = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
        panels = [(f"metric/val/{weak}", f"{weak} head (weak), validation accuracy"),
                  ("metric/val/fused", "fused head, validation accuracy"),
                  (f"lr/{dominant}", f"learning rate of {dominant} (dominant)")]
        for method, color in METHODS.items():
            mine = [r for r in runs if r["spec"]["method"] == method and "+".join(r["spec"]["modalities"]) == pair]
            for ax, (key, title) in zip(axes, panels, strict=True):
                values = np.array([[e[key] for e in r["epochs"]] for r in mine])
                epochs = np.arange(1, values.shape[1] + 1)
                mean, sd = values.mean(axis=0), values.std(axis=0, ddof=1) if len(mine) > 1 else 0 * values[0]
                ax.plot(epochs, mean, color=color, label=method)
                ax.fill_between(epochs, mean - sd, mean + sd, color=color, alpha=0.2, lw=0)
                ax.set_title(title, fontsize=10)
                ax.set_xlabel("epoch")
        axes[0].legend(fontsize=9)
        fig.suptitle(f"mfeat {pair} (concat): mean ± sd over seeds {args.seeds}", fontsize=11)
        path = ROOT / "docs" / "images" / f"adaptive_{pair}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
