"""What a user asks of a sweep (`SweepCreate`), and the plan the server stores and follows (`SweepPlan`).

Decisions a user of W&B or Optuna would look for:

- **Budget**: trials *per method*. Each method has a study of its own, so every method
  gets the same number of configurations (the paper's 80 each), whatever the others do.
  A grid sweep's budget is its grid: every combination, once.
- **Parallelism**: the most runs of the sweep queued or running at once, over all methods.
- **Seeds of the best**: once every method's budget is spent, the best configuration of
  each is run again on ``seeds_for_best`` new seeds (the trials' seed + 1, + 2, ...: the seed
  the configuration was chosen on would flatter it), and only these runs see the test split.
- **Preset** ``paper``: 80 random configurations per method over the learning rate
  (log-uniform, 1e-4 to 1e-2) and every numeric hyperparameter of the method within the
  range its schema allows, then 5 seeds of the best. Anything else given explicitly wins
  (``budget`` scales it down).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from server import policy
from server.schemas import Body, Name, Params, Tags
from server.settings import Settings
from server.store.errors import Invalid
from server.sweeps.objective import Objective
from server.sweeps.space import (
    Dimension,
    Kind,
    field_choices,
    field_of,
    paper_space,
    searchable_paths,
    with_value,
)
from trainer.methods import METHODS
from trainer.spec import FieldError

Sampler = Literal["random", "tpe", "grid"]
DEFAULT_BUDGET = 20
MAX_TRIALS = 10_000  # all methods together
MAX_DIMENSIONS = 64
PAPER = {"sampler": "random", "budget": 80, "seeds_for_best": 5}


class MedianPruner(BaseModel):
    """Optuna's median rule: stop a trial whose best value so far is below the median of the finished
    trials' values at the same epoch."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["median"]
    startup_trials: int = Field(3, ge=0, le=1000, description="Finished trials needed before any trial is pruned.")
    warmup_epochs: int = Field(0, ge=0, le=1000, description="Epochs a trial always trains before it can be pruned.")


