"""The JSON shapes of the API: request bodies (strict: unknown fields are errors) and responses.

Everything a client sends is checked here before it reaches the database: text
holds no NUL and no unpaired surrogate (neither can be stored), numbers are
finite, steps fit a JavaScript number, and free-form documents are plain JSON of
a bounded size (`DOCUMENT_LIMITS`: every list of runs carries them, so a few big
ones would make every page of the dashboard slow).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal, NotRequired

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from typing_extensions import TypedDict

from server.models import Role, Run, Status
from server.store.metrics import MAX_POINTS_PER_REQUEST, MAX_STEP, Latest
from trainer.comparison import ComparisonTable
from trainer.config import TrainConfig
from trainer.grid import Grid
from trainer.spec import SpecModel, field_error

# Patterns, with the sentence shown when a value does not match (see api.errors).
NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"
KEY_PATTERN = r"^[^*,\x00-\x1f\x7f]+$"
KIND_PATTERN = r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$"
TEXT_PATTERN = r"^[^\x00]*$"
PATTERN_HELP = {
    NAME_PATTERN: "may not contain control characters (such as a newline)",
    KEY_PATTERN: "may not contain '*' or ',' (they are the query syntax of ?keys=) or control characters",
    KIND_PATTERN: "must be dotted words of letters, digits, '_' and '-', e.g. 'miles.decision'",
    TEXT_PATTERN: "may not contain NUL characters",
}
MAX_JSON_DEPTH = 32
# Bytes of compact UTF-8 JSON that each free-form document may take (422 beyond, naming the limit).
MAX_PARAMS_BYTES = 64 * 1024  # a logged run's params, and a clone's overrides
MAX_SUMMARY_BYTES = 64 * 1024  # a run's summary
MAX_EVENT_DATA_BYTES = 16 * 1024  # the data of one event

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NAME_PATTERN)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NAME_PATTERN)]
Tags = Annotated[list[Tag], Field(max_length=50, description="Labels to filter runs by.")]
Text = Annotated[str, StringConstraints(max_length=20_000, pattern=TEXT_PATTERN)]
MetricKey = Annotated[str, StringConstraints(min_length=1, max_length=250, pattern=KEY_PATTERN)]
Kind = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=KIND_PATTERN)]
Step = Annotated[int, Field(ge=0, le=MAX_STEP, description="A non-negative integer below 2**53 (the epoch for trainer runs).")]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Timestamp = Annotated[datetime, Field(
    ge=datetime(1970, 1, 1, tzinfo=UTC), le=datetime(9000, 1, 1, tzinfo=UTC),
    description="ISO 8601 (UTC when no zone is given) or Unix seconds.",
)]
FinalStatus = Literal["succeeded", "failed", "cancelled"]


def _check_document(value: Any, path: str = "", depth: int = 0) -> None:
    where = f" at {path.lstrip('.')}" if path else ""
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"is nested deeper than {MAX_JSON_DEPTH} levels{where}")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"holds a NUL character{where}, which cannot be stored")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"holds an unpaired surrogate{where}, which is not Unicode") from None
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"holds {value}{where}; only finite numbers are JSON")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_document(key, path, depth + 1)
            _check_document(item, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_document(item, f"{path}[{index}]", depth + 1)


def _document(value: dict[str, Any], *, max_bytes: int) -> dict[str, Any]:
    _check_document(value)
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())  # surrogates refused above
    if size > max_bytes:
        raise ValueError(f"is {size:,} bytes of JSON; at most {max_bytes:,} are allowed")
    return value


def json_object(max_bytes: int) -> Any:
    """A free-form JSON object of at most ``max_bytes`` bytes (compact UTF-8 JSON)."""
    return Annotated[
        dict[str, Any], AfterValidator(partial(_document, max_bytes=max_bytes)),
        Field(json_schema_extra={"x-max-bytes": max_bytes}),
    ]


Params = json_object(MAX_PARAMS_BYTES)
Summary = json_object(MAX_SUMMARY_BYTES)
EventData = json_object(MAX_EVENT_DATA_BYTES)


def checked_config(config: TrainConfig, field: str) -> TrainConfig:
    """``config``, refused when it holds text that cannot be stored (folder modalities, data_path)."""
    try:
        _check_document(config.model_dump(mode="json"))
    except ValueError as error:
        raise field_error("request", field, None, str(error)) from None
    return config


class Body(SpecModel):
    """Base of request bodies: unknown fields are errors, range errors state the whole range."""


# -- runs -----------------------------------------------------------------------------------------


class RunCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"name": "miles tau 0.2", "experiment": "mfeat ablation", "tags": ["baseline"], "execute": True,
         "config": {"dataset": "mfeat", "modalities": ["pix", "fou"], "method": "miles", "params": {"tau": 0.2}, "epochs": 30}},
        {"name": "my own loop", "execute": False, "params": {"lr": 0.001, "optimizer": "adam"}},
    ]})

    name: Name | None = Field(None, description="Default: a description of the config, or 'run <id>'.")
    experiment: Name | None = Field(None, description="Experiment name; created when missing.")
    tags: Tags = []
    config: TrainConfig | None = Field(None, description="The job spec; required when execute is true.")
    params: Params | None = Field(
        None, description=f"Free-form hyperparameters of a run logged from outside; at most {MAX_PARAMS_BYTES:,} bytes of JSON.",
    )
    execute: bool = Field(True, description="True: a worker runs it (queued). False: a run logged from outside (running).")

    @model_validator(mode="after")
    def _config_matches_execute(self) -> RunCreate:
        if self.execute and self.config is None:
            raise field_error(
                "RunCreate", "config", None, "is required when execute is true (a worker needs a TrainConfig to run); "
                "send \"execute\": false to log a run of your own loop",
            )
        if self.execute and self.params is not None:
            raise field_error(
                "RunCreate", "params", self.params, "is for runs logged from outside (execute false); the "
                "hyperparameters of an executed run are config.params",
            )
        if self.config is not None:
            checked_config(self.config, "config")
        return self


class RunUpdate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "failed", "error": "RuntimeError: CUDA out of memory"}, {"name": "best so far", "tags": ["keep"]},
    ]})

    name: Name | None = None
    tags: Tags | None = Field(None, description="Replaces the run's tags.")
    experiment: Name | None = Field(None, description="Move the run to this experiment (created when missing); null removes it.")
    status: FinalStatus | Literal["running"] | None = Field(None, description="Final status of a run logged from outside.")
    error: Text | None = Field(None, description="What went wrong, with status failed.")
    summary: Summary | None = Field(None, description=(
        f"Replaces the run's summary (best epoch, final metrics, ...); at most {MAX_SUMMARY_BYTES:,} bytes of JSON."
    ))
    params: Params | None = Field(
        None, description=f"Replaces the free-form hyperparameters; at most {MAX_PARAMS_BYTES:,} bytes of JSON.",
    )


class RunClone(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"overrides": {"seed": 3}}, {"overrides": {"params": {"tau": 0.3}}, "name": "tau 0.3"}]})

    overrides: Params = Field(
        default_factory=dict, description="Part of a TrainConfig merged into the source's (nested objects key by key)."
    )
    name: Name | None = None
    experiment: Name | None = Field(None, description="Default: the source run's experiment.")
    tags: Tags | None = Field(None, description="Default: the source run's tags.")


class Progress(BaseModel):
    epoch: int = Field(description="Epochs completed.")
    epochs: int | None = Field(description="Epochs asked for (from the config); null for a logged run without one.")


class LatestValue(BaseModel):
    step: int
    value: float


class MachineOut(BaseModel):
    """Where a run trained (its latest attempt), as its worker reported it."""

    worker: str | None = Field(None, description="The worker process, host:pid.")
    host: str | None = None
    device: str | None = Field(None, description="cuda or cpu.")
    device_name: str | None = Field(None, description="The GPU's name, or the CPU's model.")
    gpu_memory_mib: int | None = None
    cuda: str | None = Field(None, description="The CUDA version torch was built with.")
    torch: str | None = None
    version: str | None = Field(None, description="The version of miles-dashboard that trained it.")


class Unserved(BaseModel):
    """A queued run that no live worker would take."""

    queue: str
    command: str = Field(description="A command that starts a worker for this queue, e.g. 'miles worker --cpu'.")
    message: str


class RunOut(BaseModel):
    id: int
    name: str
    experiment_id: int | None
    experiment: str | None
    status: Status
    execute: bool
    tags: list[str]
    config: dict[str, Any] | None = Field(description="The TrainConfig, with every default filled in.")
    params: dict[str, Any] | None
    method: str | None
    dataset: str | None
    fusion: str | None
    modalities: list[str] | None
    seed: int | None
    queue: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    attempts: int
    cancel_requested: bool
    error: str | None
    error_detail: str | None
    summary: dict[str, Any] | None
    sweep_id: int | None = Field(description="The sweep this run is a trial (or a rerun of the best) of.")
    progress: Progress
    latest: dict[str, LatestValue] = Field(description=(
        "The point of the highest step of each metric key; in a list, only those the dashboard's tables show, "
        "unless ?latest= names others."
    ))
    machine: MachineOut | None = Field(None, description="Where it trained; null until a worker claims it.")
    unserved: Unserved | None = Field(
        None, description="Set while the run is queued on a queue that no live worker consumes: it would wait forever.",
    )

    @classmethod
    def build(cls, run: Run, latest: dict[str, Latest], *, unserved: Unserved | None = None) -> RunOut:
        return cls(
            id=run.id, name=run.name, experiment_id=run.experiment_id,
            experiment=run.experiment.name if run.experiment else None, status=run.status, execute=run.execute,
            tags=run.tags, config=run.spec, params=run.params, method=run.method, dataset=run.dataset,
            fusion=run.fusion, modalities=run.modalities, seed=run.seed, queue=run.queue, created_at=run.created_at,
            started_at=run.started_at, finished_at=run.finished_at, heartbeat_at=run.heartbeat_at, worker=run.worker,
            attempts=run.attempts, cancel_requested=run.cancel_requested, error=run.error,
            error_detail=run.error_detail, summary=run.summary, sweep_id=run.sweep_id,
            progress=Progress(epoch=run.epoch, epochs=run.epochs),
            latest={key: LatestValue(step=row.step, value=row.value) for key, row in latest.items()},
            machine=MachineOut.model_validate(run.machine) if run.machine else None, unserved=unserved,
        )


class RunPage(BaseModel):
    items: list[RunOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


# -- workers --------------------------------------------------------------------------------------


class WorkerRun(BaseModel):
    id: int
    name: str | None


class WorkerOut(BaseModel):
    name: str = Field(description="host:pid, as the runs it claims record it.")
    host: str
    pid: int
    process: str = Field(description="Its name among its supervisor's processes: gpu0, cpu1, ...")
    queues: list[str] = Field(description="The queues it consumes.")
    status: Literal["busy", "idle", "lost"] = Field(description="lost: no heartbeat within its heartbeat timeout.")
    device: str
    device_name: str
    gpu_memory_mib: int | None
    cuda: str | None
    torch: str | None
    version: str
    started_at: datetime
    heartbeat_at: datetime
    run: WorkerRun | None = Field(description="The run it is training (or was, when lost).")
    recent: list[list[float | None]] = Field(description="Its latest readings, oldest first: [unix seconds, CPU %, GPU % or null].")


class WorkerList(BaseModel):
    items: list[WorkerOut] = Field(description="Live workers first (busy, then idle), then those lost in the last day.")


# -- metrics --------------------------------------------------------------------------------------


class MetricPoint(TypedDict):
    """One point. A TypedDict, not a model: 50,000 of these are validated per request, and
    pydantic-core builds dicts in half the time it takes to build model instances."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]

    key: Annotated[MetricKey, Field(description="A path such as 'loss/train' or 'util/audio'.")]
    step: Step
    value: Finite
    time: NotRequired[Annotated[Timestamp | None, Field(description="When it was measured; default: when received.")]]


