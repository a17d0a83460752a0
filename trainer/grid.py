"""A grid of runs: methods x fusions x seeds on one dataset, expanded into validated `TrainConfig` cells.

``miles compare`` and the server's ``POST /api/v1/grids`` both expand a grid
here, so that the same grid always means the same runs::

    grid = Grid.model_validate({
        "config": {"dataset": "mfeat", "modalities": ["pix", "fou"], "epochs": 10},
        "methods": ["joint", "miles"], "fusions": ["concat", "sum"], "seeds": [0, 1, 2],
        "params": {"miles": {"tau": 0.1}},
    })
    [cell.key for cell in grid.cells]   # ["joint/concat/seed0", ..., "miles/sum/seed2"]

The one rule of the expansion: a method runs once per fusion and seed, except
a method that trains one modality alone (its catalogue entry says
``single_modality``, e.g. ``unimodal``), which runs once per modality of the
pair and seed, since a single modality has nothing to fuse. Its cells give
each modality's ceiling (MILES.md section 8).

Validation names every bad field where the user wrote it: ``methods.2``,
``params.miles.tau``, ``config.epochs``, and for a problem of one combination
only (a method that refuses a fusion), ``cells.<method>/<fusion>.<field>``.
No torch here: the server validates grids without loading PyTorch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from trainer.config import FUSIONS, TrainConfig
from trainer.methods import METHODS
from trainer.spec import SpecModel

MAX_SEEDS = 100
MAX_CELLS = 1000
# Set per cell by the grid's own fields, so not allowed among the common settings.
AXES = {"method": "methods", "fusion": "fusions", "seed": "seeds", "params": "params"}


@dataclass(frozen=True)
class Cell:
    """One run of a grid: its key (unique in the grid, stable across expansions) and its config."""

    method: str
    fusion: str | None  # None for a method that trains one modality alone
    modality: str | None  # the one modality of such a method's cell
    seed: int
    config: TrainConfig

    @property
    def variant(self) -> str:
        """What the cell varies besides the method and the seed: its fusion, or its one modality."""
        return self.fusion if self.fusion is not None else str(self.modality)

    @property
    def key(self) -> str:
        """``miles/concat/seed0``; ``unimodal/pix/seed0`` for a one-modality method."""
        return f"{self.method}/{self.variant}/seed{self.seed}"

    @property
    def label(self) -> str:
        """``miles · concat · seed 0``: a run's name."""
        return f"{self.method} · {self.variant} · seed {self.seed}"


def _repeated(field: str, values: list[Any], what: str) -> list[InitErrorDetails]:
    repeated = list(dict.fromkeys(repr(v) for v in values if values.count(v) > 1))
    if not repeated:
        return []
    verb = "appears" if len(repeated) == 1 else "appear"
    return [_error(field, message=f"{', '.join(repeated)} {verb} more than once; name each {what} once")]


def _choices(field: str, values: list[str], allowed: Mapping[str, Any], what: str) -> list[InitErrorDetails]:
    """An error per unknown value (at its index), and one for repeated values."""
    unknown = [
        _error(field, index, message=f"unknown {what} {value!r}; allowed: {', '.join(allowed)}", value=value)
        for index, value in enumerate(values) if value not in allowed
    ]
    return unknown + _repeated(field, values, what)


def _located(error: ValidationError, *prefix: str | int) -> list[InitErrorDetails]:
    return [
        {"type": PydanticCustomError("invalid_value", item["msg"]), "loc": (*prefix, *item["loc"]), "input": item["input"]}
        for item in error.errors()
    ]


def _error(*loc: str | int, message: str, value: Any = None) -> InitErrorDetails:
    return {"type": PydanticCustomError("invalid_value", message), "loc": loc, "input": value}


