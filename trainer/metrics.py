"""Task metrics and losses: accuracy and cross-entropy, or macro F1 and binary cross-entropy.

Meters accumulate on the run's device and synchronise once per epoch, so
measuring the training pass costs no per-batch host round trip.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from trainer.datasets.base import Task


def loss_fn(task: Task):
    """Cross-entropy for single-label tasks, binary cross-entropy for multilabel ones (MILES.md section 2)."""
    return F.cross_entropy if task == "single_label" else F.binary_cross_entropy_with_logits


class Meter:
    """Mean loss and the task metric of one head over many batches."""

    def __init__(self, task: Task, num_classes: int, device: torch.device) -> None:
        self.task = task
        self.loss = torch.zeros((), device=device)
        self.count = 0
        if task == "single_label":
            self.correct = torch.zeros((), device=device, dtype=torch.long)
        else:
            self.counts = torch.zeros(3, num_classes, device=device)  # TP, FP, FN per class

    def update(self, logits: Tensor, labels: Tensor, loss: Tensor) -> None:
        n = labels.shape[0]
        self.loss += loss.detach() * n
        self.count += n
        if self.task == "single_label":
            self.correct += (logits.detach().argmax(1) == labels).sum()
        else:
            predicted = logits.detach() > 0
            actual = labels > 0.5
            self.counts += torch.stack(
                [(predicted & actual).sum(0), (predicted & ~actual).sum(0), (~predicted & actual).sum(0)]
            ).float()

    def result(self) -> tuple[float, float]:
        """(metric, mean loss); metric is accuracy, or macro F1 for multilabel tasks."""
        if self.count == 0:
            return 0.0, 0.0
        loss = float(self.loss) / self.count
        if self.task == "single_label":
            return int(self.correct) / self.count, loss
        return macro_f1(self.counts[0], self.counts[1], self.counts[2]), loss


def macro_f1(tp: Tensor, fp: Tensor, fn: Tensor) -> float:
    """Unweighted mean over classes of ``2TP / (2TP + FP + FN)``; a class with none of these scores 0
    (scikit-learn's ``f1_score(average="macro", zero_division=0)``)."""
    denominator = 2 * tp + fp + fn
    per_class = torch.where(denominator > 0, 2 * tp / denominator.clamp(min=1), torch.zeros_like(tp))
    return float(per_class.mean())
