"""``miles compare``: train a grid of methods x fusions x seeds locally and write the paper's kind of table."""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from trainer.cli_values import optimizer_options, parse_depths, parse_param, split_list
from trainer.comparison import comparison_table
from trainer.comparison_files import EXTRA, group_tables, has_matplotlib, write_tables
from trainer.config import FUSIONS
from trainer.datasets import DATASETS
from trainer.grid import MAX_SEEDS, Grid
from trainer.grid_runner import FAILED, GridDirectory, GridDirectoryError, GridProgress, GridRun
from trainer.methods import METHODS
from trainer.spec import explain

INTERRUPTED = 130  # the shell's code for a command stopped by Ctrl-C


def parse_seeds(text: str) -> list[int]:
    """``0,1,2``, ``0-4`` or a mix (``0-2,7``): the seeds, in order, each once."""
    seeds: list[int] = []
    for part in split_list(text) or []:
        low, dash, high = part.partition("-")
        try:
            values = range(int(low), int(high) + 1) if dash else [int(part)]
        except ValueError:
            raise click.BadParameter(f"{part!r} is not a seed (a whole number >= 0) or a range like 0-4", param_hint="--seeds") from None
        if dash and int(high) < int(low):
            raise click.BadParameter(f"the range {part} runs backwards", param_hint="--seeds")
        if len(values) > MAX_SEEDS:
            raise click.BadParameter(f"{part} names more than {MAX_SEEDS} seeds", param_hint="--seeds")
        seeds.extend(v for v in values if v not in seeds)
    if not seeds:
        raise click.BadParameter("name at least one seed, e.g. 0", param_hint="--seeds")
    return seeds