# Not a `Body`: its wrap validator would make pydantic decode the JSON into Python objects before
# validating them (`server.api.deps.JsonBody` parses it, and words its errors as a `Body`'s).
class MetricBatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"points": [
        {"key": "loss/train", "step": 1, "value": 0.693}, {"key": "util/delta", "step": 1, "value": 0.31},
    ]}]})

    points: list[MetricPoint] = Field(max_length=MAX_POINTS_PER_REQUEST)


class IngestResult(BaseModel):
    accepted: int = Field(description="Distinct (key, step) points written.")
    cancel_requested: bool = Field(description="Someone asked this run to stop: a logged run's client should end it.")


class SeriesOut(BaseModel):
    steps: list[int]
    values: list[float]


class SeriesSet(BaseModel):
    series: dict[str, SeriesOut]


class LatestSet(BaseModel):
    latest: dict[str, LatestValue]


# -- events ---------------------------------------------------------------------------------------


class EventIn(Body):
    step: Step = 0
    kind: Kind = Field(description="Dotted, e.g. 'miles.decision', 'run.started', 'note'.")
    message: Text
    data: EventData = Field(default_factory=dict, description=f"At most {MAX_EVENT_DATA_BYTES:,} bytes of JSON.")
    key: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NAME_PATTERN)] | None = Field(
        None, description="Idempotency key, unique within the run: an event with a key the run has is skipped."
    )
    time: Timestamp | None = None


