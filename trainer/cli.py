"""``miles train``: train one run in the terminal, without a server.

torch (and what imports it) is imported inside the command, when it trains: ``miles --help``
and ``miles train --help`` read this module and must not wait seconds for torch.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from trainer.cli_values import optimizer_options, parse_depths, parse_param, split_list
from trainer.config import FUSIONS, TrainConfig
from trainer.datasets import DATASETS, DatasetError
from trainer.methods import METHODS
from trainer.presets import PRESETS
from trainer.reporting import ConsoleReporter, JsonlReporter, MultiReporter
from trainer.spec import explain

# Options that become a field of the spec as they are (the others are assembled below).
PLAIN_FIELDS = (
    "dataset", "fusion", "method", "epochs", "batch_size", "optimizer", "momentum", "lr", "weight_decay", "seed", "device", "data_path",
)


def _assignments(values: tuple[str, ...], hint: str) -> dict[str, Any]:
    return dict(parse_param(value, hint) for value in values)


def _spec(ctx: click.Context, options: dict[str, Any]) -> dict[str, Any]:
    """The run's spec from the command line. With --preset, only the options given on it (defaults are
    the preset's); without, every option with its default."""
    given = {name for name in options if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT}
    spec: dict[str, Any] = {name: options[name] for name in PLAIN_FIELDS if not options["preset"] or name in given}
    params = _assignments(options["params"], "--param")
    params.update({name: options[name] for name in ("tau", "mu") if options[name] is not None})
    model = _assignments(options["model_params"], "--model-param")
    for section, values, hint in (("encoders", options["encoders"], "--encoder"), ("pretrained", options["pretrained"], "--pretrained")):
        if values:
            model[section] = {k: str(v) for k, v in _assignments(values, hint).items()}
    if options["depths"]:
        model["depths"] = parse_depths(options["depths"])
    extra = {
        "preset": options["preset"], "modalities": split_list(options["modalities"]), "params": params,
        "dataset_params": _assignments(options["dataset_params"], "--dataset-param"), "model": model,
        "performance": _assignments(options["performance"], "--performance"),
    }
    if spec.get("data_path"):
        spec["data_path"] = str(spec["data_path"].expanduser().resolve())
    return spec | {k: v for k, v in extra.items() if v or not options["preset"]}


def _read_last(directory: Path) -> dict[str, Any]:
    """The last checkpoint of a run directory (its spec and epoch)."""
    import torch

    from trainer.checkpoint import LAST

    path = directory / LAST
    if not path.exists():
        raise click.BadParameter(f"{path} does not exist: nothing to resume", param_hint="--resume")
    return torch.load(path, map_location="cpu", weights_only=True)


def summary_table(summary: dict[str, Any], modalities: list[str]) -> str:
    """Fused and per-head validation and test metrics, as a text table."""
    rows = [("fused", "fused"), *((m, m) for m in modalities)]
    lines = [f"{'head':<12}{'val (best)':>12}{'test (best)':>13}{'test (last)':>13}"]
    for label, key in rows:
        cells = [summary.get(f"metric/val/{key}"), summary.get(f"metric/test/{key}"), summary.get(f"final/metric/test/{key}")]
        lines.append(f"{label:<12}" + "".join(f"{c:>12.4f} " if c is not None else f"{'-':>12} " for c in cells))
    return "\n".join(lines)


@click.command("train")
@click.option("--preset", type=click.Choice(list(PRESETS)), help="Start from the paper's settings for a task; other options override them.")
@click.option("--dataset", type=click.Choice(list(DATASETS)), help="Dataset to train on.")
@click.option("--modalities", help="Comma-separated modalities (default: the dataset's default pair).")
@click.option("--fusion", type=click.Choice(list(FUSIONS)), default="concat", show_default=True)
@click.option("--method", type=click.Choice(list(METHODS)), default="miles", show_default=True)
@click.option("--tau", type=float, help="MILES threshold tau (default 0.2).")
@click.option("--mu", type=float, help="MILES reduction factor mu (default 0.5).")
@click.option("--param", "params", multiple=True, help="Any method hyperparameter, NAME=VALUE (repeatable).")
@click.option("--dataset-param", "dataset_params", multiple=True, help="A dataset option, NAME=VALUE (repeatable).")
@click.option("--epochs", type=int, default=30, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--weight-decay", type=float, default=0.0, show_default=True)
@optimizer_options
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--data-path", type=click.Path(file_okay=False, path_type=Path),
              help="Data folder, relative to the working directory: your own, one `miles data prepare` wrote, or avdigits' files.")
