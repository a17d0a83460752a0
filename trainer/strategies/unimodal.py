"""One modality alone: the ceiling of each modality (MILES.md sections 5 and 8)."""

from __future__ import annotations

from trainer.spec import SpecModel
from trainer.strategies.base import Strategy


class UnimodalStrategy(Strategy):
    """Trains the run's one modality: its encoder and its linear head, the same modules as in the multimodal
    model (`MultiHeadFusionNet` with one modality builds no fusion). The objective is the head's loss alone;
    the model reports the head's logits as "fused" too, so the metrics read ``metric/<split>/<modality>``
    (what the comparison tables read for a run of one modality) and the same under ``fused``.

    BalanceBenchmark's unimodal baseline trains one encoder with its own classifier in the same way; its
    classifier is the fusion module fed one modality, where ours is the auxiliary head (project choice:
    the head whose metric every other method reports for that modality).
    """

    name = "unimodal"

    def __init__(self, params: SpecModel, modalities: list[str], lr: float) -> None:
        if len(modalities) != 1:
            raise ValueError(f"unimodal trains exactly one modality, got {', '.join(modalities)}")
        super().__init__(params, modalities, lr)
        # The "fused" logits are the head's: counting them again would double the head's loss.
        self.loss_weights = {"fused": 0.0, modalities[0]: 1.0}
