"""The number a sweep judges a trial by: always a validation metric, never a test one.

- ``fused`` (default): the fused head's validation metric.
- ``weak``: the validation metric of the weakest modality head (the lowest of them).
- ``weighted``: a weighted sum over heads, named ``fused``, ``weak`` or a modality.

A finished trial is judged at its best validation epoch (by the fused head, the epoch its
summary and its best checkpoint record); each epoch's value feeds the pruner as it arrives.
Every metric is higher-is-better (accuracy, or F1 for multilabel tasks), so studies maximize.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import Field, model_validator

from trainer.spec import SpecModel

WEAK = "weak"


class Objective(SpecModel):
    """What a trial is judged by (validation metrics only)."""

    model_config = {"json_schema_extra": {"examples": [
        {"kind": "fused"}, {"kind": "weak"}, {"kind": "weighted", "weights": {"fused": 0.5, "weak": 0.5}},
    ]}}

    kind: Literal["fused", "weak", "weighted"] = Field(
        "fused", description="fused: the fused head; weak: the weakest modality head; weighted: a sum over heads.",
    )
    weights: dict[str, float] | None = Field(
        None, description="For weighted: head -> weight; heads are 'fused', 'weak' or a modality.",
    )

    @model_validator(mode="after")
    def _weights_for_weighted(self) -> Objective:
        if self.kind != "weighted":
            if self.weights is not None:
                raise ValueError(f"weights apply to kind 'weighted', not {self.kind!r}")
            return self
        if not self.weights:
            raise ValueError("kind 'weighted' needs weights, e.g. {\"fused\": 0.5, \"weak\": 0.5}")
        if not all(math.isfinite(w) for w in self.weights.values()) or not any(self.weights.values()):
            raise ValueError("weights must be finite numbers, not all zero")
        return self

    def unknown_heads(self, modalities: Sequence[str]) -> list[str]:
        """Heads named in the weights that the runs will not have."""
        return [head for head in self.weights or {} if head not in ("fused", WEAK, *modalities)]

    def terms(self) -> dict[str, float]:
        if self.kind == "weighted":
            assert self.weights is not None
            return dict(self.weights)
        return {self.kind: 1.0}

    def describe(self) -> str:
        if self.kind != "weighted":
            return f"validation {self.kind} head"
        return " + ".join(f"{weight:g} x validation {head}" for head, weight in self.terms().items())

    def value(self, metrics: Mapping[str, float], modalities: Sequence[str]) -> float | None:
        """The objective from ``metric/val/<head>`` values (an epoch's metrics, or a summary); None when
        one is missing or not finite."""

        def head(name: str) -> float | None:
            if name == WEAK:
                values = [head(m) for m in modalities]
                return None if not values or None in values else min(v for v in values if v is not None)
            value = metrics.get(f"metric/val/{name}")
            return float(value) if isinstance(value, int | float) and math.isfinite(value) else None

        total = 0.0
        for name, weight in self.terms().items():
            found = head(name)
            if found is None:
                return None
            total += weight * found
        return total

    def keys(self, modalities: Sequence[str]) -> list[str]:
        """The metric keys the objective reads."""
        heads = set(self.terms())
        if WEAK in heads:
            heads = (heads - {WEAK}) | set(modalities)
        return sorted(f"metric/val/{name}" for name in heads)
