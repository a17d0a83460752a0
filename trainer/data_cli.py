"""``miles data prepare`` and ``miles data verify``: the paper's datasets from their public releases.

    miles data prepare cremad --source ~/downloads/CREMA-D --dest ~/.miles/data/cremad
    miles train --preset cremad --data-path ~/.miles/data/cremad

Preparing decodes, resizes and computes spectrograms once, with a progress bar; it
can be stopped and started again (it continues), and it refuses to write into a
folder that holds another preparation. Nothing here imports torch.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from trainer.datasets import DATASETS, DatasetError, prepared
from trainer.datasets.preparation import prepare
from trainer.spec import explain, parse_assignment

PREPARABLE = [name for name, entry in DATASETS.items() if entry.preparable]


def _settings_help() -> str:
    lines = ["Settings (--option NAME=VALUE), by dataset:"]
    for name in PREPARABLE:
        schema = DATASETS[name].module.PrepareSettings.model_json_schema()
        for field, spec in schema.get("properties", {}).items():
            lines.append(f"  {name}.{field} (default {spec.get('default')!r}): {spec.get('description', '')}")
    return "\b\n" + "\n".join(lines)


@click.group("data")
def data_group() -> None:
    """Prepare the paper's datasets (CREMA-D, S-MNIST, LUMA, MM-IMDb) and check prepared folders."""


@data_group.command("prepare", epilog=_settings_help())
@click.argument("name", type=click.Choice(PREPARABLE))
@click.option("--source", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The public release as downloaded (see docs/datasets.md for each layout).")
@click.option("--dest", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The folder to write; give it to training as data_path.")
@click.option("--option", "options", multiple=True, metavar="NAME=VALUE", help="A preprocessing setting (repeatable).")
@click.option("--workers", type=click.IntRange(1, 64), default=min(4, os.cpu_count() or 1), show_default=True,
              help="Processes decoding samples.")
def prepare_command(name: str, source: Path, dest: Path, options: tuple[str, ...], workers: int) -> None:
    """Preprocess dataset NAME from --source into --dest (resumable)."""
    from tqdm import tqdm

    entry = DATASETS[name]
    try:
        values = dict(parse_assignment(option) for option in options)
        settings = entry.module.PrepareSettings.model_validate(values)
    except ValueError as error:
        problems = explain(error) if isinstance(error, ValidationError) else [str(error)]
        raise click.UsageError("invalid --option:\n  " + "\n  ".join(map(str, problems))) from None
    click.echo(f"reading the {name} release in {source} ...", err=True)
    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, initial=done, unit="sample", file=sys.stderr, dynamic_ncols=True, desc=f"preparing {name}")
        bar.update(done - bar.n)

    try:
        preparation = entry.module.preparation(source.resolve(), settings)
        manifest = prepare(preparation, dest.resolve(), workers=workers, progress=progress)
    except DatasetError as error:
        raise click.ClickException(str(error)) from None
    except KeyboardInterrupt:
        click.echo(f"\nstopped; run the same command again to continue where it stopped ({dest})", err=True)
        sys.exit(130)
    finally:
        if bar is not None:
            bar.close()
    sizes = " / ".join(f"{manifest.splits[s]:,} {s}" for s in ("train", "val", "test"))
    shapes = ", ".join(f"{m} {'x'.join(map(str, e.shape))} {e.kind}" for m, e in manifest.modalities.items())
    click.echo(f"{dest}: {name}, {sizes}; {shapes}; {len(manifest.classes)} classes")
    for note in manifest.notes:
        click.echo(f"note: {note}")
    click.echo(f"train it: miles train --preset {name} --data-path {dest}")


@data_group.command("verify")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
def verify_command(folder: Path) -> None:
    """Check every file of a prepared FOLDER against the sizes and SHA-256 sums of its manifest."""
    try:
        problems = prepared.verify(folder)
    except DatasetError as error:
        raise click.ClickException(str(error)) from None
    if problems:
        raise click.ClickException(f"{folder} differs from its manifest:\n  " + "\n  ".join(problems))
    click.echo(f"{folder}: every file matches its manifest")
