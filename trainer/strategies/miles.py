"""MILES as a training strategy: joint training with auxiliary losses and the MILES schedule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer.methods import MilesParams
from trainer.miles import MilesScheduler, miles_decision
from trainer.strategies.base import EpochResult, Event, Strategy


class MilesStrategy(Strategy):
    """Loss of Eq. 3 (fused plus every auxiliary head); after each epoch, Algorithm 1 sets the
    modality learning rates of the next epoch from the conditional utilization (Eq. 4) that the
    loop measured on ``utilization_split``."""

    name = "miles"
    params: MilesParams

    def __init__(self, params: MilesParams, modalities: list[str], lr: float) -> None:
        super().__init__(params, modalities, lr)
        self.utilization_split = params.utilization_split
        self.scheduler: MilesScheduler | None = None

    def bind(self, optimizer: Any) -> None:
        super().bind(optimizer)
        groups = {m: self.group_index[m] for m in self.modalities}
        self.scheduler = MilesScheduler(optimizer, groups, self.lr, self.params.tau, self.params.mu)

    def on_epoch_end(self, result: EpochResult) -> list[Event]:
        assert self.scheduler is not None, "bind() the strategy to its optimizer first"
        decision = self.scheduler.apply(miles_decision(result.utilization, self.params.tau, self.params.mu))
        data = decision.to_dict() | {"learning_rates": self.learning_rates(), "split": self.utilization_split}
        return [Event("miles.decision", decision.message(self.lr), data)]

    def summary(self) -> dict[str, float]:
        assert self.scheduler is not None
        actions = self.scheduler.actions
        return {"miles/actions": sum(actions.values()), **{f"miles/slowed/{m}": n for m, n in actions.items()}}

    def state_dict(self) -> dict[str, Any]:
        assert self.scheduler is not None
        return {"scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        assert self.scheduler is not None
        self.scheduler.load_state_dict(state["scheduler"])
