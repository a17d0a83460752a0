"""``scripts/adaptive_figure.py --grid``: curves over seeds from the epochs a compare folder's cells kept."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from adaptive_figure import grid_curves  # noqa: E402


def write_cell(folder: Path, method: str, seed: int, history: list[dict] | None, fusion: str = "concat") -> None:
    key = f"{method}.{fusion}.seed{seed}"
    cell = {"key": key, "status": "succeeded", "summary": {},
            "config": {"dataset": "avdigits", "modalities": ["audio", "image"], "method": method, "fusion": fusion, "seed": seed}}
    if history is not None:
        cell["history"] = history
    (folder / "cells" / f"{key}.json").write_text(json.dumps(cell))


def epochs(value: float) -> list[dict]:
    return [{"epoch": e, "metric/val/audio": value * e, "metric/val/fused": 0.9, "lr/image": 1e-3} for e in (1, 2)]


def test_the_concat_cells_that_kept_their_epochs_become_runs_per_method_and_seed(tmp_path):
    (tmp_path / "cells").mkdir()
    for method in ("joint_aux", "miles", "adaptive"):
        for seed in (0, 1):
            write_cell(tmp_path, method, seed, epochs(0.1 * (seed + 1)))
        write_cell(tmp_path, method, 2, None)  # kept by an older miles compare: no epochs, left out
        write_cell(tmp_path, method, 0, epochs(0.5), fusion="sum")  # the figure is of concat
    runs = grid_curves(tmp_path)
    assert sorted((r["spec"]["method"], r["spec"]["seed"]) for r in runs) == sorted(
        (m, s) for m in ("joint_aux", "miles", "adaptive") for s in (0, 1)
    )
    assert runs[0]["epochs"][1]["metric/val/audio"] == pytest.approx(0.2)
    summed = grid_curves(tmp_path, "sum")  # another fusion: its own cells only
    assert sorted((r["spec"]["method"], r["spec"]["seed"]) for r in summed) == [("adaptive", 0), ("joint_aux", 0), ("miles", 0)]
    assert summed[0]["epochs"][1]["metric/val/audio"] == pytest.approx(1.0)


def test_a_method_without_kept_epochs_is_named(tmp_path):
    (tmp_path / "cells").mkdir()
    write_cell(tmp_path, "joint_aux", 0, epochs(0.1))
    write_cell(tmp_path, "miles", 0, None)
    with pytest.raises(SystemExit, match="no concat cell of miles, adaptive holds its epochs"):
        grid_curves(tmp_path)
