"""The paper's kind of table, from runs: per method and fusion, mean and spread over seeds.

One definition for every place that shows it (``miles compare``, the server's
``GET /api/v1/results`` behind the experiment and compare pages,
``scripts/results.py``):

- **Groups**: runs of one dataset and one pair of modalities, in either order. A
  run of one modality alone (a ceiling) joins each group of its dataset whose pair
  holds its modality.
- **Dominant and weak**: the modalities whose own heads score highest and lowest
  on *validation* (at each run's best validation epoch), on average over the
  group's finished ``joint`` runs, or over all its finished runs when none is a
  joint run. Never on test: the roles label the test columns.
- **Rows**: a method and a fusion; runs that differ only by seed share a row, and
  rows of one method that differ in other settings (tau, lr, ...) are split and
  labelled with those settings.
- **Numbers**: test metrics of the fused head, the dominant and the weak head, and
  Delta = dominant - weak (the paper's gap between the heads), each as the mean and
  the sample standard deviation (n - 1) over seeds, at the best validation epoch
  (the run's summary) and at the last epoch (``final/...``). For a one-modality
  method the seed's two runs (one per modality) make one sample, and the row shows
  each modality's ceiling in its column. ``gap`` is the final utilization gap
  ``util/delta``, when the runs measured it.
- Only succeeded runs count; the others of a row are counted by status
  (``waiting``), and every run, a failed one with its error, is listed in ``runs``.

No torch here; pure Python over plain records.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, Field

from trainer.config import FUSIONS
from trainer.datasets import DATASETS
from trainer.methods import METHODS

SUCCEEDED = "succeeded"  # the trainer's final status of a run that trained to the end
NO_RESULTS = "no results"  # in Row.waiting: succeeded, but without test metrics (a logged run)
# Config fields shown as columns or irrelevant to a result: every other difference splits a row.
SHOWN = frozenset({"dataset", "modalities", "method", "fusion", "seed", "device", "data_path"})
# The paper's order: the unbalanced references first, MILES last, the baselines between.
FIRST, LAST = ("joint", "joint_aux"), "miles"


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class RunRecord:
    """What the table needs of one run, wherever it comes from (the database, a ``miles compare`` cell)."""

    id: int | str
    name: str
    dataset: str | None
    modalities: tuple[str, ...]
    method: str | None
    fusion: str | None
    seed: int | None
    status: str
    summary: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] | None = None  # the settings that may split rows
    latest: Mapping[str, float] = field(default_factory=dict)  # the last value of each metric key
    error: str | None = None

    @cached_property
    def single(self) -> bool:
        """A run of one modality alone: it has no fused head."""
        return len(self.modalities) == 1

    @cached_property
    def finished(self) -> bool:
        """Succeeded with test metrics: it enters the numbers."""
        head = self.modalities[0] if self.single else "fused"
        return self.status == SUCCEEDED and finite(self.summary.get(f"metric/test/{head}")) is not None

    @cached_property
    def results(self) -> dict[str, float]:
        """The test metrics of its heads at the best validation epoch (``metric/test/...``) and at the last
        (``final/metric/test/...``), and the final ``gap``: those it holds."""
        heads = self.modalities if self.single else ("fused", *self.modalities)
        found = {
            key: finite(self.summary.get(key))
            for key in (f"{prefix}metric/test/{head}" for prefix in ("", "final/") for head in heads)
        }
        found["gap"] = finite(self.latest.get("util/delta"))
        return {key: value for key, value in found.items() if value is not None}

    def validation(self, modality: str) -> float | None:
        """The head's validation metric at the best validation epoch (else its latest value): never a test score."""
        best = finite(self.summary.get(f"metric/val/{modality}"))
        return best if best is not None else finite(self.latest.get(f"metric/val/{modality}"))


# -- the table's shape (also the JSON of table.json and of the API) ------------------------------------------


class Stat(BaseModel):
    """Mean and sample standard deviation over seeds; sd is null below two values, mean with none."""

    n: int
    mean: float | None
    sd: float | None

    def text(self, digits: int = 3) -> str:
        """``0.951 ± 0.004``; the value alone for one seed; ``-`` for none."""
        if self.mean is None:
            return "-"
        if self.sd is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f}"


def describe(values: Iterable[float | None]) -> Stat:
    """Mean and sample standard deviation (n - 1, as papers report spread over seeds) of the finite values."""
    kept = [v for v in (finite(v) for v in values) if v is not None]
    if not kept:
        return Stat(n=0, mean=None, sd=None)
    mean = math.fsum(kept) / len(kept)
    # The textbook formula in floats: statistics.stdev's exact fractions cost 5 ms a column over 2,000 runs.
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in kept) / (len(kept) - 1)) if len(kept) > 1 else None
    return Stat(n=len(kept), mean=mean, sd=sd)