def method_params(texts: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``--param miles.tau=0.1`` -> ``{"miles": {"tau": 0.1}}``."""
    params: dict[str, dict[str, Any]] = {}
    for text in texts:
        name, value = parse_param(text)
        method, dot, field = name.partition(".")
        if not dot or not method or not field:
            raise click.BadParameter(f"{text!r}: expected METHOD.NAME=VALUE, e.g. miles.tau=0.1", param_hint="--param")
        params.setdefault(method, {})[field] = value
    return params


def default_jobs() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _option(field: str) -> str:
    """A grid's field as the user gave it here: ``config.batch_size`` was ``--batch-size``."""
    head, _, rest = field.partition(".")
    if head == "config":
        name, _, inner = rest.partition(".")
        if name == "model" and inner.startswith("depths."):
            return f"--depth {inner.removeprefix('depths.')}"
        option = "--dataset-param" if name == "dataset_params" else "--" + name.replace("_", "-")
        return f"{option} {inner}".strip()
    if head == "params":
        return f"--param {rest}".strip()
    if head == "cells":
        key, _, inner = rest.partition(".")
        return f"cell {key}: {inner}" if inner else f"cell {key}"
    return f"--{head}"


@click.command("compare")
@click.option("--dataset", type=click.Choice(list(DATASETS)), required=True, help="Dataset to train on.")
@click.option("--modalities", help="Comma-separated pair (default: the dataset's default pair).")
@click.option(
    "--methods", default=",".join(METHODS), show_default=True,
    help="Comma-separated methods; a method of one modality alone (a ceiling) runs once per modality of the pair.",
)
@click.option("--fusions", default="concat,sum", show_default=True, help=f"Comma-separated, of {', '.join(FUSIONS)}.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Seeds: 0,1,2 or 0-4.")
@click.option("--param", "params", multiple=True, help="A method's hyperparameter, METHOD.NAME=VALUE (repeatable), e.g. miles.tau=0.1.")
@click.option("--dataset-param", "dataset_params", multiple=True, help="A dataset option, NAME=VALUE (repeatable).")
@click.option("--data-path", help="Data folder (folder dataset; avdigits overrides MILES_DATA_DIR).")
@click.option("--depth", "depths", multiple=True, metavar="MODALITY=N",
              help="A modality's encoder depth in every cell, instead of mlp_layers or cnn_depth, e.g. pix=4 (repeatable).")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@optimizer_options
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N (every cell).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder of the results: one file per finished cell, and the tables.")
@click.option("--jobs", type=click.IntRange(min=1), help="Cells trained at once, each in its own process with one torch thread (default: the number of cores).")
def compare_command(**options: Any) -> None:
    """Train every method x fusion x seed and write the paper's kind of table.

    Each cell trains in its own process, --jobs at a time, and the progress shows the cells done,
    running and failed and the time left. The table (DIR/table.md, .csv, .json and .png) gives, per
    method and fusion, the test metric of the fused head, of the dominant and the weak modality's
    heads, and their difference Delta, as mean ± standard deviation over seeds, at the best
    validation epoch and at the last. Dominant and weak are chosen on validation.

    Stopped (Ctrl-C) or killed, the same command continues: a finished cell is never trained
    again (its result is kept in DIR/cells), an interrupted one starts over. A failed cell is listed
    in the table, its traceback kept in DIR/failed, and the same command retries it.

    \b
    Example:
      miles compare --dataset mfeat --methods joint,joint_aux,miles --fusions concat,sum \\
          --seeds 0,1,2 --epochs 30 --out results/mfeat
    """
    grid = _grid(options)
    out: Path = options["out"]
    jobs = options["jobs"] or default_jobs()
    command = shlex.join(["miles", *sys.argv[1:]]) if Path(sys.argv[0]).name == "miles" else None
    out.mkdir(parents=True, exist_ok=True)
    (out / "grid.json").write_text(json.dumps({"command": command, "grid": grid.model_dump(mode="json")}, indent=1) + "\n")
    if not has_matplotlib():
        click.echo(f"note: table.png needs matplotlib ({EXTRA}); the other tables are written without it", err=True)
    title = _title(grid)
    runner = GridRun(grid.cells, GridDirectory(out), jobs, GridProgress())
    signal.signal(signal.SIGTERM, _stop)  # `kill` stops the cells as Ctrl-C does, and keeps what finished
    try:
        outcomes = runner.run()
    except GridDirectoryError as error:
        raise click.ClickException(str(error)) from None
    table = comparison_table([o.record() for o in outcomes])
    written = write_tables(table, out, title=f"{title} (interrupted)" if runner.interrupted else title, command=command)
    if runner.interrupted:
        sys.exit(INTERRUPTED)
    click.echo(group_tables(table) or "no results")
    click.echo(f"wrote {', '.join(str(p) for p in written)}", err=True)
    failed = [o for o in outcomes if o.status == FAILED]
    if failed:
        for outcome in failed:
            click.echo(f"failed: {outcome.cell.key}: {outcome.error} ({runner.directory.error_path(outcome.cell)})", err=True)
        raise click.ClickException(f"{len(failed)} of {len(outcomes)} cells failed; run the same command again to retry them")


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _grid(options: dict[str, Any]) -> Grid:
    config = {
        "dataset": options["dataset"], "data_path": options["data_path"],
        "dataset_params": dict(parse_param(p, "--dataset-param") for p in options["dataset_params"]),
        "modalities": split_list(options["modalities"]), "epochs": options["epochs"], "batch_size": options["batch_size"],
        "optimizer": options["optimizer"], "momentum": options["momentum"], "lr": options["lr"],
        "weight_decay": options["weight_decay"], "device": options["device"],
    }
    if options["depths"]:
        config["model"] = {"depths": parse_depths(options["depths"])}
    spec = {
        "config": config, "methods": split_list(options["methods"]) or [], "fusions": split_list(options["fusions"]) or [],
        "seeds": parse_seeds(options["seeds"]), "params": method_params(options["params"]),
    }
    try:
        return Grid.model_validate(spec)
    except ValidationError as error:
        lines = [f"{_option(p.field)}: {p.message}" for p in explain(error)]
        raise click.UsageError("invalid grid:\n  " + "\n  ".join(lines)) from None


def _title(grid: Grid) -> str:
    first = grid.cells[0].config
    return (
        f"{first.dataset}: {', '.join(grid.methods)} x {', '.join(grid.fusions)} x {len(grid.seeds)} "
        f"seed{'s' if len(grid.seeds) > 1 else ''}, {first.epochs} epochs"
    )
