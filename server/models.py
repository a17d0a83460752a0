"""The tables: experiments, runs and their tags, metrics (points, latest values, rollups), events, API tokens, workers,
sweeps.

Integer ids throughout. Times are stored in UTC and come back timezone-aware on
every backend. Free-form documents (the job spec, params, summary, event data)
are JSON, JSONB on PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Explicit constraint names, so that migrations can name what they alter or drop on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Status = Literal["queued", "running", "succeeded", "failed", "cancelled", "pruned"]
STATUSES: tuple[str, ...] = get_args(Status)
ACTIVE_STATUSES = ("queued", "running")
# pruned: a sweep's trial stopped early by its pruner (server.sweeps), with a run.pruned event.
FINAL_STATUSES = ("succeeded", "failed", "cancelled", "pruned")
# What an API token may do (server.api.access): admins everything, members read and change their own
# runs, viewers only read.
Role = Literal["admin", "member", "viewer"]
ROLES: tuple[str, ...] = get_args(Role)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp kept in UTC; naive values are taken as UTC. SQLite stores no zone, so it is added back."""

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Document = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: Document}


class Experiment(Base):
    __tablename__ = "experiment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_token"
    __table_args__ = (
        CheckConstraint(f"role IN ({', '.join(repr(r) for r in ROLES)})", name="role"),
        # A name may be reused once its token is revoked (rotating "ci" keeps the name).
        Index(
            "uq_api_token_active_name", "name", unique=True,
            postgresql_where=text("revoked_at IS NULL"), sqlite_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    hash: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 hex of the secret
    prefix: Mapped[str] = mapped_column(String(16))  # the token's first characters, for display
    role: Mapped[str] = mapped_column(String(16), default="member", server_default="member")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


RUN_FILTER_COLUMNS = ("status", "experiment_id", "method", "dataset", "fusion", "sweep_id")


class Run(Base):
    __tablename__ = "run"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in STATUSES)})", name="status"),
        Index("ix_run_created_at_id", "created_at", "id"),
        # Each filter of the runs page with the page's sort (created_at, then id): the planner walks
        # the filter's range in order and stops after a page, instead of sorting every match.
        *(Index(f"ix_run_{column}_created_at_id", column, "created_at", "id") for column in RUN_FILTER_COLUMNS),
        Index("ix_run_owner_token_id_status", "owner_token_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiment.id"))
    name: Mapped[str] = mapped_column(String(200), index=True)
    status: Mapped[str] = mapped_column(String(16))
    execute: Mapped[bool] = mapped_column(Boolean)  # run by a worker, or logged from outside
    spec: Mapped[dict[str, Any] | None]  # TrainConfig.model_dump(); None for a logged run without one
    params: Mapped[dict[str, Any] | None]  # free-form hyperparameters of a logged run
    # Copied out of the spec so that listing can filter on them with an index.
    method: Mapped[str | None] = mapped_column(String(64))
    dataset: Mapped[str | None] = mapped_column(String(64))
    fusion: Mapped[str | None] = mapped_column(String(32))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    queue: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    worker: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # times claimed by a worker
    # Times its worker was lost (no heartbeat) while running it; MILES_MAX_ATTEMPTS bounds these, not the
    # attempts, since a worker that shuts down cleanly hands its run back and that costs nothing.
    losses: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Epochs completed (the total is in the spec); a logged run's highest step, which may pass 2**31.
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    error_detail: Mapped[str | None] = mapped_column(Text)  # e.g. the last line of the traceback
    summary: Mapped[dict[str, Any] | None]
    # Where its latest attempt trains: trainer.system.MachineFacts and the worker, written when a worker claims it.
    machine: Mapped[dict[str, Any] | None]
    owner_token_id: Mapped[int | None] = mapped_column(ForeignKey("api_token.id", ondelete="SET NULL"))
    sweep_id: Mapped[int | None] = mapped_column(ForeignKey("sweep.id", ondelete="SET NULL"))

    experiment: Mapped[Experiment | None] = relationship(lazy="joined")
    tag_rows: Mapped[list[RunTag]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", passive_deletes=True, order_by="RunTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    @property
    def epochs(self) -> int | None:
        return self.spec.get("epochs") if self.spec else None

    @property
    def modalities(self) -> list[str] | None:
        return self.spec.get("modalities") if self.spec else None

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES


class RunTag(Base):
    __tablename__ = "run_tag"

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(100), primary_key=True, index=True)


class Metric(Base):
    """One point of a series; (run, key, step) is unique, so a repeated point overwrites.

    No foreign key to ``run``: checking it for each of 50,000 points of a batch doubled the
    cost of an ingest on PostgreSQL. The ingest writes ``latest_metric`` (which has the key)
    first, which locks the run against a concurrent delete, and deleting a run deletes its points.
    """

    __tablename__ = "metric"

    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[float] = mapped_column(Double)
    time: Mapped[datetime]


class LatestMetric(Base):
    """The point of the highest step of each series, for run tables."""

    __tablename__ = "latest_metric"

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float] = mapped_column(Double)
    time: Mapped[datetime]


class MetricUpdate(Base):
    """A point written at a step the run had already reached (not a system metric), by the ingest
    ``write`` (1, 2, ... per run): what a live stream that has sent that step still has to send as
    an update of it (`server.store.feed.updated_after`). A loop that posts each step once, in step
    order, writes none.
    """

    __tablename__ = "metric_update"

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    write: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    step: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class MetricRollup(Base):
    """The minimum and maximum point of each bucket of ``width(level)`` steps of a series.

    Kept up to date by every ingest, so that a long series is downsampled by reading
    a few thousand rows instead of scanning millions of points.
    """

    __tablename__ = "metric_rollup"

    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    level: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # step // width(level)
    count: Mapped[int] = mapped_column(BigInteger)
    min_step: Mapped[int] = mapped_column(BigInteger)
    min_value: Mapped[float] = mapped_column(Double)
    max_step: Mapped[int] = mapped_column(BigInteger)
    max_value: Mapped[float] = mapped_column(Double)