class EventBatch(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"events": [
        {"step": 3, "kind": "miles.decision", "message": "MILES slowed pix to 5.0e-04", "data": {"slowed": "pix"},
         "key": "epoch-3-miles"},
    ]}]})

    events: list[EventIn] = Field(max_length=10_000)


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    run_id: int
    step: int
    time: datetime
    kind: str
    message: str
    data: dict[str, Any]
    key: str | None


class EventPage(BaseModel):
    items: list[EventOut]
    next_after_id: int | None = Field(description="Pass as ?after_id= for more; null when there are no more yet.")


class EventsAdded(BaseModel):
    created: list[int] = Field(description="Ids of the events stored (those with a key already present are skipped).")


# -- artifacts ------------------------------------------------------------------------------------


class ArtifactOut(BaseModel):
    path: str = Field(description="Relative to the run's directory, e.g. 'best.pt'.")
    size: int
    modified: datetime


class ArtifactList(BaseModel):
    items: list[ArtifactOut]


# -- experiments ----------------------------------------------------------------------------------


class ExperimentCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{"name": "mfeat ablation", "description": "tau sweep"}]})

    name: Name
    description: Text = ""


class ExperimentUpdate(Body):
    name: Name | None = None
    description: Text | None = None


class ExperimentOut(BaseModel):
    id: int
    name: str
    description: str
    created_at: datetime
    runs: int


