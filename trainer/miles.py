"""MILES: Modality-Informed Learning ratE Scheduler.

Guerra-Manzanares and Shamout, "MILES: Modality-Informed Learning Rate
Scheduler for Balancing Multimodal Learning", IJCNN 2025 (arXiv 2510.17394).

After every epoch the model's conditional utilization of each modality is
measured (Eq. 4) and, when the gap between the modalities exceeds a threshold
``tau``, the learning rate of the modality the model relies on most is set to
``mu * alpha`` for the next epoch (Algorithm 1). These functions are
framework-free except `MilesScheduler`, which drives a torch optimizer, so
they can be used in any training loop:

    scheduler = MilesScheduler(optimizer, {"audio": 0, "image": 1}, base_lr=1e-3, tau=0.2, mu=0.5)
    for epoch in range(epochs):
        train_one_epoch()
        fused, heads = evaluate()          # e.g. 0.91, {"audio": 0.55, "image": 0.88}
        decision = scheduler.step(fused, heads)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

Branch = Literal[
    "undefined",          # the fused metric is 0: utilization undefined, no action (MILES.md section 3)
    "within_threshold",   # Alg. 1, first test: delta <= tau
    "fusion_below_heads",  # Alg. 1, first test: u_A < 0 and u_B < 0 (fusion worse than both heads)
    "opposite_signs",     # Alg. 1, second and third tests: exactly one u is positive; slow that one
    "larger_utilization",  # Alg. 1, last two lines: slow the modality with the larger u
    "extension_wait",     # >2 modalities (project extension): gap <= tau, or every u < 0
    "extension_slow",     # >2 modalities (project extension): slow the modality with the largest u
]

# Utilizations come from metrics such as 47/60, so a gap equal to tau in exact
# arithmetic (tau = 0.2, gap = 0.2) can differ from it by a rounding error;
# within this tolerance the gap counts as equal to tau and MILES does not act.
TOLERANCE = 1e-9


def conditional_utilization(
    fused: float, unimodal: Mapping[str, float], *, masked: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Conditional utilization rate of every modality (paper Eq. 4).

    Bimodal (exactly as in the paper), with M the task metric:
    ``u_A = (M(y_fused) - M(y_B)) / M(y_fused)`` and
    ``u_B = (M(y_fused) - M(y_A)) / M(y_fused)``: the share of the fused
    performance that A adds on top of B's own head.

    More than two modalities (project extension, MILES.md section 4): the
    paper leaves "the other modality" undefined, so ``masked[m]`` must give
    the fused metric with ``z_m`` replaced by zeros, and
    ``u_m = (M(fused) - masked[m]) / M(fused)``.

    A fused metric of 0 (or below) makes every ``u`` undefined: they are NaN,
    and `miles_decision` takes no action on them.
    """
    names = list(unimodal)
    if len(names) < 2:
        raise ValueError(f"conditional utilization needs at least two modalities, got {names}")
    if not fused > 0:
        return {m: math.nan for m in names}
    if len(names) == 2:
        a, b = names
        return {a: (fused - unimodal[b]) / fused, b: (fused - unimodal[a]) / fused}
    if masked is None or set(masked) != set(names):
        raise ValueError(
            "with more than two modalities, pass masked={modality: fused metric with that modality's "
            f"features zeroed}} for every modality in {names}"
        )
    return {m: (fused - masked[m]) / fused for m in names}


def utilization_gap(utilization: Mapping[str, float]) -> float:
    """``delta = |u_A - u_B|`` (paper); ``max u - min u`` for more modalities (extension)."""
    values = list(utilization.values())
    return max(values) - min(values)


@dataclass(frozen=True)
class MilesDecision:
    """What MILES decided after an epoch, for the next one."""

    utilization: dict[str, float]
    delta: float
    tau: float
    mu: float
    branch: Branch
    slowed: str | None  # the modality whose learning rate becomes mu * alpha, if any
    multipliers: dict[str, float]  # modality -> factor of the global learning rate (1.0 or mu)

    @property
    def acted(self) -> bool:
        return self.slowed is not None

    def to_dict(self) -> dict[str, Any]:
        """The decision's fields; ``delta`` and ``utilization`` are NaN when undefined (see
        `trainer.reporting.json_safe` before sending it as JSON)."""
        return asdict(self)

    def message(self, base_lr: float) -> str:
        """One line for people, e.g. ``MILES slowed image to 5.0e-04: gap 0.31 > tau 0.20``."""
        u = ", ".join(f"u_{m} {v:+.3f}" for m, v in self.utilization.items())
        if self.branch == "undefined":
            return "MILES took no action: the fused metric is 0, so utilization is undefined"
        if self.slowed is not None:
            return (
                f"MILES slowed {self.slowed} to {self.mu * base_lr:.2e} ({u}; gap {self.delta:.3f} > tau {self.tau:g})"
            )
        if self.branch in ("fusion_below_heads", "extension_wait") and self.delta > self.tau + TOLERANCE:
            return f"MILES waited: the fused head is below every modality's head ({u})"
        return f"MILES kept every rate at {base_lr:.2e} ({u}; gap {self.delta:.3f} <= tau {self.tau:g})"


