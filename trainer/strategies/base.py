"""The interface every training method implements."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from torch import Tensor, nn

from trainer.models import FUSION_GROUP, MultiHeadFusionNet, Outputs
from trainer.spec import SpecModel

if TYPE_CHECKING:
    from trainer.trials import TrialTrainings


@dataclass
class SplitScores:
    """One split's evaluation: the task metric and loss of every head."""

    metric: dict[str, float]  # "fused" and each modality
    loss: dict[str, float]  # "fused", each modality, and "total" (the training objective)
    masked: dict[str, float] = field(default_factory=dict)  # fused metric without z_m (> 2 modalities)

    def heads(self, modalities: list[str]) -> dict[str, float]:
        return {m: self.metric[m] for m in modalities}


@dataclass
class EpochResult:
    epoch: int
    train: SplitScores
    val: SplitScores
    utilization: dict[str, float]  # conditional utilization on the strategy's split (NaN: undefined)
    delta: float


@dataclass
class Event:
    kind: str  # dotted, e.g. "miles.decision"
    message: str
    data: dict[str, Any] = field(default_factory=dict)


class Strategy:
    """Hooks of the training loop; the defaults train every head with the same rate and weight.

    - `param_groups`: the optimizer's groups (one per modality, one for fusion and fused head)
      with their initial learning rates;
    - `before_epoch`: prepare an epoch (e.g. G-Blend's trial trainings), report events;
    - `loss_weights`: weight of each head's loss in the objective (read every batch);
    - `after_backward`: change gradients before the optimizer step (e.g. gradient modulation);
    - `on_epoch_end`: react to the epoch's evaluation (learning rates, freezing), report events;
    - `epoch_metrics`: per-epoch metrics of what the method moves, charted on the run page;
    - `should_stop`: end training early;
    - `summary`, `state_dict`, `load_state_dict`: for the run's summary and for resuming.
    """

    name: ClassVar[str]
    # Auxiliary heads trained on detached features measure the encoders without shaping them.
    detach_aux: ClassVar[bool] = False
    # Split whose metrics give the conditional utilization reported as util/* (and used by MILES).
    utilization_split: Literal["val", "train", "train_running"] = "val"

    def __init__(self, params: SpecModel, modalities: list[str], lr: float) -> None:
        self.params = params
        self.modalities = list(modalities)
        self.lr = lr
        self.loss_weights: dict[str, float] = {"fused": 1.0, **{m: 1.0 for m in modalities}}
        self.group_index: dict[str, int] = {}
        self.optimizer: Any = None

    def param_groups(self, model: MultiHeadFusionNet) -> list[dict[str, Any]]:
        return [
            {"name": name, "params": params, "lr": self.lr}
            for name, params in model.parameter_groups().items()
        ]

    def bind(self, optimizer: Any) -> None:
        self.optimizer = optimizer
        self.group_index = {group["name"]: i for i, group in enumerate(optimizer.param_groups)}

    def learning_rates(self) -> dict[str, float]:
        """Current rate of every group: ``{modality: lr, ..., "fusion": lr}``."""
        return {name: self.optimizer.param_groups[i]["lr"] for name, i in self.group_index.items()}

    def before_epoch(self, epoch: int, trials: TrialTrainings) -> list[Event]:
        """Called before epoch ``epoch`` (counted from 1) trains; ``trials`` trains copies of the model."""
        return []

    def after_backward(self, model: nn.Module, outputs: Outputs, labels: Tensor) -> None:
        """Called between ``backward()`` and ``optimizer.step()`` on every batch."""

    def on_epoch_end(self, result: EpochResult) -> list[Event]:
        return []

    def epoch_metrics(self) -> dict[str, float]:
        """Metrics of what the method moves, reported with the epoch's (e.g. ``frozen/<modality>``)."""
        return {}

    def should_stop(self) -> bool:
        return False

    def summary(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` saved (rates are restored with the optimizer)."""


__all__ = ["FUSION_GROUP", "EpochResult", "Event", "SplitScores", "Strategy"]
