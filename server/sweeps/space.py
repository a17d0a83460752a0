"""A sweep's search space: which fields of a run's config may be searched, and over what.

A dimension is a *range* (``low``, ``high``, optionally ``log`` or ``step``) or a list of
*choices*. A range over an integer field draws integers, over a float field floats;
choices may hold any values the field accepts (numbers, fusions, booleans). The field is
named by its path in `TrainConfig`: ``lr``, ``batch_size``, ``fusion``, ``model.dropout``,
``dataset_params.dim``, ``params.tau`` (the hyperparameters of the methods that have it).

Searchable are the numeric, boolean and enumerated fields; the dataset, modalities, method,
device, data path and seed are not (seeds are the sweep's own business: ``seeds_for_best``).
"""

from __future__ import annotations

import math
import types
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import Field, model_validator
from pydantic.fields import FieldInfo

from trainer.config import ModelConfig, TrainConfig
from trainer.datasets import DATASETS
from trainer.methods import METHODS
from trainer.spec import SpecModel

Kind = Literal["int", "float", "bool", "enum"]
MAX_CHOICES = 100
# Top-level fields that are not hyperparameters, or whose values a sweep sets itself.
FIXED = {"dataset", "data_path", "modalities", "method", "device", "seed", "evaluate_test"}
Scalar = bool | int | float | str


class Dimension(SpecModel):
    """What one field is searched over: a range (``low`` to ``high``) or ``choices``."""

    model_config = {"json_schema_extra": {"examples": [
        {"low": 1e-4, "high": 1e-2, "log": True}, {"low": 0.0, "high": 0.5}, {"choices": [32, 64, 128]},
    ]}}

    low: float | None = Field(None, description="Lowest value of a range (included).")
    high: float | None = Field(None, description="Highest value of a range (included).")
    log: bool = Field(False, description="Draw the range uniformly on a log scale (low must be > 0).")
    step: float | None = Field(None, gt=0, description="Only values low + k * step (a grid needs it for a range).")
    choices: list[Scalar] | None = Field(
        None, min_length=1, max_length=MAX_CHOICES, description="The values to choose from, each distinct.",
    )

    @model_validator(mode="after")
    def _range_or_choices(self) -> Dimension:
        ranged = self.low is not None or self.high is not None
        if self.choices is not None:
            if ranged or self.log or self.step is not None:
                raise ValueError("give either choices or a range (low, high, log, step), not both")
            if len({repr(choice) for choice in self.choices}) != len(self.choices):
                raise ValueError("choices must be distinct")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high (a range) or choices (a list)")
        if not (math.isfinite(self.low) and math.isfinite(self.high)) or self.low >= self.high:
            raise ValueError(f"needs finite bounds with low < high (got low {self.low}, high {self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got {self.low})")
        if self.log and self.step is not None:
            raise ValueError("a log range cannot have a step")
        return self

    @property
    def is_range(self) -> bool:
        return self.choices is None

    def values(self, kind: Kind) -> list[Scalar] | None:
        """Every value the dimension can take, when they are countable (choices, a stepped or an integer range)."""
        if self.choices is not None:
            return list(self.choices)
        assert self.low is not None and self.high is not None
        step = self.step if self.step is not None else (1 if kind == "int" else None)
        if step is None or self.log:
            return None
        count = int(math.floor((self.high - self.low) / step + 1e-9)) + 1
        if count > MAX_CHOICES * 100:
            return None
        found = [self.low + k * step for k in range(count)]
        return [round(value) for value in found] if kind == "int" else found

    def probes(self) -> list[tuple[str, Scalar]]:
        """The values that must each be valid for the field: both ends of a range, or every choice."""
        if self.choices is not None:
            return [(f"choices.{index}", choice) for index, choice in enumerate(self.choices)]
        assert self.low is not None and self.high is not None
        return [("low", self.low), ("high", self.high)]


@dataclass(frozen=True)
class Searchable:
    """A searchable field: its kind, and the pydantic field (for its bounds and default)."""

    kind: Kind
    info: FieldInfo


def _kind(annotation: Any) -> Kind | None:
    if get_origin(annotation) in (Union, types.UnionType):
        concrete = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _kind(concrete[0]) if len(concrete) == 1 else None
    if get_origin(annotation) is Literal:
        return "enum"
    return {bool: "bool", int: "int", float: "float"}.get(annotation)  # type: ignore[return-value]


def _searchable(model: type[SpecModel], name: str) -> Searchable | None:
    info = model.model_fields.get(name)
    kind = _kind(info.annotation) if info else None
    return Searchable(kind, info) if kind and info else None