class RunEvent(Base):
    """A time-stamped note of a run (``miles.decision``, ``run.started``, ...)."""

    __tablename__ = "run_event"
    __table_args__ = (
        # Events re-reported after a resume carry the same key and are not stored twice.
        UniqueConstraint("run_id", "key"),
        Index("ix_run_event_run_id_id", "run_id", "id"),
        # Live streams look up, for each metric row, whether an event of its run has its time (server.store.feed).
        Index("ix_run_event_run_id_time", "run_id", "time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(100))
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    key: Mapped[str | None] = mapped_column(String(200))


WorkerState = Literal["idle", "busy"]
WORKER_STATES: tuple[str, ...] = get_args(WorkerState)


class Worker(Base):
    """One `miles worker` process, as it last reported itself (server.store.workers).

    A worker renews ``expires_at`` with every heartbeat; one whose ``expires_at`` has
    passed is lost. A worker that stops cleanly deletes its row; a lost one is kept
    for a day, then pruned.
    """

    __tablename__ = "worker"
    __table_args__ = (
        CheckConstraint(f"state IN ({', '.join(repr(s) for s in WORKER_STATES)})", name="state"),
        # "Does a live worker consume this queue?": an index range per queue, not a scan (runs.unserved).
        Index("ix_worker_queue_expires_at", "queue", "expires_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)  # host:pid, as runs record their worker
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    process: Mapped[str] = mapped_column(String(64))  # the supervisor's name for it: gpu0, cpu1, ...
    queue: Mapped[str] = mapped_column(String(32))
    facts: Mapped[dict[str, Any]]  # trainer.system.MachineFacts: device and its name, GPU memory, versions
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(8), default="idle")
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="SET NULL"))
    # The last readings of trainer.system, [unix seconds, cpu %, gpu % or null], oldest first, for the
    # Workers page's small chart.
    recent: Mapped[list[Any]] = mapped_column(Document, default=list)


SweepStatus = Literal["searching", "confirming", "succeeded", "failed", "cancelled"]
SWEEP_STATUSES: tuple[str, ...] = get_args(SweepStatus)
# searching: trials are asked for and run; confirming: the best configuration of each method runs on more seeds.
ACTIVE_SWEEP_STATUSES = ("searching", "confirming")
FINAL_SWEEP_STATUSES = ("succeeded", "failed", "cancelled")
TrialRole = Literal["trial", "best"]
TrialState = Literal["running", "complete", "pruned", "failed"]


class Sweep(Base):
    """A hyperparameter search (server.sweeps): its validated plan, its progress, and the server driving it.

    The search itself lives in Optuna's storage, one study per method, named ``<study_key>-<method>``.
    """

    __tablename__ = "sweep"
    __table_args__ = (
        CheckConstraint(f"status IN ({', '.join(repr(s) for s in SWEEP_STATUSES)})", name="status"),
        Index("ix_sweep_created_at_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiment.id"))
    spec: Mapped[dict[str, Any]]  # server.sweeps.spec.SweepPlan, with every default filled in
    study_key: Mapped[str] = mapped_column(String(64), unique=True)
    best: Mapped[dict[str, Any] | None]  # method -> the best trial: number, value, params (once the search ends)
    error: Mapped[str | None] = mapped_column(Text)
    # True once the study has been told the outcome of every trial (a cancelled sweep's last runs end later).
    settled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Which server process drives the sweep, and when it last said so (a lease: one driver at a time).
    driver: Mapped[str | None] = mapped_column(String(200))
    driven_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    owner_token_id: Mapped[int | None] = mapped_column(ForeignKey("api_token.id", ondelete="SET NULL"))

    experiment: Mapped[Experiment | None] = relationship(lazy="joined")

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_SWEEP_STATUSES


class SweepTrial(Base):
    """A run of a sweep: a trial of a method's study, or a rerun of the best trial on another seed.

    The row is written in the transaction that creates its run, so a run always knows its trial
    and a trial has at most one run. ``state`` and ``value`` mirror what the study was told.
    """

    __tablename__ = "sweep_trial"
    __table_args__ = (
        CheckConstraint("role IN ('trial', 'best')", name="role"),
        CheckConstraint("state IN ('running', 'complete', 'pruned', 'failed')", name="state"),
        UniqueConstraint("sweep_id", "method", "role", "number", "seed"),
        Index("ix_sweep_trial_sweep_id_told", "sweep_id", "told"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sweep_id: Mapped[int] = mapped_column(ForeignKey("sweep.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(8))
    number: Mapped[int] = mapped_column(Integer)  # the trial's number in its method's study (a rerun: the trial it repeats)
    seed: Mapped[int] = mapped_column(BigInteger)
    # SET NULL: deleting a trial's run must not make the trial look never run (it would be run again).
    run_id: Mapped[int | None] = mapped_column(ForeignKey("run.id", ondelete="SET NULL"), unique=True)
    params: Mapped[dict[str, Any]]  # config path -> value, as sampled
    state: Mapped[str] = mapped_column(String(16), default="running")
    value: Mapped[float | None] = mapped_column(Double)  # the objective (validation only)
    error: Mapped[str | None] = mapped_column(Text)
    told: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
