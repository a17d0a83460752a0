"""G-Blend: gradient blending (Wang, Tran and Feiszli, "What Makes Training Multi-modal Classification
Networks Hard?", CVPR 2020), as MILES.md section 5 states it.

The loss is ``sum_i w_i L_i`` over the fused head and each modality's head, with (Eq. 7 of the paper,
section 3.3) ``w_i = (G_i / O_i^2) / Z``, ``Z`` making the weights sum to 1, and over a trial window
of ``n`` epochs from a checkpoint:

- ``G_i = L*_i(start) - L*_i(end)``: how much the held-out loss fell (generalization gained);
- ``O_i = Delta_i(end) - Delta_i(start)``, ``Delta_i = L*_i - L_i``: how much the gap between
  held-out and training loss grew (overfitting gained).

``L*`` is measured on a held-out part of the training split, as the paper does (its ``V``), never on
the validation split; ``L`` on the part the trial trained on, evaluated with the weights fixed at the
window's ends. ``mode`` offline: one estimate before the first epoch, from the initial weights;
online: a new estimate from the current weights every ``super_epoch`` epochs.

Where we follow BalanceBenchmark (balancemm/trainer/GBlending_trainer.py): the trials start from a
copy of the model, with a fresh optimizer, and last ``super_epoch`` epochs; the fused head's trial is
the naive fused model trained on the fused loss alone. Where we choose: the modalities' trials share
one copy of the model trained on the sum of the auxiliary losses (the encoders, heads and optimizer state
are disjoint, so this is each unimodal training at once, up to random draws), which makes two trials
per estimate instead of M + 1; a head whose held-out loss did not fall (``G_i <= 0``) gets weight 0
(BalanceBenchmark takes ``|G_i|``, which rewards a head that got worse), and if every head has ``G_i <=
0`` the weights stay uniform; losses are means over samples (BalanceBenchmark sums batch losses, which
mixes the two parts' sizes into ``O``); ``O_i^2`` is floored at 1e-12.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trainer.methods import GBlendParams
from trainer.strategies.base import Event, Strategy
from trainer.trials import TrialLosses, TrialTrainings

O_SQUARED_FLOOR = 1e-12


def generalization_and_overfitting(trial: TrialLosses, head: str) -> tuple[float, float]:
    """``(G_i, O_i)`` of one head from its trial (section 3.3 of the paper)."""
    g = trial.held_start[head] - trial.held_end[head]
    o = (trial.held_end[head] - trial.fit_end[head]) - (trial.held_start[head] - trial.fit_start[head])
    return g, o


def blending_weights(g: Mapping[str, float], o: Mapping[str, float]) -> dict[str, float]:
    """``w_i = (G_i / O_i^2) / Z`` with ``G_i <= 0`` counted as 0; uniform when no head generalized."""
    raw = {h: max(g[h], 0.0) / max(o[h] ** 2, O_SQUARED_FLOOR) for h in g}
    total = sum(raw.values())
    if total <= 0:
        return dict.fromkeys(g, 1.0 / len(g))
    return {h: w / total for h, w in raw.items()}


class GBlendStrategy(Strategy):
    """Loss weights of the fused and every unimodal head from trial trainings (offline or online)."""

    name = "gblend"
    params: GBlendParams

    def __init__(self, params: GBlendParams, modalities: list[str], lr: float) -> None:
        super().__init__(params, modalities, lr)
        self.estimates = 0
        self.trial_seconds = 0.0
        self._seconds_this_epoch = 0.0

    def due(self, epoch: int) -> bool:
        if self.params.mode == "offline":
            return epoch == 1
        return (epoch - 1) % self.params.super_epoch == 0

    def before_epoch(self, epoch: int, trials: TrialTrainings) -> list[Event]:
        self._seconds_this_epoch = 0.0
        if not self.due(epoch):
            return []
        rates = self.learning_rates()
        common = {"epochs": self.params.super_epoch, "holdout": self.params.holdout, "learning_rates": rates, "tag": epoch}
        unimodal = trials.run(self.modalities, **common)
        fused = trials.run(["fused"], **common)
        per_head = {"fused": fused, **dict.fromkeys(self.modalities, unimodal)}
        g, o = {}, {}
        for head, trial in per_head.items():
            g[head], o[head] = generalization_and_overfitting(trial, head)
        self.loss_weights = blending_weights(g, o)
        seconds = unimodal.seconds + fused.seconds
        self._seconds_this_epoch = seconds
        self.trial_seconds += seconds
        self.estimates += 1
        when = "before training" if epoch == 1 else f"before epoch {epoch}"
        message = (f"loss weights {when} from {self.params.super_epoch}-epoch trials ({seconds:.1f} s): "
                   + ", ".join(f"{h} {w:.3f}" for h, w in self.loss_weights.items()))
        data = {
            "epoch": epoch, "mode": self.params.mode, "weights": dict(self.loss_weights), "G": g, "O": o,
            "trials": {"unimodal": unimodal.to_dict(), "fused": fused.to_dict()},
            "trial_epochs": self.params.super_epoch, "holdout": self.params.holdout, "seconds": seconds,
        }
        return [Event("gblend.weights", message, data)]

    def epoch_metrics(self) -> dict[str, float]:
        metrics = {f"weight/{h}": w for h, w in self.loss_weights.items()}
        if self._seconds_this_epoch:
            metrics["time/trials"] = self._seconds_this_epoch
        return metrics

    def summary(self) -> dict[str, float]:
        return {"gblend/estimates": self.estimates, "time/trials": self.trial_seconds,
                **{f"gblend/weight/{h}": w for h, w in self.loss_weights.items()}}

    def state_dict(self) -> dict[str, Any]:
        return {"loss_weights": dict(self.loss_weights), "estimates": self.estimates, "trial_seconds": self.trial_seconds}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.loss_weights = dict(state["loss_weights"])
        self.estimates = state["estimates"]
        self.trial_seconds = state["trial_seconds"]
