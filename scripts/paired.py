"""Paired differences, seed by seed, of one method against others in a ``miles compare`` folder.

    python scripts/paired.py docs/results/compare/adaptive/pix+fou [--method adaptive] [--against joint_aux,miles]
    python scripts/paired.py docs/results/compare/adaptive/pix+fou --against all   # every other method of the folder
    python scripts/paired.py FOLDER --split val   # the validation metric, to choose between candidates

For each fusion: the method's test metric minus each other method's, on the same seed, for the
fused head and for the weak modality's head (weak chosen on validation, as every table of the
project chooses it: trainer.comparison.dominance), at the best validation epoch and at the last.
Prints a Markdown table: mean ± sample sd of the differences and how many seeds favour each side.
With ``--split val``, the same differences of the validation metric (at the last epoch: the last
epoch's evaluation in the cell's history), which is what a choice between settings may read.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from trainer.comparison import RunRecord, describe, dominance
from trainer.methods import METHODS


def records(folder: Path) -> list[RunRecord]:
    out = []
    for path in sorted((folder / "cells").glob("*.json")):
        cell = json.loads(path.read_text(encoding="utf-8"))
        config = cell["config"]
        last = cell["history"][-1] if cell.get("history") else {}
        validation = {f"final/{key}": value for key, value in last.items() if key.startswith("metric/val/")}
        out.append(RunRecord(
            id=cell["key"], name=cell["key"], dataset=config["dataset"], modalities=tuple(config["modalities"]),
            method=config["method"], fusion=config["fusion"], seed=config["seed"], status=cell["status"],
            summary=cell["summary"] | validation, config=config,
        ))
    return out


def cell(diffs: list[float]) -> str:
    if not diffs:
        return "-"
    better, worse = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    return f"{describe(diffs).text()} ({better} better, {worse} worse of {len(diffs)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--method", default="adaptive")
    parser.add_argument("--against", default="joint_aux,miles",
                        help="comma-separated methods, or 'all': every other fused method in the folder, in the catalogue's order")
    parser.add_argument("--split", choices=("test", "val"), default="test", help="the metric compared (default: test)")
    args = parser.parse_args()
    runs = [r for r in records(args.folder) if not r.single]
    roles = dominance(runs)
    if roles is None:
        raise SystemExit(f"{args.folder}: no finished runs of two modalities")
    present = {r.method for r in runs} - {args.method}
    against = [m for m in METHODS if m in present] if args.against == "all" else args.against.split(",")
    heads = [("fused", f"metric/{args.split}/fused"), (f"{roles.weak} (weak)", f"metric/{args.split}/{roles.weak}")]
    print("| fusion | difference | head | at the best validation epoch | at the last epoch |")
    print("| --- | --- | --- | --- | --- |")
    for fusion in sorted({r.fusion for r in runs}):
        mine = {r.seed: r.summary for r in runs if r.fusion == fusion and r.method == args.method}
        for other_method in against:
            other = {r.seed: r.summary for r in runs if r.fusion == fusion and r.method == other_method}
            seeds = sorted(set(mine) & set(other))
            for head, key in heads:
                best, last = (cell([mine[s][p + key] - other[s][p + key] for s in seeds]) for p in ("", "final/"))
                print(f"| {fusion} | {args.method} - {other_method} | {head} | {best} | {last} |")

if __name__ == "__main__":
    main()