@click.option("--encoder", "encoders", multiple=True, metavar="MODALITY=NAME", help="A modality's encoder, e.g. audio=resnet18 (repeatable).")
@click.option("--pretrained", "pretrained", multiple=True, metavar="MODALITY=SOURCE",
              help="A modality's pretrained weights: a file or folder, imagenet, or a BERT name (repeatable).")
@click.option("--depth", "depths", multiple=True, metavar="MODALITY=N",
              help="A modality's encoder depth, instead of mlp_layers or cnn_depth, e.g. pix=4 (repeatable).")
@click.option("--model-param", "model_params", multiple=True, metavar="NAME=VALUE", help="An encoder setting, e.g. embed_dim=256 (repeatable).")
@click.option("--performance", "performance", multiple=True, metavar="NAME=VALUE",
              help="How the machine is used, e.g. loader_workers=4 or mixed_precision=false (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write epochs, events and summary as JSON lines.")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False, path_type=Path), help="Save checkpoints here after every epoch.")
@click.option("--resume", type=click.Path(file_okay=False, path_type=Path), help="Continue the run checkpointed in DIR (its spec; --epochs may extend it).")
@click.pass_context
def train_command(ctx: click.Context, **options: Any) -> None:
    """Train a multimodal network with MILES or a baseline, showing progress and a final table."""
    from trainer.checkpoint import CheckpointError
    from trainer.device import DeviceError
    from trainer.loop import Training

    resume: Path | None = options["resume"]
    start = 0
    if resume is not None:
        last = _read_last(resume)
        spec, start = last["config"], int(last["epoch"])
        if ctx.get_parameter_source("epochs") is not click.core.ParameterSource.DEFAULT:
            spec["epochs"] = options["epochs"]
        if ctx.get_parameter_source("device") is not click.core.ParameterSource.DEFAULT:
            spec["device"] = options["device"]
        checkpoint_dir: Path | None = resume
    else:
        if not options["dataset"] and not options["preset"]:
            raise click.UsageError("--dataset or --preset is required (or --resume DIR)")
        spec = _spec(ctx, options)
        checkpoint_dir = options["checkpoint_dir"]
    try:
        config = TrainConfig.model_validate(spec)
    except ValidationError as error:
        raise click.UsageError("invalid run spec:\n  " + "\n  ".join(map(str, explain(error)))) from None
    try:
        training = Training(config, checkpoint_dir=checkpoint_dir)
    except (DatasetError, DeviceError, ValueError) as error:  # ValueError: an encoder that cannot be built
        raise click.ClickException(str(error)) from None
    click.echo(f"{config.describe()}, {config.epochs} epochs on {training.device}", err=True)
    reporters: list[Any] = [ConsoleReporter(config.epochs, training.modalities, start=min(start, config.epochs), file=sys.stderr)]
    if options["out"]:
        reporters.append(JsonlReporter(options["out"], append=resume is not None))
    training.reporter = MultiReporter(*reporters)
    try:
        result = training.run(resume=resume is not None)
    except CheckpointError as error:
        raise click.ClickException(str(error)) from None
    click.echo(summary_table(result.summary, training.modalities))
    click.echo(f"best validation epoch: {result.summary['best_epoch']} of {result.epochs_completed}")
    if config.method == "miles":
        actions = result.summary.get("miles/actions", 0)
        per = ", ".join(f"{m} {result.summary.get(f'miles/slowed/{m}', 0)}" for m in training.modalities)
        click.echo(f"MILES acted in {actions} of {result.epochs_completed} epochs ({per})")
    if config.method == "mses":
        frozen = {key.rsplit("/", 1)[1]: epoch for key, epoch in result.summary.items() if key.startswith("mses/frozen_after/")}
        said = ", ".join(f"{group} after epoch {epoch:g}" for group, epoch in frozen.items()) or "nothing"
        click.echo(f"MSES froze {said}")

