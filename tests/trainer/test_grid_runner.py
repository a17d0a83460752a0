"""The parts of ``miles compare`` that need no process: result files, progress lines, the table's files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from trainer.comparison import RunRecord, comparison_table
from trainer.comparison_files import csv_text, markdown
from trainer.grid import Grid
from trainer.grid_runner import (
    FAILED,
    CellOutcome,
    GridDirectory,
    GridDirectoryError,
    GridProgress,
    file_name,
)

CELLS = Grid(config={"dataset": "mfeat", "epochs": 4}, methods=["joint", "miles"], seeds=[0, 1]).cells


def test_a_cell_key_becomes_a_file_name_and_odd_modality_names_stay_distinct():
    assert file_name("miles/concat/seed0") == "miles.concat.seed0"
    assert file_name("unimodal/a b/seed0") != file_name("unimodal/a_b/seed0")
    assert file_name("unimodal/a b/seed0").startswith("unimodal.a_b.seed0-")


def test_a_stored_result_is_taken_only_for_the_same_settings(tmp_path: Path):
    directory = GridDirectory(tmp_path)
    cell = CELLS[0]
    assert directory.finished(cell) is None
    path = directory.result_path(cell)
    path.parent.mkdir(parents=True)
    stored = {"key": cell.key, "config": cell.config.model_dump(mode="json"), "summary": {"metric/test/fused": 0.9},
              "latest": {}, "seconds": 3.0}
    path.write_text(json.dumps(stored))
    assert directory.finished(cell).summary == {"metric/test/fused": 0.9}
    path.write_text(json.dumps(stored | {"config": stored["config"] | {"epochs": 2}}))
    with pytest.raises(GridDirectoryError, match=r"trained with other settings \(epochs 2 there, 4 now\)"):
        directory.finished(cell)


def test_plain_progress_lines_say_cells_done_running_failed_and_time_left():
    out = io.StringIO()
    progress = GridProgress(file=out, bar=False)
    progress.begin(CELLS, finished=CELLS[:1], jobs=2)
    for cell in CELLS[1:3]:
        progress.started(cell)
    progress.epoch(CELLS[1], 2)
    progress.ended(CellOutcome(CELLS[1], "succeeded", {"metric/test/fused": 0.953}, seconds=12.0), 1, counted=2)
    progress.ended(CellOutcome(CELLS[2], FAILED, error="RuntimeError: out of memory"), 0, counted=0)
    assert progress.epochs_done == 4 + 4 + 4  # the finished cell, and the two that ended: nothing left to wait for
    lines = out.getvalue().splitlines()
    assert lines[0] == "4 cells: 1 already done, 3 to train, 2 at a time"
    assert lines[1].startswith("[2/4] joint/concat/seed1 succeeded in 12 s: test fused 0.953 (2 done, 1 running, 0 failed, about ")
    assert lines[1].endswith(" left)")
    assert lines[2].startswith("[3/4] miles/concat/seed0 FAILED: RuntimeError: out of memory (2 done, 0 running, 1 failed")


def test_time_left_comes_from_the_epochs_trained_in_this_run_only():
    progress = GridProgress(file=io.StringIO(), bar=False)
    progress.begin(CELLS, finished=CELLS[:2], jobs=1)  # 8 of 16 epochs done before this run
    assert progress.seconds_left() is None
    progress.started_at -= 10.0
    progress.epoch(CELLS[2], 2)  # 2 epochs in 10 s, 6 to go
    assert progress.seconds_left() == pytest.approx(30.0, rel=0.05)


def record(method: str, seed: int, fused: float, strong: float, weak: float, **extra) -> RunRecord:
    summary = {"metric/val/strong": 0.9, "metric/val/weak": 0.5, "metric/test/fused": fused, "metric/test/strong": strong,
               "metric/test/weak": weak, "final/metric/test/fused": fused - 0.1, "final/metric/test/strong": strong,
               "final/metric/test/weak": weak}
    return RunRecord(id=f"{method}/concat/seed{seed}", name=f"{method}/concat/seed{seed}", dataset="synthetic",
                     modalities=("strong", "weak"), method=method, fusion="concat", seed=seed, status="succeeded",
                     summary=summary, config={"method": method}, **extra)


def test_the_markdown_table_shows_mean_and_sd_at_both_epochs_and_lists_failures():
    table = comparison_table([
        record("joint", 0, 0.90, 0.9, 0.6), record("joint", 1, 0.94, 0.8, 0.6),
        RunRecord(id="miles/concat/seed0", name="miles/concat/seed0", dataset="synthetic", modalities=("strong", "weak"),
                  method="miles", fusion="concat", seed=0, status=FAILED, error="Traceback...\nValueError: bad"),
    ])
    text = markdown(table, "A title", command="miles compare --dataset synthetic")
    assert "## synthetic · strong + weak · accuracy · dominant strong, weak weak (on validation, under joint training)" in text
    assert "| joint · concat | 2 | 0.920 ± 0.028 | 0.850 ± 0.071 | 0.600 ± 0.000 | 0.250 ± 0.071 | 0.820 ± 0.028 |" in text
    assert "| miles · concat | 0 | - | - | - | - | - | - | - | - | - | 1 failed |" in text
    assert "- miles/concat/seed0 (miles · concat): failed: ValueError: bad" in text
    assert "```bash\nmiles compare --dataset synthetic\n```" in text


def test_the_csv_has_a_line_per_row_and_epoch_with_mean_and_sd_apart():
    table = comparison_table([record("joint", 0, 0.90, 0.9, 0.6), record("joint", 1, 0.94, 0.8, 0.6)])
    rows = list(csv.DictReader(io.StringIO(csv_text(table))))
    assert [(r["method"], r["epoch"]) for r in rows] == [("joint", "best"), ("joint", "last")]
    assert float(rows[0]["fused_mean"]) == pytest.approx(0.92) and float(rows[1]["fused_mean"]) == pytest.approx(0.82)
    assert float(rows[0]["delta_mean"]) == pytest.approx(0.25) and rows[0]["gap_mean"] == ""
    assert (rows[0]["dominant"], rows[0]["weak"], rows[0]["seeds"]) == ("strong", "weak", "2")
