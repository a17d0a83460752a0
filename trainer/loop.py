"""The training loop shared by every method.

Per epoch: one pass over the training split (its metrics come from this
pass), one evaluation of the validation split (and of the training split when
the utilization is measured there), the conditional utilization of each
modality, the strategy's end-of-epoch hook (MILES decides the next epoch's
rates here), the report, and a checkpoint. At the end the test split
is evaluated with the final weights and with those of the best validation
epoch (the summary's numbers), unless the config says not to (a sweep's trials).
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from trainer import checkpoint
from trainer.acceleration import Acceleration
from trainer.config import TrainConfig
from trainer.datasets import SPLITS, Dataset, Split, Standardization, load_dataset
from trainer.datasets.prepared import StoredSplit
from trainer.device import resolve_device
from trainer.encoders import RandomInitWarning
from trainer.methods import METHODS
from trainer.metrics import HeadMeters, loss_fn
from trainer.miles import conditional_utilization, utilization_gap
from trainer.models import MultiHeadFusionNet
from trainer.optimizers import build_optimizer
from trainer.reporting import BaseReporter, Reporter
from trainer.strategies.base import EpochResult, SplitScores, Strategy
from trainer.streaming import EVAL_BATCH, StreamingBatches
from trainer.trials import TrialTrainings

# A prepared dataset larger than this in memory (as float32 inputs) streams from disk under data_loading "auto".
STREAM_ABOVE_BYTES = 2 * 2**30


@dataclass
class TrainResult:
    status: Literal["succeeded", "cancelled"]
    epochs_completed: int
    summary: dict[str, Any]


class Batches:
    """One split's tensors on the run's device, served in batches."""

    def __init__(self, split: Split, device: torch.device) -> None:
        self.inputs = {m: torch.as_tensor(x).to(device) for m, x in split.inputs.items()}
        self.labels = torch.as_tensor(split.labels).to(device)
        self.size = len(split)
        self.device = device

    def __iter__(self):
        return self.ordered(EVAL_BATCH)

    def ordered(self, batch_size: int, order: Tensor | None = None):
        for start in range(0, self.size if order is None else len(order), batch_size):
            if order is None:
                rows: slice | Tensor = slice(start, start + batch_size)
            else:
                rows = order[start : start + batch_size]
            yield {m: x[rows] for m, x in self.inputs.items()}, self.labels[rows]

    def shuffled(self, batch_size: int, generator: torch.Generator):
        order = torch.randperm(self.size, generator=generator).to(self.device)
        return self.ordered(batch_size, order)


class Training:
    """One run: data, model, strategy and optimizer, trained epoch by epoch."""

    def __init__(
        self,
        config: TrainConfig,
        reporter: Reporter | None = None,
        *,
        checkpoint_dir: str | Path | None = None,
        dataset: Dataset | None = None,
    ) -> None:
        self.config = config
        self.reporter: Reporter = reporter or BaseReporter()
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.device = resolve_device(config.device)
        self.acceleration = Acceleration(
            self.device, mixed_precision=config.performance.mixed_precision, channels_last=config.performance.channels_last,
        )
        torch.manual_seed(config.seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RandomInitWarning)
            data = dataset if dataset is not None else load_dataset(config)
            self.info = data.info
            self.modalities = list(config.modalities or data.info.default_modalities)
            self.heads = ["fused", *self.modalities]
            self.train_data, self.val_data, self.test_data = self._batches(data)
            self.standardization = dict(data.standardization)
            self.criterion = loss_fn(data.info.task)
            self.model = self.acceleration.prepare_model(MultiHeadFusionNet(
                {m: data.info.modalities[m] for m in self.modalities}, config.fusion, data.info.num_classes, config.model
            ).to(self.device))
        # Said once the run starts: what the data preparation left out, encoders without their weights.
        self.notes = [*data.notes, *(str(w.message) for w in caught if issubclass(w.category, RandomInitWarning))]
        for warning in caught:
            if not issubclass(warning.category, RandomInitWarning):
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        method = METHODS[config.method]
        self.strategy: Strategy = method.strategy_class()(
            method.params.model_validate(config.params), self.modalities, config.lr
        )
        self.model.detach_aux = self.strategy.detach_aux
        optimizer = functools.partial(build_optimizer, config=config)  # the run's, over any groups (G-Blend's trials)
        self.optimizer = optimizer(self.strategy.param_groups(self.model))
        self.strategy.bind(self.optimizer)
        self.trials = TrialTrainings(
            self.model, self.train_data, self.criterion, self._meters, self.acceleration, self.heads,
            config.batch_size, optimizer, config.seed,
        )
        self.shuffle = torch.Generator().manual_seed(config.seed)
        self.epoch = 0
        self.best_epoch = 0
        self.best_val: dict[str, float] = {}
        self.best_state: dict[str, Tensor] | None = None
        self.elapsed = 0.0
        # Training samples this process has passed through the model: a worker's sampling thread reads it
        # for the throughput (sys/samples_per_s); an int attribute costs the loop one addition per batch.
        self.samples_seen = 0

    def _batches(self, data: Dataset) -> list[Batches | StreamingBatches]:
        """Each split in memory, or streamed from its prepared folder (``performance.data_loading``)."""
        splits = [data.split(s) for s in SPLITS]
        loading = self.config.performance.data_loading
        self.streaming = all(isinstance(s, StoredSplit) for s in splits) and (
            loading == "stream"
            or (loading == "auto" and sum(s.decoded_bytes() for s in splits) > STREAM_ABOVE_BYTES)  # type: ignore[attr-defined]
        )
        if self.streaming:
            workers = self.config.performance.loader_workers
            return [StreamingBatches(s, self.device, workers) for s in splits]  # type: ignore[arg-type]
        return [Batches(s.in_memory() if isinstance(s, StoredSplit) else s, self.device) for s in splits]

    # -- measuring -------------------------------------------------------------------------

    def _meters(self, heads: list[str]) -> HeadMeters:
        return HeadMeters(heads, self.info.task, self.info.num_classes, self.device)

    def _scores(self, meters: HeadMeters, masked: HeadMeters | None) -> SplitScores:
        results = meters.results()
        metric = {h: results[h][0] for h in self.heads}
        loss = {h: results[h][1] for h in self.heads}
        loss["total"] = sum(self.strategy.loss_weights[h] * loss[h] for h in self.heads)
        without = {m: value for m, (value, _) in masked.results().items()} if masked else {}
        return SplitScores(metric, loss, without)

    def _update_masked(self, masked: HeadMeters, features: Mapping[str, Tensor], labels: Tensor) -> None:
        detached = {m: z.detach() for m, z in features.items()}
        masked.update([self.model.fuse_without(detached, m) for m in self.modalities], labels)

    @torch.no_grad()
    def evaluate(self, data: Batches | StreamingBatches) -> SplitScores:
        """Metric and loss of every head on a split (and the masked fusions, for > 2 modalities)."""
        self.model.eval()
        meters = self._meters(self.heads)
        masked = self._meters(self.modalities) if len(self.modalities) > 2 else None
        for inputs, labels in data:
            with self.acceleration.autocast():
                outputs = self.model(self.acceleration.inputs(inputs))
                logits = [outputs.fused, *outputs.heads.values()]
                meters.update(logits, labels, [self.criterion(head, labels) for head in logits])
                if masked:
                    self._update_masked(masked, outputs.features, labels)
        self.model.train()
        return self._scores(meters, masked)

    # -- training --------------------------------------------------------------------------

    def train_epoch(self) -> SplitScores | None:
        """One pass over the training split; None when the reporter asked to stop."""
        self.model.train()
        meters = self._meters(self.heads)
        needs_masked = len(self.modalities) > 2 and self.strategy.utilization_split == "train_running"
        masked = self._meters(self.modalities) if needs_masked else None
        for inputs, labels in self.train_data.shuffled(self.config.batch_size, self.shuffle):
            if self.reporter.should_stop():
                return None
            with self.acceleration.autocast():
                outputs = self.model(self.acceleration.inputs(inputs))
                logits = [outputs.fused, *outputs.heads.values()]
                losses = [self.criterion(head, labels) for head in logits]
            self.optimizer.zero_grad(set_to_none=True)
            self.acceleration.backward(self._objective(losses), self.optimizer)
            self.strategy.after_backward(self.model, outputs, labels)
            self.acceleration.step(self.optimizer)
            self.samples_seen += labels.shape[0]
            meters.update(logits, labels, losses)
            if masked:
                with torch.no_grad(), self.acceleration.autocast():
                    self._update_masked(masked, outputs.features, labels)
        return self._scores(meters, masked)

    def _utilization(self, train: SplitScores, val: SplitScores) -> tuple[dict[str, float], float]:
        """Eq. 4 on the strategy's split, and the gap; NaN when the fused metric is 0, none for one modality.

        ``train`` evaluates the training split after the epoch with the same code as validation (eval mode,
        no gradient, the epoch's final weights; MILES.md section 8); ``train_running`` reads the metrics the
        training pass accumulated while the weights moved, in train mode (cheaper, an approximation)."""
        if len(self.modalities) < 2:
            return {}, math.nan
        split = self.strategy.utilization_split
        scores = {"val": val, "train_running": train}.get(split) or self.evaluate(self.train_data)
        utilization = conditional_utilization(scores.metric["fused"], scores.heads(self.modalities), masked=scores.masked or None)
        return utilization, utilization_gap(utilization)

    def _objective(self, losses: list[Tensor]) -> Tensor:
        """Eq. 3: ``L = L(y_fused, y) + sum_m L(y_m, y)``, each term weighted by the strategy (1 by default)."""
        weights = self.strategy.loss_weights
        terms = [loss if weights[h] == 1.0 else weights[h] * loss for h, loss in zip(self.heads, losses, strict=True)]
        total = terms[0]
        for term in terms[1:]:
            total = total + term
        return total

    def _epoch_metrics(
        self, train: SplitScores, val: SplitScores, utilization: Mapping[str, float], delta: float,
        rates: Mapping[str, float], seconds: float,
    ) -> dict[str, float]:
        metrics = {"loss/train": train.loss["total"], "loss/val": val.loss["total"]}
        for split, scores in (("train", train), ("val", val)):
            for head in self.heads:
                metrics[f"metric/{split}/{head}"] = scores.metric[head]
                metrics[f"loss/{split}/{head}"] = scores.loss[head]
        if math.isfinite(delta):
            metrics.update({f"util/{m}": u for m, u in utilization.items()})
            metrics["util/delta"] = delta
        metrics.update({f"lr/{group}": rate for group, rate in rates.items()})
        metrics.update(self.strategy.epoch_metrics())
        metrics["time/epoch"] = seconds
        return metrics

    def run(self, resume: bool = False) -> TrainResult:
        if resume and self.checkpoint_dir and (self.checkpoint_dir / checkpoint.LAST).exists():
            self._restore()
            self._event("run.resumed", f"resumed after epoch {self.epoch} from {self.checkpoint_dir}")
        else:
            sizes = " / ".join(f"{b.size} {s}" for s, b in zip(("train", "val", "test"), self._splits(), strict=True))
            how = [self.acceleration.describe()] if self.device.type == "cuda" else []
            if self.streaming:
                how.append(f"streaming from disk with {self.config.performance.loader_workers} loader workers")
            self._event("run.started", f"training {self.config.describe()} on {self.device}"
                        + (f" ({'; '.join(how)})" if how else "") + f": {sizes}")
            for note in self.notes:
                self._event("run.note", note)
        while self.epoch < self.config.epochs:
            # Before the epoch's clock starts: a strategy's trial trainings are timed on their own.
            prepared = self.strategy.before_epoch(self.epoch + 1, self.trials)
            started = time.perf_counter()
            rates = self.strategy.learning_rates()  # the rates in effect during this epoch
            train = self.train_epoch()
            if train is None:
                return TrainResult("cancelled", self.epoch, {})
            val = self.evaluate(self.val_data)
            self.epoch += 1
            utilization, delta = self._utilization(train, val)
            events = self.strategy.on_epoch_end(EpochResult(self.epoch, train, val, utilization, delta))
            seconds = time.perf_counter() - started
            self.elapsed += seconds
            metrics = self._epoch_metrics(train, val, utilization, delta, rates, seconds)
            if self.best_state is None or val.metric["fused"] > self.best_val["metric/val/fused"]:
                self.best_epoch = self.epoch
                self.best_val = {k: v for k, v in metrics.items() if k.startswith("metric/val/")}
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                self._save_best()
            self.reporter.on_epoch(self.epoch, metrics)
            for event in [*prepared, *events]:
                self._event(event.kind, event.message, event.data)
            self._save_last()
            if self.strategy.should_stop():
                self._event("run.stopped_early", f"{self.config.method} ended training after epoch {self.epoch}")
                break
        return self._finish()

    def _splits(self) -> tuple[Batches | StreamingBatches, ...]:
        return self.train_data, self.val_data, self.test_data

    def _test_metrics(self) -> dict[str, float]:
        scores = self.evaluate(self.test_data)
        return {f"metric/test/{h}": scores.metric[h] for h in self.heads} | {"loss/test": scores.loss["total"]}

    def _finish(self) -> TrainResult:
        best, final = self._test_best_and_last() if self.config.evaluate_test else ({}, {})
        summary: dict[str, Any] = {
            "best_epoch": self.best_epoch,
            "epochs_completed": self.epoch,
            **self.best_val,
            **best,
            **{f"final/{k}": v for k, v in final.items()},
            **self.strategy.summary(),
            "time/train": self.elapsed,
        }
        self._event("run.finished", self._finish_message(summary))
        self.reporter.on_summary(summary)
        return TrainResult("succeeded", self.epoch, summary)

    def _test_best_and_last(self) -> tuple[dict[str, float], dict[str, float]]:
        """Test metrics with the weights of the best validation epoch and with the last ones, each reported."""
        final = self._test_metrics()
        self.reporter.on_epoch(self.epoch, final)
        assert self.best_state is not None
        if self.best_epoch != self.epoch:
            last_state = self.model.state_dict()
            last_state = {k: v.clone() for k, v in last_state.items()}
            self.model.load_state_dict(self.best_state)
            best = self._test_metrics()
            self.model.load_state_dict(last_state)
            self.reporter.on_epoch(self.best_epoch, best)
        else:
            best = final
        return best, final

    def _finish_message(self, summary: Mapping[str, Any]) -> str:
        split = "test" if self.config.evaluate_test else "validation"
        key = "test" if self.config.evaluate_test else "val"
        heads = ", ".join(f"{m} {summary[f'metric/{key}/{m}']:.3f}" for m in self.modalities)
        untested = "" if self.config.evaluate_test else " (the test split was not evaluated)"
        return (
            f"finished {self.epoch} epochs; best validation epoch {self.best_epoch}: "
            f"{split} fused {summary[f'metric/{key}/fused']:.3f} ({heads}){untested}"
        )

    def _event(self, kind: str, message: str, data: Mapping[str, Any] | None = None) -> None:
        self.reporter.on_event(self.epoch, kind, message, dict(data or {}))

    # -- checkpoints -----------------------------------------------------------------------

    def _save_best(self) -> None:
        if self.checkpoint_dir:
            checkpoint.save(
                self.checkpoint_dir,
                checkpoint.BEST,
                {"epoch": self.epoch, "config": self.config.model_dump(), "model": self.best_state,
                 "modalities": self.modalities, "classes": list(self.info.classes),
                 "standardization": checkpoint.standardization_state(self.standardization)},
            )

    def _save_last(self) -> None:
        if not self.checkpoint_dir:
            return
        rng = {"torch": torch.get_rng_state(), "shuffle": self.shuffle.get_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        checkpoint.save(
            self.checkpoint_dir,
            checkpoint.LAST,
            {
                "epoch": self.epoch,
                "config": self.config.model_dump(),
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "strategy": self.strategy.state_dict(),
                "scaler": self.acceleration.state_dict(),
                "rng": rng,
                "best": {"epoch": self.best_epoch, "val": self.best_val},
                "elapsed": self.elapsed,
                "standardization": checkpoint.standardization_state(self.standardization),
            },
        )

    def _scale_as(self, saved: Mapping[str, Standardization]) -> None:
        """Scale the inputs as the checkpointed run had them, with its statistics (or none): the
        files may have changed since, and the weights are only right on inputs scaled the same way."""
        for modality in self.standardization.keys() | saved.keys():
            now, then = self.standardization.get(modality), saved.get(modality)
            if now is not None and now.matches(then):
                continue
            for data in self._splits():
                x = data.inputs[modality]
                if now is not None:
                    x = x * _like(now.std, x) + _like(now.mean, x)
                if then is not None:
                    x = (x - _like(then.mean, x)) / _like(then.std, x)
                data.inputs[modality] = x
        self.standardization = dict(saved)

    def _restore(self) -> None:
        assert self.checkpoint_dir is not None
        path = self.checkpoint_dir / checkpoint.LAST
        state = checkpoint.load(path, self.device)
        checkpoint.check_compatible(state["config"], self.config.model_dump(), path)
        self._scale_as(checkpoint.read_standardization(state))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.strategy.load_state_dict(state["strategy"])
        self.acceleration.load_state_dict(state.get("scaler", {}))
        torch.set_rng_state(state["rng"]["torch"].cpu())
        self.shuffle.set_state(state["rng"]["shuffle"].cpu())
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"].cpu(), self.device)
        self.epoch = state["epoch"]
        self.best_epoch = state["best"]["epoch"]
        self.best_val = state["best"]["val"]
        self.elapsed = state["elapsed"]
        self.best_state = checkpoint.load(self.checkpoint_dir / checkpoint.BEST, self.device)["model"]


def _like(values: np.ndarray, x: Tensor) -> Tensor:
    return torch.as_tensor(values, dtype=x.dtype, device=x.device)


def train(
    config: TrainConfig,
    reporter: Reporter | None = None,
    *,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    dataset: Dataset | None = None,
) -> TrainResult:
    """Train ``config`` to the end (or until ``reporter.should_stop()``), reporting every epoch.

    With ``resume=True`` and a ``last.pt`` in ``checkpoint_dir``, training continues after the
    epoch that checkpoint recorded, giving the same metrics as an uninterrupted run on CPU.
    """
    return Training(config, reporter, checkpoint_dir=checkpoint_dir, dataset=dataset).run(resume=resume)