class Grid(SpecModel):
    """Every method x fusion x seed on one dataset and pair of modalities, with settings common to all."""

    model_config = {
        "json_schema_extra": {
            "examples": [{
                "config": {"dataset": "mfeat", "modalities": ["pix", "fou"], "epochs": 30},
                "methods": ["joint", "joint_aux", "miles"], "fusions": ["concat", "sum"], "seeds": [0, 1, 2],
                "params": {"miles": {"tau": 0.2, "mu": 0.5}},
            }]
        }
    }

    config: dict[str, Any] = Field(
        description="Settings common to every cell: any TrainConfig field (dataset is required) but "
        "method, fusion, seed and params, which the grid sets per cell.",
    )
    methods: list[str] = Field(min_length=1, max_length=100, description=f"Methods to run: any of {', '.join(METHODS)}.")
    fusions: list[str] = Field(
        default_factory=lambda: ["concat"], min_length=1, max_length=len(FUSIONS),
        description=f"Fusions to run each method with, of {', '.join(FUSIONS)} (a method of one modality alone ignores them).",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0], min_length=1, max_length=MAX_SEEDS, description="Seeds: one run per seed of each cell.",
    )
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Hyperparameters per method, e.g. {\"miles\": {\"tau\": 0.1}}; defaults elsewhere.",
    )
    _cells: list[Cell] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _expand(self) -> Grid:
        # Every problem at once (not the fields' first, then the rest): a form shows them all together.
        problems = [
            *_choices("methods", self.methods, METHODS, "method"),
            *_choices("fusions", self.fusions, FUSIONS, "fusion"),
            *_repeated("seeds", self.seeds, "seed"),
        ]
        wrong = [s for s in self.seeds if not 0 <= s <= 2**31 - 1]
        if wrong:
            problems.append(_error("seeds", message=f"must satisfy 0 <= seed <= {2**31 - 1} (got {', '.join(map(str, wrong))})"))
        problems += [
            _error("config", field, message=f"is set per cell by the grid: give it as {axis}", value=self.config[field])
            for field, axis in AXES.items() if field in self.config
        ]
        known = [m for m in self.methods if m in METHODS]
        problems += [
            _error("params", method, message=f"method {method!r} is not among the grid's methods ({', '.join(self.methods)})")
            for method in self.params if method not in known
        ]
        params: dict[str, dict[str, Any]] = {}
        for method in known:
            try:
                params[method] = METHODS[method].params.model_validate(self.params.get(method, {})).model_dump()
            except ValidationError as error:
                problems += _located(error, "params", method)
        try:
            # The common settings alone, under the default method: their errors are named once, not per cell.
            base = TrainConfig.model_validate({k: v for k, v in self.config.items() if k not in AXES})
        except ValidationError as error:
            problems += _located(error, "config")
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        self._cells = self._cells_of(base, params)
        return self

    def _cells_of(self, base: TrainConfig, params: dict[str, dict[str, Any]]) -> list[Cell]:
        pair = base.modalities
        count = sum(len(pair or ()) if METHODS[m].single_modality else len(self.fusions) for m in self.methods) * len(self.seeds)
        if count > MAX_CELLS:
            raise ValidationError.from_exception_data(type(self).__name__, [_error(
                "seeds", message=f"the grid has {count} cells, more than the {MAX_CELLS} allowed; name fewer methods, fusions or seeds",
            )])
        common = {k: v for k, v in self.config.items() if k not in AXES} | {"modalities": pair}
        cells: list[Cell] = []
        problems: list[InitErrorDetails] = []
        for method in self.methods:
            if METHODS[method].single_modality:
                if not pair:
                    problems.append(_error("config", "modalities", message=f"name the pair: method {method!r} runs once per modality of it"))
                    continue
                variants: list[tuple[str | None, str | None]] = [(None, modality) for modality in pair]
            else:
                variants = [(fusion, None) for fusion in self.fusions]
            for fusion, modality in variants:
                spec = common | {"method": method, "params": params[method]}
                spec |= {"fusion": fusion} if fusion is not None else {"modalities": [modality]}
                try:
                    # Validated once per combination: a problem of it is one error, whatever the seeds.
                    first = TrainConfig.model_validate(spec | {"seed": self.seeds[0]})
                except ValidationError as error:
                    problems += _located(error, "cells", f"{method}/{fusion if fusion is not None else modality}")
                    continue
                cells += [
                    Cell(method, fusion, modality, seed, first if seed == first.seed else first.model_copy(update={"seed": seed}, deep=True))
                    for seed in self.seeds
                ]
        if problems:
            raise ValidationError.from_exception_data(type(self).__name__, problems)
        return cells

    @property
    def cells(self) -> list[Cell]:
        """The runs of the grid, method by method, then fusion (or modality), then seed."""
        return list(self._cells)
