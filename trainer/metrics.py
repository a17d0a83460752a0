"""Task metrics and losses: accuracy and cross-entropy, or macro F1 and binary cross-entropy.

`HeadMeters` accumulates every head at once, on the run's device, and
synchronises once per epoch: measuring the training pass costs a handful of
tensor operations per batch and no host round trip.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from trainer.datasets.base import Task


def loss_fn(task: Task):
    """Cross-entropy for single-label tasks, binary cross-entropy for multilabel ones (MILES.md section 2)."""
    return F.cross_entropy if task == "single_label" else F.binary_cross_entropy_with_logits


class HeadMeters:
    """Mean loss and the task metric (accuracy, or macro F1 for multilabel) of several heads."""

    def __init__(self, heads: Sequence[str], task: Task, num_classes: int, device: torch.device) -> None:
        self.heads = list(heads)
        self.task = task
        self.count = 0
        self.loss = torch.zeros(len(self.heads), device=device)
        if task == "single_label":
            self.correct = torch.zeros(len(self.heads), device=device, dtype=torch.long)
        else:
            self.counts = torch.zeros(len(self.heads), 3, num_classes, device=device)  # TP, FP, FN per class

    @torch.no_grad()
    def update(self, logits: Sequence[Tensor], labels: Tensor, losses: Sequence[Tensor] | None = None) -> None:
        """Add one batch: each head's logits (in `heads` order) and, optionally, its mean loss."""
        n = labels.shape[0]
        self.count += n
        if losses is not None:
            self.loss.add_(torch.stack(list(losses)), alpha=n)
        stacked = torch.stack(list(logits))  # [heads, batch, classes]
        if self.task == "single_label":
            self.correct += (stacked.argmax(2) == labels).sum(1)
        else:
            predicted = stacked > 0
            actual = (labels > 0.5).expand_as(predicted)
            self.counts += torch.stack(
                [(predicted & actual).sum(1), (predicted & ~actual).sum(1), (~predicted & actual).sum(1)], dim=1
            ).float()

    def results(self) -> dict[str, tuple[float, float]]:
        """``{head: (metric, mean loss)}``."""
        if self.count == 0:
            return {h: (0.0, 0.0) for h in self.heads}
        losses = (self.loss / self.count).tolist()
        if self.task == "single_label":
            metrics = (self.correct.double() / self.count).tolist()
        else:
            metrics = [macro_f1(*self.counts[i]) for i in range(len(self.heads))]
        return {h: (metrics[i], losses[i]) for i, h in enumerate(self.heads)}


def macro_f1(tp: Tensor, fp: Tensor, fn: Tensor) -> float:
    """Unweighted mean over classes of ``2TP / (2TP + FP + FN)``; a class with none of these scores 0
    (scikit-learn's ``f1_score(average="macro", zero_division=0)``)."""
    denominator = 2 * tp + fp + fn
    per_class = torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), torch.zeros_like(tp))
    return float(per_class.mean())