class ExperimentPage(BaseModel):
    items: list[ExperimentOut]
    next_cursor: str | None


# -- grids and their table of results -------------------------------------------------------------


class GridCreate(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "experiment": "mfeat: methods x fusions", "grid": {
            "config": {"dataset": "mfeat", "modalities": ["pix", "fou"], "epochs": 30},
            "methods": ["joint", "joint_aux", "miles"], "fusions": ["concat", "sum"], "seeds": [0, 1, 2],
            "params": {"miles": {"tau": 0.2}},
        },
    }]})

    experiment: Name = Field(description="The experiment that groups the grid's runs (created when missing); its page shows their table.")
    name: Name | None = Field(None, description="Prefix of the runs' names ('tau study: miles · concat · seed 0'); default: the cell alone.")
    tags: Tags = []
    grid: Grid

    @model_validator(mode="after")
    def _storable(self) -> GridCreate:
        for field, value in (("grid.config", self.grid.config), ("grid.params", self.grid.params)):
            try:
                _check_document(value)
            except ValueError as error:
                raise field_error("GridCreate", field, None, str(error)) from None
        return self


class GridCell(BaseModel):
    key: str = Field(description="method/fusion/seedN; method/modality/seedN for a method of one modality alone.")
    run: RunOut


class GridOut(BaseModel):
    experiment: ExperimentOut
    cells: list[GridCell] = Field(description="The grid's runs, queued, method by method, then fusion, then seed.")


