"""The training methods a run can use, with their hyperparameters.

This module is the catalogue only (no torch import), so that the server can
validate a submitted spec and describe the methods without loading PyTorch.
Each entry names the `trainer.strategies` class that implements it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from trainer.spec import SpecModel

if TYPE_CHECKING:
    from trainer.strategies.base import Strategy


class NoParams(SpecModel):
    """This method has no hyperparameters of its own."""


class MilesParams(SpecModel):
    """MILES hyperparameters (MILES.md section 4; the paper's recommended start is tau 0.2, mu 0.5)."""

    tau: float = Field(
        0.2, ge=0, le=1,
        description="Imbalance threshold: MILES acts when the utilization gap |u_A - u_B| exceeds tau.",
    )
    mu: float = Field(
        0.5, gt=0, le=1,
        description="Reduction factor: the dominant modality's learning rate becomes mu * lr for the next epoch.",
    )
    utilization_split: Literal["val", "train"] = Field(
        "val",
        description="Split whose metrics give the conditional utilization: 'val' (paper default) or "
        "'train' (metrics of the training pass; the paper's ablation finds it about as good).",
    )


@dataclass(frozen=True)
class MethodSpec:
    name: str
    title: str
    description: str
    params: type[SpecModel]
    strategy: str  # "module:Class" in trainer.strategies, imported on demand
    # A run of it trains one modality alone (a modality's ceiling): its config names exactly one
    # modality, and a grid expands it to one cell per modality of the pair instead of per fusion.
    single_modality: bool = False

    def strategy_class(self) -> type[Strategy]:
        module, _, name = self.strategy.partition(":")
        return getattr(importlib.import_module(module), name)

    def params_schema(self) -> dict[str, Any]:
        return self.params.model_json_schema()


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(
            "joint",
            "Joint training (vanilla)",
            "The fused loss alone. The per-modality heads are trained on detached features, so they "
            "measure each encoder without shaping it: the reference every table compares against.",
            NoParams,
            "trainer.strategies.joint:JointStrategy",
        ),
        MethodSpec(
            "joint_aux",
            "Joint training with auxiliary losses",
            "The fused loss plus one auxiliary loss per modality head (MILES's Eq. 3) and no balancing: "
            "separates what MILES gains from its auxiliary losses from what it gains from its schedule.",
            NoParams,
            "trainer.strategies.joint:JointAuxStrategy",
        ),
        MethodSpec(
            "miles",
            "MILES",
            "Modality-Informed Learning rate Scheduler: after each epoch, lowers the learning rate of "
            "the modality the model relies on most when the conditional utilization gap exceeds tau.",
            MilesParams,
            "trainer.strategies.miles:MilesStrategy",
        ),
    )
}
