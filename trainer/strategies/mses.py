"""MSES, modality-specific early stopping (Fujimori et al., "Modality-specific learning rate control for
multimodal classification", ACPR 2019; MILES.md section 5, baseline 1)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch.nn.modules.batchnorm import _BatchNorm

from trainer.methods import MsesParams
from trainer.models import FUSION_GROUP, MultiHeadFusionNet
from trainer.strategies.base import EpochResult, Event, Strategy


class MsesStrategy(Strategy):
    """Multitask training of the fused and the modality-specific heads (the loss of Eq. 3, as the paper's
    multitask framework), each part stopped early on its own.

    After every epoch each modality's validation metric (its own head's) is compared with its best so far;
    once it has not improved for ``patience`` epochs in a row, that modality's group (encoder and auxiliary
    head) is frozen: learning rate 0, gradients off, batch-norm statistics fixed, and an ``mses.freeze``
    event. The fusion group (fusion and fused head) is watched the same way on the fused validation metric
    (project choice: the paper stops the multimodal classifier by its own validation score too). The run
    ends once every group is frozen, or when the epochs run out.

    Neither public code base named in MILES.md section 9 (OGM-GE, BalanceBenchmark) implements MSES, and we
    found no other; ours follows the paper's description as MILES.md section 5 restates it.
    Choices the paper leaves open: an improvement is a strictly higher metric; "frozen" also fixes the
    batch-norm running statistics (momentum 0), so a frozen encoder is a fixed set of weights and
    statistics while the rest trains; the default patience, 5, is ours (the paper's own value was not
    available to us). ``frozen/<group>`` is 1 from the epoch after which the group was frozen.
    """

    name = "mses"
    params: MsesParams

    def __init__(self, params: MsesParams, modalities: list[str], lr: float) -> None:
        super().__init__(params, modalities, lr)
        self.watched = [*modalities, FUSION_GROUP]
        self.best: dict[str, float] = {}
        self.best_epoch: dict[str, int] = {}
        self.frozen: dict[str, int] = {}  # group -> epoch after which it was frozen
        self.modules: dict[str, list[Any]] = {}

    def param_groups(self, model: MultiHeadFusionNet) -> list[dict[str, Any]]:
        self.modules = model.group_modules()
        return super().param_groups(model)

    def on_epoch_end(self, result: EpochResult) -> list[Event]:
        events = []
        for group in self.watched:
            if group in self.frozen:
                continue
            value = result.val.metric["fused" if group == FUSION_GROUP else group]
            if group not in self.best or value > self.best[group]:
                self.best[group], self.best_epoch[group] = value, result.epoch
                continue
            flat = result.epoch - self.best_epoch[group]
            if flat >= self.params.patience:
                self.frozen[group] = result.epoch
                self._freeze(group)
                what = "the fused head" if group == FUSION_GROUP else f"{group}'s head"
                message = (f"MSES froze {group} after epoch {result.epoch}: {what} has not improved on "
                           f"{self.best[group]:.4f} (epoch {self.best_epoch[group]}) for {flat} epochs")
                events.append(Event("mses.freeze", message, {
                    "group": group, "best": self.best[group], "best_epoch": self.best_epoch[group],
                    "value": value, "flat_epochs": flat, "patience": self.params.patience,
                    "learning_rates": self.learning_rates(),
                }))
        return events

    def _freeze(self, group: str) -> None:
        self.optimizer.param_groups[self.group_index[group]]["lr"] = 0.0
        for module in self.modules.get(group, []):
            for parameter in module.parameters():
                parameter.requires_grad_(False)
            for norm in module.modules():
                if isinstance(norm, _BatchNorm):
                    norm.momentum = 0.0

    def epoch_metrics(self) -> dict[str, float]:
        return {f"frozen/{group}": float(group in self.frozen) for group in self.watched}

    def should_stop(self) -> bool:
        return all(group in self.frozen for group in self.watched)

    def summary(self) -> dict[str, float]:
        return {f"mses/frozen_after/{group}": epoch for group, epoch in self.frozen.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"best": dict(self.best), "best_epoch": dict(self.best_epoch), "frozen": dict(self.frozen)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.best_epoch, self.frozen = dict(state["best"]), dict(state["best_epoch"]), dict(state["frozen"])
        for group in self.frozen:
            self._freeze(group)