def _check_hyperparameters(tau: float, mu: float) -> None:
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must satisfy 0 <= tau <= 1 (got {tau})")
    if not 0.0 < mu <= 1.0:
        raise ValueError(f"mu must satisfy 0 < mu <= 1 (got {mu})")


def miles_decision(utilization: Mapping[str, float], tau: float, mu: float) -> MilesDecision:
    """The learning-rate multipliers for the next epoch (paper Algorithm 1).

    Only one modality is slowed in an epoch and the other stays at ``alpha``
    (project choice following the paper's prose, MILES.md section 4); the
    reduction is always ``mu * alpha``, never compounded; the weak modality is
    never sped up.
    """
    _check_hyperparameters(tau, mu)
    names = list(utilization)
    u = dict(utilization)
    if any(math.isnan(v) for v in u.values()):
        return MilesDecision(u, math.nan, tau, mu, "undefined", None, {m: 1.0 for m in names})
    delta = utilization_gap(u)

    def slow(branch: Branch, modality: str | None) -> MilesDecision:
        multipliers = {m: (mu if m == modality else 1.0) for m in names}
        return MilesDecision(u, delta, tau, mu, branch, modality, multipliers)

    if len(names) > 2:
        # Extension (MILES.md section 4): act when max u - min u > tau and not all u < 0.
        if delta <= tau + TOLERANCE or all(v < 0 for v in u.values()):
            return slow("extension_wait", None)
        return slow("extension_slow", max(names, key=lambda m: u[m]))

    a, b = names
    u_a, u_b = u[a], u[b]
    # Alg. 1: if delta <= tau or (u_A < 0 and u_B < 0): lr_A = lr_B = alpha
    if delta <= tau + TOLERANCE:
        return slow("within_threshold", None)
    if u_a < 0 and u_b < 0:
        return slow("fusion_below_heads", None)
    # Alg. 1: elif u_A > 0 and u_B < 0: lr_A = mu * alpha
    if u_a > 0 and u_b < 0:
        return slow("opposite_signs", a)
    # Alg. 1: elif u_A < 0 and u_B > 0: lr_B = mu * alpha
    if u_a < 0 and u_b > 0:
        return slow("opposite_signs", b)
    # Alg. 1: elif u_A < u_B: lr_B = mu * alpha; else: lr_A = mu * alpha
    return slow("larger_utilization", b if u_a < u_b else a)


class MilesScheduler:
    """Applies MILES decisions to a torch optimizer's parameter groups.

    ``groups`` maps each modality to the index of its parameter group in
    ``optimizer.param_groups`` (its encoder and its auxiliary head). Groups
    not named here (the fusion and fused head) are never touched, so they stay
    at their own rate for the whole run.
    """

    def __init__(self, optimizer: Any, groups: Mapping[str, int], base_lr: float, tau: float, mu: float) -> None:
        _check_hyperparameters(tau, mu)
        if len(groups) < 2:
            raise ValueError(f"MILES needs at least two modality groups, got {list(groups)}")
        count = len(optimizer.param_groups)
        for modality, index in groups.items():
            if not 0 <= index < count:
                raise ValueError(f"group of {modality!r} is {index}, but the optimizer has {count} groups")
        self.optimizer = optimizer
        self.groups = dict(groups)
        self.base_lr = base_lr
        self.tau = tau
        self.mu = mu
        self.last: MilesDecision | None = None
        self.actions: dict[str, int] = {m: 0 for m in groups}

    def step(
        self, fused_metric: float, unimodal_metrics: Mapping[str, float], *, masked: Mapping[str, float] | None = None
    ) -> MilesDecision:
        """Decide from this epoch's metrics and set the rates of the next epoch."""
        metrics = {m: unimodal_metrics[m] for m in self.groups}
        utilization = conditional_utilization(fused_metric, metrics, masked=masked)
        return self.apply(miles_decision(utilization, self.tau, self.mu))

    def apply(self, decision: MilesDecision) -> MilesDecision:
        """Set each modality's group to ``multiplier * base_lr`` (never compounding)."""
        for modality, index in self.groups.items():
            self.optimizer.param_groups[index]["lr"] = self.base_lr * decision.multipliers[modality]
        if decision.slowed is not None:
            self.actions[decision.slowed] += 1
        self.last = decision
        return decision

    @property
    def learning_rates(self) -> dict[str, float]:
        return {m: self.optimizer.param_groups[i]["lr"] for m, i in self.groups.items()}

    def state_dict(self) -> dict[str, Any]:
        return {"actions": dict(self.actions), "last": None if self.last is None else asdict(self.last)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.actions = dict(state["actions"])
        self.last = None if state["last"] is None else MilesDecision(**state["last"])