class Scores(BaseModel):
    """Test metrics at one epoch of the runs: the fused head, the dominant and weak heads, and Delta."""

    fused: Stat
    dominant: Stat
    weak: Stat
    delta: Stat = Field(description="dominant - weak, seed by seed.")


class RunScores(BaseModel):
    """One run's part in a row: its test metrics at the best validation epoch."""

    id: int | str
    name: str
    seed: int | None
    status: str
    modality: str | None = Field(description="The one modality of a run of one modality alone.")
    fused: float | None
    dominant: float | None
    weak: float | None
    gap: float | None
    error: str | None


class Row(BaseModel):
    method: str | None
    fusion: str | None = Field(description="Null for a method of one modality alone.")
    label: str = Field(description="The settings this row differs in from the method's other rows, e.g. 'tau 0.1'.")
    seeds: int = Field(description="Samples in the numbers: finished runs (for one modality alone: seeds).")
    best: Scores = Field(description="At each run's best validation epoch.")
    last: Scores = Field(description="At each run's last epoch.")
    gap: Stat = Field(description="The final utilization gap util/delta.")
    waiting: dict[str, int] = Field(
        description=f"Runs of the row not in the numbers, by status ('{NO_RESULTS}': succeeded without test metrics)."
    )
    runs: list[RunScores]


class Group(BaseModel):
    dataset: str | None
    modalities: list[str]
    metric: str = Field(description="'accuracy' (single-label tasks) or 'F1' (multilabel).")
    dominant: str | None
    weak: str | None
    basis: Literal["joint", "all"] | None = Field(
        description="Roles chosen on validation under joint training, or over all runs when none is a joint run."
    )
    rows: list[Row]


class ComparisonTable(BaseModel):
    groups: list[Group]
    runs: int = Field(description="Runs given.")
    counted: int = Field(description="Runs in the numbers (succeeded, with test metrics).")


# -- building it ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Roles:
    dominant: str
    weak: str
    basis: Literal["joint", "all"]


def dominance(records: Sequence[RunRecord]) -> Roles | None:
    """The dominant and the weak modality of comparable runs, chosen on validation (see the module's docstring)."""
    done = [r for r in records if r.finished]
    joint = [r for r in done if r.method == "joint" and not r.single]
    basis = joint or done
    modalities = list(dict.fromkeys(m for r in basis for m in r.modalities))
    means = {m: describe(r.validation(m) for r in basis if m in r.modalities).mean for m in modalities}
    ranked = sorted(((mean, m) for m, mean in means.items() if mean is not None), key=lambda item: -item[0])
    if len(ranked) < 2:
        return None
    return Roles(dominant=ranked[0][1], weak=ranked[-1][1], basis="joint" if joint else "all")


def _settings(record: RunRecord) -> dict[str, str]:
    """The run's config as ``path -> JSON value``, without the fields shown as columns."""
    flat: dict[str, str] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            for key, inner in value.items():
                walk(inner, f"{path}.{key}" if path else str(key))
        elif path not in SHOWN:
            flat[path] = json.dumps(value, sort_keys=True)

    walk(record.config or {}, "")
    return flat


def _row_key(record: RunRecord, settings: Mapping[str, str]) -> tuple[Any, ...]:
    return (record.method, None if record.single else record.fusion, tuple(sorted(settings.items())))


def _label(settings: Mapping[str, str], differing: Sequence[str]) -> str:
    return " · ".join(f"{path.split('.')[-1]} {settings.get(path, 'default')}" for path in differing)


