"""The optimizer of a run (`TrainConfig.optimizer`), over a strategy's parameter groups.

Every strategy balances through the groups' rates (``param_groups[i]["lr"]``) or their gradients,
so any optimizer with per-group rates serves; these two are the ones the methods' papers use:
Adam (beta1 0.9, beta2 0.999, the paper's, MILES.md section 2) and SGD with momentum (OGM-GE and most
balancing baselines).
"""

from __future__ import annotations

from typing import Any

import torch

from trainer.config import TrainConfig


def build_optimizer(groups: list[dict[str, Any]], config: TrainConfig) -> torch.optim.Optimizer:
    """The run's optimizer over ``groups`` (each may carry its own ``lr``; the run's is the default)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum or 0.0, weight_decay=config.weight_decay)
    return torch.optim.Adam(groups, lr=config.lr, betas=(0.9, 0.999), weight_decay=config.weight_decay)
