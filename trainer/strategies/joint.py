"""The two unbalanced references: vanilla joint training, and joint training with auxiliary losses."""

from __future__ import annotations

from trainer.strategies.base import Strategy


class JointStrategy(Strategy):
    """Vanilla: the fused loss alone shapes the encoders.

    The auxiliary heads still learn, on detached features, so that every
    method's unimodal metrics and utilization are measured the same way.
    """

    name = "joint"
    detach_aux = True


class JointAuxStrategy(Strategy):
    """The fused loss plus every auxiliary loss, unweighted (MILES's Eq. 3), with no balancing."""

    name = "joint_aux"
