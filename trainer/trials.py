"""Trial trainings: short trainings of a copy of the model on part of the training split.

A strategy that estimates something from how the model would learn (G-Blend's generalization and
overfitting per head) asks for one through `Strategy.before_epoch`. The run's own model, optimizer,
shuffling and random state are left exactly as they were, so a run with trials resumes and repeats
like any other.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from trainer.acceleration import Acceleration
from trainer.metrics import HeadMeters
from trainer.models import MultiHeadFusionNet
from trainer.streaming import EVAL_BATCH


class SplitBatches(Protocol):
    """`trainer.loop.Batches` or `trainer.streaming.StreamingBatches`."""

    size: int
    device: torch.device

    def ordered(self, batch_size: int, order: Tensor | None = None) -> Iterator[tuple[dict[str, Tensor], Tensor]]: ...


class SplitRows:
    """Some rows of a split, served in batches like the split itself."""

    def __init__(self, data: SplitBatches, rows: Tensor) -> None:
        self.data = data
        self.rows = rows
        self.size = len(rows)

    def __iter__(self) -> Iterator[tuple[dict[str, Tensor], Tensor]]:
        return self.data.ordered(EVAL_BATCH, self.rows.to(self.data.device))

    def shuffled(self, batch_size: int, generator: torch.Generator) -> Iterator[tuple[dict[str, Tensor], Tensor]]:
        order = self.rows[torch.randperm(self.size, generator=generator)]
        return self.data.ordered(batch_size, order.to(self.data.device))


@dataclass
class TrialLosses:
    """Mean loss of every head on the rows the trial trained on (``fit``) and on the held-out rows,
    before the trial's first epoch (``start``) and after its last (``end``)."""

    fit_start: dict[str, float]
    fit_end: dict[str, float]
    held_start: dict[str, float]
    held_end: dict[str, float]
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"fit_start": self.fit_start, "fit_end": self.fit_end, "held_start": self.held_start,
                "held_end": self.held_end, "seconds": self.seconds}


@dataclass
class TrialTrainings:
    """What a trial needs of the run; `trainer.loop.Training` builds it."""

    model: MultiHeadFusionNet
    train_data: SplitBatches
    criterion: Callable[[Tensor, Tensor], Tensor]
    meters: Callable[[list[str]], HeadMeters]
    acceleration: Acceleration
    heads: list[str]
    batch_size: int
    optimizer: Callable[[list[dict[str, Any]]], torch.optim.Optimizer]  # the run's, over the given groups
    seed: int
    seconds: float = 0.0  # every trial of the run so far, for its summary
    _splits: dict[float, tuple[SplitRows, SplitRows]] = field(default_factory=dict)

    def split(self, holdout: float) -> tuple[SplitRows, SplitRows]:
        """The rows to train on and the held-out rows: a fixed draw per run seed and fraction."""
        if holdout not in self._splits:
            size = self.train_data.size
            held = max(1, min(size - 1, round(holdout * size)))
            order = torch.randperm(size, generator=torch.Generator().manual_seed(self.seed))
            self._splits[holdout] = (SplitRows(self.train_data, order[held:].sort().values),
                                     SplitRows(self.train_data, order[:held].sort().values))
        return self._splits[holdout]

    def run(
        self, trained: Sequence[str], *, epochs: int, holdout: float, learning_rates: Mapping[str, float], tag: int = 0,
    ) -> TrialLosses:
        """Train a copy of the model for ``epochs`` epochs on the summed losses of the ``trained`` heads
        (the run's optimizer and settings, ``learning_rates`` per parameter group, a fresh state),
        on the training split less its ``holdout`` fraction, and measure every head before and after.
        ``tag`` varies the trial's shuffling (e.g. the epoch it starts at)."""
        started = time.perf_counter()
        fit, held = self.split(holdout)
        model = copy.deepcopy(self.model)
        model.detach_aux = False
        optimizer = self.optimizer(
            [{"params": params, "lr": learning_rates[name]} for name, params in model.parameter_groups().items()]
        )
        # Its own loss scaler (float16 only), so that the run's scale is left as it was.
        scaler = torch.amp.GradScaler("cuda", enabled=self.acceleration.scaler.is_enabled())
        index = [self.heads.index(h) for h in trained]
        devices = [self.train_data.device] if self.train_data.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.seed + 7919 * (tag + 1))
            shuffle = torch.Generator().manual_seed(self.seed + 104729 * (tag + 1))
            fit_start, held_start = self._losses(model, fit), self._losses(model, held)
            model.train()
            for _ in range(epochs):
                for inputs, labels in fit.shuffled(self.batch_size, shuffle):
                    with self.acceleration.autocast():
                        outputs = model(self.acceleration.inputs(inputs))
                        logits = [outputs.fused, *outputs.heads.values()]
                        loss = sum(self.criterion(logits[i], labels) for i in index)
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
            fit_end, held_end = self._losses(model, fit), self._losses(model, held)
        seconds = time.perf_counter() - started
        self.seconds += seconds
        return TrialLosses(fit_start, fit_end, held_start, held_end, seconds)

    @torch.no_grad()
    def _losses(self, model: MultiHeadFusionNet, rows: SplitRows) -> dict[str, float]:
        model.eval()
        meters = self.meters(self.heads)
        for inputs, labels in rows:
            with self.acceleration.autocast():
                outputs = model(self.acceleration.inputs(inputs))
                logits = [outputs.fused, *outputs.heads.values()]
                meters.update(logits, labels, [self.criterion(head, labels) for head in logits])
        model.train()
        return {h: loss for h, (_, loss) in meters.results().items()}
