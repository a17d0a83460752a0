"""The optimizer of a run (`TrainConfig.optimizer`), over a strategy's parameter groups.

Every strategy balances through the groups' rates (``param_groups[i]["lr"]``) or their gradients,
so any optimizer with per-group rates serves; these two are the ones the methods' papers use:
Adam (beta1 0.9, beta2 0.999, the paper's, MILES.md section 2) and SGD with momentum (OGM-GE and most
balancing baselines).
"""

from __future__ import annotations

from typing import Any

import torch


def build_optimizer(groups: list[dict[str, Any]], name: str, *, lr: float, weight_decay: float, momentum: float) -> torch.optim.Optimizer:
    """``name``'s optimizer over ``groups`` (each may carry its own ``lr``; ``lr`` is the default)."""
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; allowed: adam, sgd")