class HalvingPruner(BaseModel):
    """Optuna's asynchronous successive halving: at epochs min_epochs * factor^k, keep only the best
    1/factor of the trials that reached that epoch."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["successive_halving"]
    min_epochs: int = Field(1, ge=1, le=1000, description="The first epoch at which trials are compared.")
    reduction_factor: int = Field(3, ge=2, le=10, description="1/factor of the trials go on at each rung.")


Pruner = Annotated[MedianPruner | HalvingPruner, Field(discriminator="kind")]


class SweepCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "tau and mu", "config": {"dataset": "mfeat", "modalities": ["pix", "fou"], "epochs": 20},
         "methods": ["miles"], "space": {"lr": {"low": 1e-4, "high": 1e-2, "log": True},
                                         "params.tau": {"low": 0.0, "high": 0.5}, "params.mu": {"choices": [0.25, 0.5, 0.75]}},
         "sampler": "tpe", "budget": 30, "parallelism": 2, "pruner": {"kind": "median"}, "seeds_for_best": 3},
        {"config": {"dataset": "mfeat", "epochs": 30}, "methods": ["miles", "joint_aux", "joint"], "preset": "paper", "budget": 8},
    ]})

    name: Name | None = Field(None, description="Default: the methods and the dataset.")
    experiment: Name | None = Field(None, description="Experiment of the sweep's runs (created when missing); default: the sweep's name.")
    tags: Tags = []
    config: Params = Field(description="The base TrainConfig of every run, without method and params.")
    methods: list[str] = Field(min_length=1, max_length=len(METHODS), description="Methods to tune, each in its own study.")
    params: dict[str, Params] = Field(
        default_factory=dict, description="Fixed hyperparameters per method (method -> params), not searched.",
    )
    space: dict[str, Dimension] = Field(
        default_factory=dict, max_length=MAX_DIMENSIONS,
        description="Config path -> dimension, e.g. 'lr', 'batch_size', 'model.dropout', 'params.tau' (applies "
        "to the methods that have tau).",
    )
    sampler: Sampler = Field("random", description="Optuna's sampler: random, tpe or grid (every combination once).")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the sampler.")
    budget: int | None = Field(
        None, ge=1, le=MAX_TRIALS, description=f"Trials per method (default {DEFAULT_BUDGET}; a grid: its size).",
    )
    parallelism: int = Field(2, ge=1, le=1000, description="Most runs of the sweep queued or running at once.")
    objective: Objective = Field(default_factory=Objective)
    pruner: Pruner | None = Field(None, description="Stop trials that fall behind, fed by each epoch's objective.")
    seeds_for_best: int = Field(
        3, ge=0, le=50, description="Then run each method's best configuration on this many new seeds, tested.",
    )
    preset: Literal["paper"] | None = Field(None, description="'paper': the protocol of the MILES paper (see docs).")

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: list[str]) -> list[str]:
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method {unknown[0]!r}; allowed: {', '.join(METHODS)}")
        if len(set(methods)) != len(methods):
            raise ValueError("name each method once")
        return methods


class SweepPlan(BaseModel):
    """A validated sweep, with every default filled in: what the driver follows."""

    config: dict[str, Any]  # the base TrainConfig as JSON, method and params left out
    methods: list[str]
    params: dict[str, dict[str, Any]]
    spaces: dict[str, dict[str, Dimension]]  # method -> path -> dimension
    kinds: dict[str, dict[str, Kind]]  # method -> path -> the field's kind
    sampler: Sampler
    seed: int
    budgets: dict[str, int]
    parallelism: int
    objective: Objective
    pruner: Pruner | None
    seeds_for_best: int
    preset: Literal["paper"] | None
    tags: list[str]

    @property
    def modalities(self) -> list[str]:
        return list(self.config.get("modalities") or [])

    @property
    def trial_seed(self) -> int:
        return int(self.config.get("seed", 0))

    @property
    def best_seeds(self) -> list[int]:
        return [self.trial_seed + k for k in range(1, self.seeds_for_best + 1)]

    @property
    def total_budget(self) -> int:
        return sum(self.budgets.values())

    def run_config(self, method: str, values: dict[str, Any], *, seed: int | None = None) -> dict[str, Any]:
        """The config of a run of ``method`` with the searched ``values`` (path -> value): a trial (validation
        only) or, with ``seed``, a rerun of the best (tested)."""
        config = {**self.config, "method": method, "params": dict(self.params.get(method, {}))}
        for path, value in values.items():
            config = with_value(config, path, value)
        if seed is None:
            return config | {"evaluate_test": False}
        return config | {"seed": seed, "evaluate_test": True}


def default_name(methods: list[str], config: dict[str, Any]) -> str:
    return f"{', '.join(methods)} on {config.get('dataset', '?')}"


class _Problems:
    def __init__(self) -> None:
        self.found: list[FieldError] = []

    def add(self, field: str, message: str) -> None:
        if all(problem.field != field for problem in self.found):  # one message per field
            self.found.append(FieldError(field, message))

    def adopt(self, error: Invalid, field: str | None = None) -> None:
        for problem in error.errors:
            self.add(field or problem.field, problem.message)


def plan(body: SweepCreate, settings: Settings) -> SweepPlan:
    """Check ``body`` against the catalogue and this server's limits; every problem names its field."""
    problems = _Problems()
    given = body.model_fields_set
    for name in ("method", "params"):
        if name in body.config:
            problems.add(f"config.{name}", "is set per sweep: name the methods in 'methods' and fixed "
                         "hyperparameters in 'params' (method -> params)")
    for method in body.params:
        if method not in body.methods:
            problems.add(f"params.{method}", f"is not one of the sweep's methods ({', '.join(body.methods)})")
    bases: dict[str, dict[str, Any]] = {}
    for method in body.methods:
        try:
            config = policy.validate_config(
                {**body.config, "method": method, "params": body.params.get(method, {})}, field="config",
            )
            policy.check_config(config, settings, field="config")
        except Invalid as error:
            for problem in error.errors:
                prefix = "config.params."
                field = f"params.{method}.{problem.field.removeprefix(prefix)}" if problem.field.startswith(prefix) else problem.field
                problems.add(field, problem.message)
            continue
        bases[method] = config.model_dump(mode="json")
    if problems.found:
        raise Invalid(problems.found)

    dataset = next(iter(bases.values()))["dataset"]
    requested = dict(body.space)
    spaces: dict[str, dict[str, Dimension]] = {}
    kinds: dict[str, dict[str, Kind]] = {m: {} for m in body.methods}
    for method in body.methods:
        spaces[method] = (paper_space(dataset, method) if body.preset == "paper" else {}) | requested
    for path in requested:
        owners = [m for m in body.methods if field_of(path, dataset, m)]
        if not owners:
            allowed = sorted({p for m in body.methods for p in searchable_paths(dataset, m)})
            problems.add(f"space.{path}", f"is not a field a sweep can search for {', '.join(body.methods)}; "
                         f"allowed: {', '.join(allowed)}")
        for method in body.methods:
            if method not in owners:
                spaces[method].pop(path, None)  # params.tau searches the methods that have tau
    for method in body.methods:
        for path, dimension in spaces[method].items():
            field = field_of(path, dataset, method)
            assert field is not None
            kinds[method][path] = field.kind
            _check_dimension(problems, f"space.{path}", dimension, field.kind, bases[method], path, settings)
        if not spaces[method] and not problems.found:
            problems.add("space", f"gives {method} nothing to search; add a field it has, e.g. lr or "
                         f"{', '.join(searchable_paths(dataset, method)[:4])}")

    objective = body.objective
    modalities = list(next(iter(bases.values())).get("modalities") or [])
    for head in objective.unknown_heads(modalities):
        problems.add(f"objective.weights.{head}", f"is not a head of these runs; heads: fused, weak, {', '.join(modalities)}")

    sampler = body.sampler if "sampler" in given or body.preset is None else PAPER["sampler"]
    budgets = _budgets(problems, body, sampler, spaces, kinds)
    if sum(budgets.values()) > MAX_TRIALS:
        problems.add("budget", f"asks for {sum(budgets.values())} trials in all; a sweep may have at most {MAX_TRIALS}")
    if body.parallelism > settings.max_active_runs:
        problems.add("parallelism", f"must be at most {settings.max_active_runs}, the queued and running runs this "
                     f"server allows per token (MILES_MAX_ACTIVE_RUNS); got {body.parallelism}")
    if problems.found:
        raise Invalid(problems.found)
    seeds = body.seeds_for_best if "seeds_for_best" in given or body.preset is None else PAPER["seeds_for_best"]
    first = bases[body.methods[0]]
    return SweepPlan(
        config={k: v for k, v in first.items() if k not in ("method", "params")}, methods=list(body.methods),
        params={m: bases[m]["params"] for m in body.methods}, spaces=spaces, kinds=kinds, sampler=sampler,
        seed=body.seed, budgets=budgets, parallelism=body.parallelism, objective=objective, pruner=body.pruner,
        seeds_for_best=seeds, preset=body.preset, tags=list(dict.fromkeys(body.tags)),
    )