def field_of(path: str, dataset: str, method: str) -> Searchable | None:
    """The searchable field at ``path`` for runs of ``method`` on ``dataset``; None when there is none."""
    head, _, rest = path.partition(".")
    if not rest:
        return None if head in FIXED else _searchable(TrainConfig, head)
    if "." in rest:
        return None
    if head == "model":
        return _searchable(ModelConfig, rest)
    if head == "params":
        return _searchable(METHODS[method].params, rest)
    if head == "dataset_params" and dataset in DATASETS:
        return _searchable(DATASETS[dataset].params, rest)
    return None


def field_choices(path: str, config: dict[str, Any]) -> list[Scalar]:
    """The values an enumerated or boolean field at ``path`` takes, for a config of ``config``'s dataset and method."""
    field = field_of(path, config.get("dataset", ""), config.get("method", ""))
    if field is None or field.kind not in ("bool", "enum"):
        return []
    if field.kind == "bool":
        return [False, True]
    annotation = field.info.annotation
    concrete = [a for a in get_args(annotation) if a is not type(None)] if get_origin(annotation) in (Union, types.UnionType) else [annotation]
    return list(get_args(concrete[0]))


def searchable_paths(dataset: str, method: str) -> list[str]:
    """Every path a sweep of ``method`` on ``dataset`` can search (for messages and forms)."""
    paths = [name for name in TrainConfig.model_fields if field_of(name, dataset, method)]
    for prefix, model in (("model", ModelConfig), ("params", METHODS[method].params)):
        paths += [f"{prefix}.{name}" for name in model.model_fields if _searchable(model, name)]
    if dataset in DATASETS:
        params = DATASETS[dataset].params
        paths += [f"dataset_params.{name}" for name in params.model_fields if _searchable(params, name)]
    return paths


def with_value(config: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``config`` (a TrainConfig as a dict) with the field at ``path`` set to ``value``."""
    head, _, rest = path.partition(".")
    out = dict(config)
    if rest:
        out[head] = {**(out.get(head) or {}), rest: value}
    else:
        out[head] = value
    return out


# -- the paper's protocol -----------------------------------------------------------------------

PAPER_LR = Dimension(low=1e-4, high=1e-2, log=True)


def _bounds(info: FieldInfo) -> tuple[float | None, bool, float | None, bool]:
    """(low, low is exclusive, high, high is exclusive) of a numeric field."""
    low = high = None
    low_open = high_open = False
    for item in info.metadata:
        if isinstance(item, at.Ge):
            low = float(item.ge)  # type: ignore[arg-type]
        elif isinstance(item, at.Gt):
            low, low_open = float(item.gt), True  # type: ignore[arg-type]
        elif isinstance(item, at.Le):
            high = float(item.le)  # type: ignore[arg-type]
        elif isinstance(item, at.Lt):
            high, high_open = float(item.lt), True  # type: ignore[arg-type]
    return low, low_open, high, high_open


def schema_dimension(field: Searchable) -> Dimension | None:
    """A dimension for a numeric hyperparameter read from its schema; None for any other.

    Both bounds known: the range between them (an open bound kept 1% of the range inside), on
    a log scale when it spans two decades or more of positive values. A bound missing: a
    decade either side of a positive default, clipped to the bound known. Integers keep
    integer ends.
    """
    if field.kind not in ("int", "float"):
        return None
    low, low_open, high, high_open = _bounds(field.info)
    default = field.info.default
    if low is None or high is None:
        if not isinstance(default, int | float) or isinstance(default, bool) or default <= 0:
            return None
        low = max(low if low is not None else -math.inf, default / 10)
        high = min(high if high is not None else math.inf, default * 10)
        low_open = high_open = False
    margin = (high - low) * 0.01
    low, high = low + (margin if low_open else 0.0), high - (margin if high_open else 0.0)
    if field.kind == "int":
        low, high = math.ceil(low), math.floor(high)
    if low >= high:
        return None
    return Dimension(low=low, high=high, log=field.kind == "float" and low > 0 and high / low >= 100)


def paper_space(dataset: str, method: str) -> dict[str, Dimension]:
    """MILES.md section 7's protocol: the learning rate on a log scale, and every numeric hyperparameter
    of the method (for MILES: tau and mu) over the range its schema allows."""
    space = {"lr": PAPER_LR}
    for name in METHODS[method].params.model_fields:
        field = field_of(f"params.{name}", dataset, method)
        dimension = schema_dimension(field) if field else None
        if dimension is not None:
            space[f"params.{name}"] = dimension
    return space
