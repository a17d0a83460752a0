"""``miles tune-lr``: the best learning rate of one modality trained alone, for the MSLR methods.

Each rate of the grid trains a `unimodal` run (the modality's encoder and head, nothing fused) without
touching the test split; the best rate is the one whose best validation metric is highest (ties: the
smaller rate). It is printed and recorded in ``$MILES_HOME/tuned_lrs.json`` under the dataset and the
modality (`trainer.tuned_rates`), where ``mslr_keep``, ``mslr_smooth`` and ``mslr_dynamic`` take it when a
run gives no ``params.lrs``. torch is imported inside the command, as for ``miles train``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from trainer.cli_values import optimizer_options, split_list
from trainer.config import TrainConfig
from trainer.datasets import DATASETS, DatasetError
from trainer.reporting import BaseReporter
from trainer.spec import explain
from trainer.tuned_rates import record_tuned

DEFAULT_LRS = "1e-4,3e-4,1e-3,3e-3,1e-2"


@dataclass(frozen=True)
class Trial:
    lr: float
    val: float  # best validation metric of the modality's head
    best_epoch: int


def _rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in split_list(text) or []]
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected comma-separated learning rates, e.g. {DEFAULT_LRS}", param_hint="--lrs") from None
    bad = [rate for rate in rates if not 0 < rate <= 1]
    if not rates or bad:
        raise click.BadParameter(f"every rate must satisfy 0 < lr <= 1 (got {text!r})", param_hint="--lrs")
    return sorted(set(rates))


def best_trial(trials: list[Trial]) -> Trial:
    """The highest validation metric; on a tie the smaller rate (the steadier choice)."""
    return max(trials, key=lambda t: (t.val, -t.lr))


def table(trials: list[Trial], best: Trial, metric: str) -> str:
    lines = [f"{'lr':>10}  {'val ' + metric:>14}  {'best epoch':>10}"]
    for trial in trials:
        mark = "  <- best" if trial is best else ""
        lines.append(f"{trial.lr:>10.3g}  {trial.val:>14.4f}  {trial.best_epoch:>10}{mark}")
    return "\n".join(lines)


class _EpochBar(BaseReporter):
    """Advances one progress bar by an epoch of any trial."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def on_epoch(self, epoch: int, metrics: Mapping[str, float]) -> None:
        if "loss/train" in metrics:
            self.bar.update(1)


@click.command("tune-lr")
@click.option("--dataset", type=click.Choice(list(DATASETS)), required=True, help="Dataset to train on.")
@click.option("--modality", required=True, help="The modality to train alone.")
@click.option("--lrs", default=DEFAULT_LRS, show_default=True, help="Comma-separated learning rates to try.")
@click.option("--epochs", type=int, default=10, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--data-path", type=click.Path(file_okay=False, path_type=Path), help="Data folder, as for `miles train`.")
@click.option("--dataset-param", "dataset_params", multiple=True, help="A dataset option, NAME=VALUE (repeatable).")
@optimizer_options
@click.option("--depth", type=int, help="The depth of the modality's encoder (model.depths), when not the default one.")
@click.option("--no-record", is_flag=True, help="Print the table and the best rate without recording it.")
def tune_lr_command(**options: Any) -> None:
    """Find one modality's best learning rate alone (on validation) and record it for the MSLR methods."""
    from tqdm.auto import tqdm

    from trainer.cli import _assignments
    from trainer.device import DeviceError
    from trainer.loop import Training

    rates = _rates(options["lrs"])
    spec: dict[str, Any] = {
        "dataset": options["dataset"], "modalities": [options["modality"]], "method": "unimodal",
        "epochs": options["epochs"], "batch_size": options["batch_size"], "seed": options["seed"],
        "device": options["device"], "evaluate_test": False, "optimizer": options["optimizer"], "momentum": options["momentum"],
        "dataset_params": _assignments(options["dataset_params"], "--dataset-param"),
    }
    if options["data_path"]:
        spec["data_path"] = str(options["data_path"].expanduser().resolve())
    if options["depth"] is not None:
        spec["model"] = {"depths": {options["modality"]: options["depth"]}}
    try:
        configs = [TrainConfig.model_validate(spec | {"lr": rate}) for rate in rates]
    except ValidationError as error:
        raise click.UsageError("invalid run spec:\n  " + "\n  ".join(map(str, explain(error)))) from None
    modality = options["modality"]
    trials: list[Trial] = []
    metric = "metric"
    with tqdm(total=len(rates) * options["epochs"], unit="epoch", file=sys.stderr, dynamic_ncols=True, desc=f"tune-lr {modality}") as bar:
        for config in configs:
            bar.set_postfix_str(f"lr {config.lr:.3g}")
            try:
                training = Training(config, _EpochBar(bar))
            except (DatasetError, DeviceError, ValueError) as error:
                raise click.ClickException(str(error)) from None
            metric = "F1" if training.info.task == "multilabel" else "accuracy"
            result = training.run()
            trials.append(Trial(config.lr, result.summary[f"metric/val/{modality}"], result.summary["best_epoch"]))
    best = best_trial(trials)
    click.echo(table(trials, best, metric))
    click.echo(f"best learning rate for {modality} on {options['dataset']}: {best.lr:.3g} (validation {metric} {best.val:.4f})")
    if not options["no_record"]:
        path = record_tuned(options["dataset"], modality, {
            "lr": best.lr, "val": best.val, "metric": metric, "epochs": options["epochs"], "batch_size": options["batch_size"],
            "seed": options["seed"], "optimizer": options["optimizer"], "table": {f"{t.lr:g}": t.val for t in trials},
        } | ({"depth": options["depth"]} if options["depth"] is not None else {}))
        click.echo(f"recorded in {path}: mslr_keep, mslr_smooth and mslr_dynamic use it when a run gives no params.lrs")