def _check_dimension(
    problems: _Problems, where: str, dimension: Dimension, kind: Kind, base: dict[str, Any], path: str,
    settings: Settings,
) -> None:
    """The dimension fits the field: ranges only over numbers (integer ends for integers), and every end
    or choice a valid config value on this server."""
    if dimension.is_range and kind in ("bool", "enum"):
        problems.add(where, f"takes one of {', '.join(map(repr, field_choices(path, base)))}: give choices, not a range")
        return
    if dimension.is_range and kind == "int":
        ends = [dimension.low, dimension.high] + ([dimension.step] if dimension.step is not None else [])
        if not all(float(end).is_integer() for end in ends if end is not None):
            problems.add(where, "is an integer field: low, high and step must be whole numbers")
            return
    for part, value in dimension.probes():
        if dimension.is_range and kind == "int":
            value = int(value)
        try:
            config = policy.validate_config(with_value(base, path, value), field="config")
            policy.check_config(config, settings, field="config")
        except Invalid as error:
            problems.add(f"{where}.{part}", error.errors[0].message)


def _budgets(
    problems: _Problems, body: SweepCreate, sampler: Sampler, spaces: dict[str, dict[str, Dimension]],
    kinds: dict[str, dict[str, Kind]],
) -> dict[str, int]:
    if sampler != "grid":
        budget = body.budget or (PAPER["budget"] if body.preset == "paper" else DEFAULT_BUDGET)
        return dict.fromkeys(body.methods, budget)
    budgets = {}
    for method, space in spaces.items():
        size = 1
        for path, dimension in space.items():
            values = dimension.values(kinds[method][path])
            if values is None:
                problems.add(f"space.{path}", "a grid needs values to enumerate: choices, or a range with a step "
                             "(integers step by 1)")
                size = 0
                break
            size *= len(values)
        budgets[method] = size
    sizes = {size for size in budgets.values() if size}
    if body.budget is not None and sizes and sizes != {body.budget}:
        grid = ", ".join(f"{method} {size}" for method, size in budgets.items())
        problems.add("budget", f"of a grid sweep is its grid ({grid} combinations); leave it out (got {body.budget})")
    return budgets