class ResultsOut(ComparisonTable):
    complete: bool = Field(description="False when more runs matched than one table holds; it holds the newest.")


# -- auth, catalog, health, errors ----------------------------------------------------------------


class Login(Body):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=NAME_PATTERN)]


class LoginOut(BaseModel):
    token: str = Field(description="The name of the token the session now uses.")
    role: Role = Field(description="Its role: admin, member or viewer.")


class SessionOut(BaseModel):
    auth: bool = Field(description="Whether this server requires an API token.")
    public_reads: bool = Field(description="Whether reading works without one.")
    token: str | None = Field(description="The name of the valid token this client presents, if any.")
    role: Role | None = Field(None, description="That token's role: admin, member or viewer.")


class ModalityOut(BaseModel):
    kind: str
    shape: list[int]


class DatasetOut(BaseModel):
    name: str
    title: str
    description: str
    task: str
    classes: list[str]
    modalities: dict[str, ModalityOut]
    default_modalities: list[str]
    splits: dict[str, int] | None
    reads_disk: bool
    source: str
    params: dict[str, Any] = Field(description="JSON schema of the dataset's options (config.dataset_params).")


class MethodOut(BaseModel):
    name: str
    title: str
    description: str
    single_modality: bool = Field(description="A run trains one modality alone; a grid runs it once per modality of the pair.")
    fusions: list[str] | None = Field(None, description="The fusions the method works with (null: every fusion); others are refused.")
    params: dict[str, Any] = Field(description="JSON schema of the hyperparameters (config.params), with defaults and help.")


class FusionOut(BaseModel):
    name: str
    description: str


class PresetOut(BaseModel):
    name: str
    title: str
    description: str
    metric: str = Field(description="The task's metric (accuracy, or F1 for multilabel tasks).")
    config: dict[str, Any] = Field(description="The fields of a TrainConfig the preset sets; send {\"preset\": name} to use them.")


class Limits(BaseModel):
    max_epochs: int
    max_active_runs: int
    max_request_bytes: int
    max_points_per_request: int
    max_step: int
    max_params_bytes: int = MAX_PARAMS_BYTES
    max_summary_bytes: int = MAX_SUMMARY_BYTES
    max_event_data_bytes: int = MAX_EVENT_DATA_BYTES


class Catalog(BaseModel):
    datasets: list[DatasetOut]
    methods: list[MethodOut]
    fusions: list[FusionOut]
    presets: list[PresetOut] = Field(description="The paper's four tasks as named starting points of a run.")
    config_schema: dict[str, Any] = Field(description="JSON schema of TrainConfig, the job spec.")
    sweep_schema: dict[str, Any] = Field(description="JSON schema of the body of POST /sweeps.")
    limits: Limits


class Health(BaseModel):
    status: Literal["ok", "degraded", "unavailable"]
    database: str
    broker: str
    version: str


class FieldErrorOut(BaseModel):
    field: str = Field(description="Dotted path of the field, e.g. 'config.params.tau' or 'points.17.value'.")
    message: str


class ErrorOut(BaseModel):
    detail: str = Field(description="A sentence saying what went wrong and what to do.")
    errors: list[FieldErrorOut] = []
