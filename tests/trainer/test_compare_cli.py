"""``miles compare`` as a user runs it: a grid in parallel processes, killed and resumed, and its tables."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.services import MILES, wait_until
from trainer.compare import compare_command, parse_seeds

TINY = [
    "--dataset", "synthetic", "--dataset-param", "train_size=96", "--dataset-param", "val_size=32",
    "--dataset-param", "test_size=32", "--dataset-param", "dim=8", "--batch-size", "32", "--device", "cpu",
]


def compare(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MILES, "compare", *args], capture_output=True, text=True, timeout=timeout, env=env)


def finished_cells(out: Path) -> dict[str, int]:
    """Each finished cell's result file and when it was written."""
    return {path.name: path.stat().st_mtime_ns for path in (out / "cells").glob("*.json")}


def grid_args(out: Path) -> list[str]:
    """Four cells of two epochs, two at a time."""
    return [*TINY, "--methods", "joint,miles", "--fusions", "concat", "--seeds", "0,1", "--epochs", "2", "--jobs", "2", "--out", str(out)]


@contextmanager
def until_a_cell_finished(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``miles compare`` in a session of its own, handed over once its first cell has finished; killed afterwards."""
    out = Path(args[args.index("--out") + 1])
    with log.open("w") as sink:
        process = subprocess.Popen([MILES, "compare", *args], stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until(lambda: finished_cells(out) if out.exists() else None, 240, "a first finished cell", every=0.05)
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def session_processes(session: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and os.getsid(int(entry.name)) == session and " Z " not in (entry / "stat").read_text():
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_a_grid_killed_midway_resumes_without_training_its_finished_cells_again(tmp_path: Path):
    out = tmp_path / "grid"
    args = grid_args(out)
    with until_a_cell_finished(args, tmp_path / "first.log") as first:
        os.killpg(first.pid, signal.SIGKILL)  # the command and every cell process at once, as a lost machine
    kept = finished_cells(out)
    assert 1 <= len(kept) < 4, (tmp_path / "first.log").read_text()

    done = compare(*args)
    assert done.returncode == 0, done.stderr
    assert f"4 cells: {len(kept)} already done, {4 - len(kept)} to train, 2 at a time" in done.stderr
    after = finished_cells(out)
    assert {name: after[name] for name in kept} == kept  # not one finished cell trained again
    assert sorted(after) == ["joint.concat.seed0.json", "joint.concat.seed1.json", "miles.concat.seed0.json", "miles.concat.seed1.json"]
    assert {"table.md", "table.csv", "table.json", "table.png"} <= {p.name for p in out.iterdir()}

    table = json.loads((out / "table.json").read_text())
    (group,) = table["groups"]
    summary = {
        (method, seed): json.loads((out / "cells" / f"{method}.concat.seed{seed}.json").read_text())["summary"]
        for method in ("joint", "miles") for seed in (0, 1)
    }
    lead = sum(summary["joint", s]["metric/val/strong"] - summary["joint", s]["metric/val/weak"] for s in (0, 1))
    assert (group["dominant"], group["weak"]) == (("strong", "weak") if lead >= 0 else ("weak", "strong"))  # on validation
    assert [(row["method"], row["fusion"], row["seeds"]) for row in group["rows"]] == [("joint", "concat", 2), ("miles", "concat", 2)]
    fused = [summary["miles", s]["metric/test/fused"] for s in (0, 1)]
    assert group["rows"][1]["best"]["fused"]["mean"] == pytest.approx(sum(fused) / 2)
    assert "| miles · concat | 2 |" in done.stdout and f"{group['dominant']} (dominant)" in done.stdout
    assert "miles compare --dataset synthetic" in (out / "table.md").read_text()  # the command beside the table

    cell = json.loads((out / "cells" / "miles.concat.seed1.json").read_text())
    assert [epoch["epoch"] for epoch in cell["history"]] == [1, 2]  # every epoch's metrics, for curves over seeds
    assert cell["history"][-1] == {"epoch": 2, **cell["latest"]}


@pytest.mark.slow
def test_a_stopped_grid_stops_its_cells_keeps_what_finished_and_says_how_to_go_on(tmp_path: Path):
    out = tmp_path / "grid"
    with until_a_cell_finished(grid_args(out), tmp_path / "run.log") as process:
        process.send_signal(signal.SIGTERM)  # `kill PID`: the command alone, as a user or a scheduler stops it
        assert process.wait(timeout=60) == 130
        wait_until(lambda: not session_processes(process.pid), 20, "the cell processes to end")
    log = (tmp_path / "run.log").read_text()
    assert re.search(r"interrupted: (\d) of 4 cells are done and kept; run the same command again to train the other \d", log), log
    report = (out / "table.md").read_text()
    assert "(interrupted)" in report and "not run" in report


@pytest.mark.slow
def test_a_cell_that_fails_is_reported_listed_and_kept_out_of_the_numbers(tmp_path: Path):
    out = tmp_path / "grid"
    env = {**os.environ, "MILES_DATA_DIR": str(tmp_path / "no-data")}
    done = compare("--dataset", "avdigits", "--methods", "joint", "--fusions", "concat", "--seeds", "0", "--epochs", "1",
                   "--device", "cpu", "--out", str(out), env=env)
    assert done.returncode == 1
    assert "[1/1] joint/concat/seed0 FAILED: DatasetError" in done.stderr
    assert "1 of 1 cells failed; run the same command again to retry them" in done.stderr
    assert "Traceback" in (out / "failed" / "joint.concat.seed0.txt").read_text()
    report = (out / "table.md").read_text()
    assert "## Runs that failed" in report and "- joint/concat/seed0 (joint · concat): failed: DatasetError" in report
    assert "| joint · concat | 0 |" in report  # the row is there, with no seeds counted
    assert not (out / "cells").exists() or not list((out / "cells").iterdir())


def test_bad_options_are_named_as_the_user_wrote_them_before_anything_trains(tmp_path: Path):
    result = CliRunner().invoke(compare_command, [
        "--dataset", "mfeat", "--methods", "joint,nope", "--fusions", "concat", "--epochs", "0", "--batch-size", "0",
        "--param", "miles.tau=3", "--out", str(tmp_path / "out"),
    ])
    assert result.exit_code == 2
    assert "--methods: unknown method 'nope'" in result.output
    assert "--epochs: must satisfy 1 <= epochs <= 1000 (got 0)" in result.output
    assert "--batch-size: must satisfy 1 <= batch_size <= 4096 (got 0)" in result.output
    assert "--param miles: method 'miles' is not among the grid's methods (joint, nope)" in result.output
    assert not (tmp_path / "out").exists()


def test_a_param_names_its_method():
    result = CliRunner().invoke(compare_command, ["--dataset", "mfeat", "--param", "tau=3", "--out", "x"])
    assert result.exit_code == 2 and "expected METHOD.NAME=VALUE, e.g. miles.tau=0.1" in result.output


def test_seeds_are_a_list_a_range_or_both():
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("0-3,7,2") == [0, 1, 2, 3, 7]


def test_the_help_explains_the_grid_the_table_and_resuming():
    text = CliRunner().invoke(compare_command, ["--help"]).output
    assert "--jobs" in text and "Delta" in text and "never trained" in text and "--param" in text


def test_a_depth_reaches_every_cell_and_a_bad_one_is_named_as_the_user_wrote_it(tmp_path: Path):
    bad = CliRunner().invoke(compare_command, ["--dataset", "mfeat", "--modalities", "kar,pix", "--depth", "pix=12", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "--depth pix: must satisfy 0 <= depth <= 8 for the mlp encoder (its model.mlp_layers; got 12)" in bad.output
    out = tmp_path / "deeper"
    done = CliRunner().invoke(compare_command, [
        *TINY, "--methods", "joint,unimodal", "--fusions", "concat", "--seeds", "0", "--epochs", "1", "--depth", "strong=3",
        "--jobs", "1", "--out", str(out),
    ])
    assert done.exit_code == 0, done.output
    cells = {p.name: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    assert len(cells) == 3  # joint, and each modality alone
    assert all(cell["config"]["model"]["depths"] == {"strong": 3} for cell in cells.values())


def test_the_optimizer_reaches_every_cell(tmp_path: Path):
    out = tmp_path / "sgd"
    done = CliRunner().invoke(compare_command, [
        *TINY, "--methods", "joint,unimodal", "--fusions", "concat", "--seeds", "0", "--epochs", "1", "--optimizer", "sgd",
        "--momentum", "0.7", "--lr", "0.05", "--jobs", "1", "--out", str(out),
    ])
    assert done.exit_code == 0, done.output
    cells = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    assert len(cells) == 3 and {(c["config"]["optimizer"], c["config"]["momentum"]) for c in cells} == {("sgd", 0.7)}
