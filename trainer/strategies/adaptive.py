"""`adaptive`: a balancing schedule of this project, designed from what MILES gets wrong on our data.

MILES (MILES.md section 4) brakes the dominant modality to ``mu * alpha`` whenever the gap of one epoch's
conditional utilization exceeds ``tau``. On our data that rule has three faults (docs/results.md):
one epoch's gap on a small validation split is noisy, so the brake flips with the noise; the brake is on or
off, so a gap just above ``tau`` halves the rate as a large one does; and Eq. 4 cannot tell a modality that is
learned slowly from one that carries less information (MILES.md section 8), so MILES keeps braking a strong
modality whose partner is already at its own ceiling. `adaptive` changes exactly those three things and
keeps the rest of MILES: the loss of Eq. 3, the utilization of Eq. 4 on the validation split, one modality
slowed at a time, the rate never compounding, the fusion group untouched. Optionally (``boost`` above 1) it
also does what braking cannot where the weak encoder is slow because of its own gradients (a deep stack
under SGD, docs/results.md): it speeds the weak modality up by the same continuous rule.

The rule, after epoch ``t`` (it sets the rates of epoch ``t + 1``):

1. Smoothed utilization, an exponential moving average of Eq. 4 with smoothing ``beta``:
   ``ū_m(1) = u_m(1)`` and ``ū_m(t) = beta * ū_m(t-1) + (1 - beta) * u_m(t)``. In the bimodal case the
   smoothed gap ``δ̄ = |ū_A - ū_B|`` is the moving average of the signed gap ``u_A - u_B``, which by Eq. 4
   is ``(M(y_A) - M(y_B)) / M(y_fused)``.
2. Dominant ``d = argmax_m ū_m``, weak ``w = argmin_m ū_m`` (bimodal: the larger and the smaller ``ū``;
   more modalities: as MILES's extension does, with ``δ̄ = max ū - min ū``).
3. The weak modality's attainable metric is estimated online as the running best of its own head's
   validation metric, ``c_w(t) = max_{s <= t} M_val(y_w)(s)``. The weak head is *still learning* while that
   best rose within the last ``patience`` epochs: ``t - argmax_{s <= t} M_val(y_w)(s) < patience``.
   Once it has not improved for ``patience`` epochs it is at its ceiling, the remaining gap is information
   and not speed, and braking the dominant modality cannot help it: the brake is released.
4. The dominant modality's multiplier is continuous in the excess of the smoothed gap over ``tau``, and
   so is the weak one's:

       m_d = max(mu, 1 - kappa * max(0, δ̄ - tau))      if w is still learning and not every ū_m < 0
       m_w = min(boost, 1 + kappa * max(0, δ̄ - tau))   under the same condition
       m_d = m_w = 1                                    otherwise

   and every other modality stays at 1. The rates of the next epoch are ``m_d * alpha`` and ``m_w * alpha``
   (never compounded); ``mu`` is the floor, MILES's own brake, so `adaptive` never slows a modality more
   than MILES would, and ``boost`` the ceiling of the speed-up (1, the default: the weak rate stays at
   ``alpha``, and the rule only brakes). Undefined utilization (fused metric 0) leaves the averages as
   they were and every rate at ``alpha``.

Cost: the numbers it reads (each head's validation metric, the utilization) come from the one validation
evaluation every method makes; nothing is added to the model, so inference is the multi-head model's fused
head alone, as for MILES.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from trainer.methods import AdaptiveParams
from trainer.strategies.base import EpochResult, Event, Strategy

Branch = Literal[
    "undefined",          # the fused metric is 0: utilization undefined, every rate at alpha
    "within_threshold",   # smoothed gap <= tau
    "fusion_below_heads",  # every smoothed u < 0: the fusion is worse than every head, wait
    "weak_at_ceiling",    # the weak head has not improved for `patience` epochs: brake released
    "braked",             # the rule acts: the dominant at m_d * alpha (m_d < 1 unless mu = 1), the weak at m_w * alpha
]


@dataclass(frozen=True)
class AdaptiveDecision:
    """What `adaptive` decided after an epoch, for the next one."""

    epoch: int
    utilization: dict[str, float]  # this epoch's u (Eq. 4)
    smoothed: dict[str, float]  # ū after this epoch
    gap: float  # δ̄ = max ū - min ū
    dominant: str | None
    weak: str | None
    weak_best: float | None  # c_w: the weak head's best validation metric so far
    weak_stalled: int | None  # epochs since the weak head last improved
    branch: Branch
    multipliers: dict[str, float]

    @property
    def slowed(self) -> str | None:
        return self.dominant if self.branch == "braked" and self.multipliers[self.dominant] < 1 else None  # type: ignore[index]

    @property
    def sped_up(self) -> str | None:
        return self.weak if self.branch == "braked" and self.multipliers[self.weak] > 1 else None  # type: ignore[index]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"slowed": self.slowed, "sped_up": self.sped_up}

    def message(self, base_lr: float, tau: float) -> str:
        u = ", ".join(f"ū_{m} {v:+.3f}" for m, v in self.smoothed.items())
        if self.branch == "undefined":
            return "adaptive kept every rate: the fused metric is 0, so utilization is undefined"
        if self.branch == "braked":
            changed = [f"{verb} {m} to {self.multipliers[m] * base_lr:.2e} (x{self.multipliers[m]:.3f})"
                       for verb, m in (("slowed", self.slowed), ("sped up", self.sped_up)) if m is not None]
            return (f"adaptive {' and '.join(changed) or 'kept every rate'} ({u}; "
                    f"smoothed gap {self.gap:.3f} > tau {tau:g}; {self.weak} still learning, best {self.weak_best:.3f})")
        if self.branch == "weak_at_ceiling":
            return (f"adaptive released the brake: {self.weak} has not improved for {self.weak_stalled} epochs "
                    f"(best {self.weak_best:.3f}; {u}; smoothed gap {self.gap:.3f})")
        if self.branch == "fusion_below_heads":
            return f"adaptive waited: the fused head is below every modality's head ({u})"
        return f"adaptive kept every rate at {base_lr:.2e} ({u}; smoothed gap {self.gap:.3f} <= tau {tau:g})"


class AdaptiveRule:
    """The state of the rule (moving averages, each head's best validation metric) and its step.

    Framework-free: `step` takes one epoch's utilization and head metrics and returns the multipliers
    of the next epoch's modality rates.
    """

    def __init__(self, params: AdaptiveParams, modalities: list[str]) -> None:
        if len(modalities) < 2:
            raise ValueError(f"adaptive needs at least two modalities, got {modalities}")
        self.params = params
        self.modalities = list(modalities)
        self.smoothed: dict[str, float] | None = None
        self.best: dict[str, float] = {}
        self.best_epoch: dict[str, int] = {}
        self.actions: dict[str, int] = {m: 0 for m in modalities}  # epochs each modality was slowed
        self.boosts: dict[str, int] = {m: 0 for m in modalities}  # ... and sped up
        self.acted = 0  # epochs after which the rule changed a rate

    def step(self, epoch: int, utilization: Mapping[str, float], heads: Mapping[str, float]) -> AdaptiveDecision:
        p = self.params
        for m in self.modalities:  # c_m(t): running best of each head's validation metric
            if m not in self.best or heads[m] > self.best[m]:
                self.best[m], self.best_epoch[m] = heads[m], epoch
        u = {m: utilization[m] for m in self.modalities}
        ones = {m: 1.0 for m in self.modalities}
        if any(math.isnan(v) for v in u.values()):
            smoothed = dict(self.smoothed or {})
            return AdaptiveDecision(epoch, u, smoothed, math.nan, None, None, None, None, "undefined", ones)
        if self.smoothed is None:
            self.smoothed = dict(u)
        else:
            self.smoothed = {m: p.beta * self.smoothed[m] + (1 - p.beta) * u[m] for m in self.modalities}
        s = self.smoothed
        dominant = max(self.modalities, key=lambda m: s[m])
        weak = min(self.modalities, key=lambda m: s[m])
        gap = s[dominant] - s[weak]
        stalled = epoch - self.best_epoch[weak]

        def decide(branch: Branch, brake: float = 1.0, boost: float = 1.0) -> AdaptiveDecision:
            multipliers = ones | ({dominant: brake, weak: boost} if branch == "braked" else {})
            return AdaptiveDecision(epoch, u, dict(s), gap, dominant, weak, self.best[weak], stalled, branch, multipliers)

        if all(v < 0 for v in s.values()):
            return decide("fusion_below_heads")
        excess = gap - p.tau
        if excess <= 0:
            return decide("within_threshold")
        if stalled >= p.patience:
            return decide("weak_at_ceiling")
        decision = decide("braked", max(p.mu, 1.0 - p.kappa * excess), min(p.boost, 1.0 + p.kappa * excess))
        for counts, modality in ((self.actions, decision.slowed), (self.boosts, decision.sped_up)):
            if modality is not None:
                counts[modality] += 1
        self.acted += decision.slowed is not None or decision.sped_up is not None
        return decision

    def state_dict(self) -> dict[str, Any]:
        return {"smoothed": self.smoothed, "best": dict(self.best), "best_epoch": dict(self.best_epoch),
                "actions": dict(self.actions), "boosts": dict(self.boosts), "acted": self.acted}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.smoothed = None if state["smoothed"] is None else dict(state["smoothed"])
        self.best, self.best_epoch = dict(state["best"]), dict(state["best_epoch"])
        self.actions = dict(state["actions"])
        # Absent from checkpoints written before the speed-up existed, when every action slowed one modality.
        self.boosts = dict(state.get("boosts") or {m: 0 for m in self.modalities})
        self.acted = state.get("acted", sum(self.actions.values()))


class AdaptiveStrategy(Strategy):
    """Loss of Eq. 3 (fused plus every auxiliary head), with the `adaptive` schedule of this module's
    docstring setting each modality's rate after every epoch."""

    name = "adaptive"
    params: AdaptiveParams

    def __init__(self, params: AdaptiveParams, modalities: list[str], lr: float) -> None:
        super().__init__(params, modalities, lr)
        self.rule = AdaptiveRule(params, modalities)

    def on_epoch_end(self, result: EpochResult) -> list[Event]:
        decision = self.rule.step(result.epoch, result.utilization, result.val.heads(self.modalities))
        for m in self.modalities:
            self.optimizer.param_groups[self.group_index[m]]["lr"] = self.lr * decision.multipliers[m]
        data = decision.to_dict() | {"learning_rates": self.learning_rates(), "tau": self.params.tau}
        return [Event("adaptive.decision", decision.message(self.lr, self.params.tau), data)]

    def summary(self) -> dict[str, float]:
        rule = self.rule
        sped_up = {f"adaptive/sped_up/{m}": n for m, n in rule.boosts.items()} if self.params.boost > 1 else {}
        return {"adaptive/actions": rule.acted, **{f"adaptive/slowed/{m}": n for m, n in rule.actions.items()}, **sped_up}

    def state_dict(self) -> dict[str, Any]:
        return {"rule": self.rule.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.rule.load_state_dict(state["rule"])