def _differing(keyed: Sequence[tuple[RunRecord, dict[str, str]]]) -> dict[str | None, list[str]]:
    """Per method, the settings in which its runs differ: a path some run lacks or holds another value of."""
    runs: Counter[str | None] = Counter()
    holders: dict[str | None, Counter[str]] = defaultdict(Counter)  # runs holding each path
    values: dict[str | None, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for record, settings in keyed:
        runs[record.method] += 1
        for path, value in settings.items():
            holders[record.method][path] += 1
            values[record.method][path].add(value)
    return {
        method: sorted(p for p, seen in values[method].items() if len(seen) > 1 or holders[method][p] < total)
        for method, total in runs.items()
    }


def _samples(records: Sequence[RunRecord]) -> list[dict[str, float]]:
    """The seeds of a row as ``key -> value``: one per finished run, or, for runs of one modality alone,
    one per seed merging the runs of each modality (their heads' keys do not overlap)."""
    done = [r for r in records if r.finished]
    if not all(r.single for r in done):
        return [r.results for r in done]
    by_seed: dict[Any, list[RunRecord]] = {}
    for index, record in enumerate(done):
        by_seed.setdefault(record.seed if record.seed is not None else f"run {index}", []).append(record)
    merged = []
    for runs in by_seed.values():
        values: dict[str, list[float]] = {}
        for run in runs:
            for key, value in run.results.items():
                values.setdefault(key, []).append(value)
        merged.append({key: statistics.fmean(vs) for key, vs in values.items()})
    return merged


def _scores(samples: Sequence[Mapping[str, float]], roles: Roles | None, prefix: str) -> Scores:
    def column(head: str | None) -> list[float | None]:
        return [s.get(f"{prefix}metric/test/{head}") for s in samples] if head else []

    dominant, weak = column(roles and roles.dominant), column(roles and roles.weak)
    delta = [d - w if d is not None and w is not None else None for d, w in zip(dominant, weak, strict=True)]
    return Scores(fused=describe(column("fused")), dominant=describe(dominant), weak=describe(weak), delta=describe(delta))


def _run_scores(record: RunRecord, roles: Roles | None) -> RunScores:
    metrics = record.results if record.finished else {}

    def head(name: str | None) -> float | None:
        return metrics.get(f"metric/test/{name}") if name else None

    return RunScores(
        id=record.id, name=record.name, seed=record.seed, status=record.status,
        modality=record.modalities[0] if record.single else None, fused=head("fused"),
        dominant=head(roles and roles.dominant), weak=head(roles and roles.weak),
        gap=finite(record.latest.get("util/delta")), error=record.error,
    )


def _rank(row: Row) -> tuple[Any, ...]:
    """Ceilings (one modality alone) first, then the references, the baselines in catalogue order, MILES last."""
    method = row.method or ""
    catalogue = list(METHODS)
    if method in METHODS and METHODS[method].single_modality:
        place = -1
    elif method in FIRST:
        place = FIRST.index(method)
    elif method == LAST:
        place = 10_000
    else:
        place = 100 + (catalogue.index(method) if method in catalogue else len(catalogue))
    fusions = list(FUSIONS)
    fusion = -1 if row.fusion is None else fusions.index(row.fusion) if row.fusion in fusions else len(fusions)
    return place, method, fusion, row.fusion or "", row.label


def _rows(records: Sequence[RunRecord], roles: Roles | None) -> list[Row]:
    keyed = [(record, _settings(record)) for record in records]
    differing = _differing(keyed)
    rows: dict[tuple[Any, ...], list[tuple[RunRecord, dict[str, str]]]] = {}
    for record, settings in keyed:
        rows.setdefault(_row_key(record, settings), []).append((record, settings))
    built = []
    for (method, fusion, _), members in rows.items():
        runs = [record for record, _ in members]
        samples = _samples(runs)
        waiting: dict[str, int] = {}
        for record in runs:
            if not record.finished:
                status = NO_RESULTS if record.status == SUCCEEDED else record.status
                waiting[status] = waiting.get(status, 0) + 1
        built.append(Row(
            method=method, fusion=fusion, label=_label(members[0][1], differing.get(method, [])), seeds=len(samples),
            best=_scores(samples, roles, ""), last=_scores(samples, roles, "final/"),
            gap=describe(s.get("gap") for s in samples), waiting=waiting,
            runs=[_run_scores(record, roles) for record in runs],
        ))
    return sorted(built, key=_rank)


def _metric_name(dataset: str | None) -> str:
    entry = DATASETS.get(dataset or "")
    return "F1" if entry is not None and entry.info.task == "multilabel" else "accuracy"


def _groups(records: Sequence[RunRecord]) -> list[tuple[str | None, list[str], list[RunRecord]]]:
    """Runs of one dataset and pair (in either order) together; each run of one modality alone joins every
    group of its dataset that holds its modality (or, with none, a group of such runs of the dataset)."""
    groups: dict[tuple[str | None, frozenset[str]], tuple[list[str], list[RunRecord]]] = {}
    for record in records:
        if not record.single:
            groups.setdefault((record.dataset, frozenset(record.modalities)), (list(record.modalities), []))[1].append(record)
    alone: dict[str | None, tuple[list[str], list[RunRecord]]] = {}
    for record in records:
        if record.single:
            homes = [members for (dataset, pair), (_, members) in groups.items() if dataset == record.dataset and record.modalities[0] in pair]
            for members in homes:
                members.append(record)
            if not homes:
                modalities, members = alone.setdefault(record.dataset, ([], []))
                modalities.extend(m for m in record.modalities if m not in modalities)
                members.append(record)
    return [(dataset, modalities, members) for (dataset, _), (modalities, members) in groups.items()] + [
        (dataset, modalities, members) for dataset, (modalities, members) in alone.items()
    ]


def comparison_table(records: Sequence[RunRecord]) -> ComparisonTable:
    """The table of ``records`` (any statuses): groups, their roles, and a row per method and fusion."""
    groups = []
    for dataset, modalities, members in _groups(records):
        roles = dominance(members)
        groups.append(Group(
            dataset=dataset, modalities=modalities, metric=_metric_name(dataset),
            dominant=roles.dominant if roles else None, weak=roles.weak if roles else None,
            basis=roles.basis if roles else None, rows=_rows(members, roles),
        ))
    return ComparisonTable(groups=groups, runs=len(records), counted=sum(r.finished for r in records))
