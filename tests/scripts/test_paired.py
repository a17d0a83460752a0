"""``scripts/paired.py``: paired differences seed by seed, against named methods or every other one in a folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "paired.py"


def write_cell(folder: Path, method: str, seed: int, fused: float, weak: float, modalities=("pix", "fou")) -> None:
    config = {"dataset": "mfeat", "modalities": list(modalities), "method": method, "fusion": "concat", "seed": seed}
    summary = {"metric/val/pix": 0.97, "metric/val/fou": 0.80, "metric/test/fused": fused, "metric/test/fou": weak,
               "final/metric/test/fused": fused, "final/metric/test/fou": weak}
    key = f"{method}.concat.seed{seed}"
    (folder / "cells" / f"{key}.json").write_text(json.dumps({"key": key, "config": config, "status": "succeeded", "summary": summary}))


def test_against_all_compares_with_every_other_fused_method_in_catalogue_order(tmp_path):
    (tmp_path / "cells").mkdir()
    for seed, (mine, joint, ogm) in enumerate([(0.99, 0.98, 0.97), (0.98, 0.98, 0.99)]):
        write_cell(tmp_path, "adaptive", seed, mine, 0.82)
        write_cell(tmp_path, "ogm", seed, ogm, 0.80)
        write_cell(tmp_path, "joint", seed, joint, 0.75)
    write_cell(tmp_path, "unimodal", 0, 0.83, 0.83, modalities=("fou",))
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--against", "all"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = [line.split(" | ") for line in done.stdout.splitlines()[2:]]
    assert [(r[1], r[2]) for r in rows] == [
        ("adaptive - joint", "fused"), ("adaptive - joint", "fou (weak)"), ("adaptive - ogm", "fused"), ("adaptive - ogm", "fou (weak)"),
    ]
    # fused, adaptive - ogm: +0.02 on seed 0, -0.01 on seed 1.
    assert rows[2][3].endswith("(1 better, 1 worse of 2)") and rows[2][3].startswith("0.005 ± 0.021")
    assert rows[1][3].startswith("0.070 ± 0.000 (2 better, 0 worse of 2)")


def test_split_val_compares_the_validation_metric_at_the_best_epoch_and_at_the_last_epoch_of_the_history(tmp_path):
    (tmp_path / "cells").mkdir()
    for method, best, last in [("adaptive", 0.90, 0.93), ("joint_aux", 0.88, 0.94)]:
        config = {"dataset": "mfeat", "modalities": ["pix", "fou"], "method": method, "fusion": "sum", "seed": 0}
        summary = {"metric/val/pix": 0.97, "metric/val/fou": best, "metric/val/fused": 0.95, "metric/test/fused": 0.9}
        history = [{"epoch": 1, "metric/val/fou": 0.1, "metric/val/fused": 0.2},
                   {"epoch": 2, "metric/val/fou": last, "metric/val/fused": 0.96, "metric/test/fou": 0.5}]
        (tmp_path / "cells" / f"{method}.json").write_text(json.dumps(
            {"key": method, "config": config, "status": "succeeded", "summary": summary, "history": history}))
    done = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--against", "joint_aux", "--split", "val"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rows = [line.split(" | ") for line in done.stdout.splitlines()[2:]]
    assert [(r[2], r[3], r[4].removesuffix(" |")) for r in rows] == [
        ("fused", "0.000 (0 better, 0 worse of 1)", "0.000 (0 better, 0 worse of 1)"),
        ("fou (weak)", "0.020 (1 better, 0 worse of 1)", "-0.010 (0 better, 1 worse of 1)"),
    ]
