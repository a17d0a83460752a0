"""Runs: creation, listing, the status life cycle, cancel, clone and delete.

Life cycle: an executed run is ``queued`` until a worker `claim`s it (``running``),
and the worker `finish`es it (``succeeded``, ``failed`` or ``cancelled``), unless its
sweep `prune`s it first (``pruned``: its worker, no longer holding it, stops). A run
logged from outside (``execute=False``) starts ``running`` and its client sets
the final status. Final statuses never change.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, false, func, select, text, update
from sqlalchemy import delete as sql_delete
from sqlalchemy.orm import Session

from server.models import ACTIVE_STATUSES, FINAL_STATUSES, Experiment, Metric, Run, RunTag, utcnow
from server.store import events, experiments
from server.store.errors import Conflict, LimitReached, NotFound
from server.store.paging import Page, Sorting, paginate
from trainer.config import TrainConfig

# A run's name fits its column: the default one, the config's description, can be longer (long modality names).
_name_type = Run.__table__.c.name.type
assert isinstance(_name_type, String) and _name_type.length is not None
NAME_LENGTH: int = _name_type.length

SORTING = Sorting(
    columns={"created_at": Run.created_at, "name": Run.name, "status": Run.status, "id": Run.id},
    tiebreak=Run.id,
    default="-created_at",
)
# Key of the PostgreSQL advisory lock that serialises submissions of one token (with the token id).
_ACTIVE_RUNS_LOCK = 0x6D696C


@dataclass(frozen=True)
class RunFilters:
    """What `page` filters on; every filter given must match (tags: all of them)."""

    status: Sequence[str] = ()
    method: str | None = None
    dataset: str | None = None
    fusion: str | None = None
    experiment: str | None = None  # a name or an id
    tags: Sequence[str] = ()
    q: str | None = None  # text in the name, case-insensitive
    ids: Sequence[int] = field(default=())
    sweep: int | None = None  # the sweep's id


def queue_for(config: TrainConfig, *, auto_queue: str = "cpu") -> str:
    """The worker queue of a run: ``cpu`` for CPU runs, ``gpu`` for ``cuda[:N]``, ``auto_queue`` for ``auto``
    (MILES_AUTO_QUEUE: ``cpu`` by default, so that a machine without a GPU worker still runs it)."""
    if config.device == "auto":
        return auto_queue
    return "cpu" if config.device == "cpu" else "gpu"


def get(*, session: Session, run_id: int) -> Run:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"run {run_id} not found")
    return run


def create(
    *,
    session: Session,
    config: TrainConfig | None,
    execute: bool,
    name: str | None = None,
    params: dict[str, Any] | None = None,
    experiment: Experiment | None = None,
    tags: Sequence[str] = (),
    owner_token_id: int | None = None,
    max_active: int | None = None,
    auto_queue: str = "cpu",
    sweep_id: int | None = None,
) -> Run:
    """A new run: ``queued`` when a worker is to execute it (then ``config`` is required), else ``running``.

    ``max_active`` caps the queued and running executed runs of ``owner_token_id``.
    """
    if execute and config is None:
        raise ValueError("an executed run needs a config")
    if execute and max_active is not None:
        _check_active_limit(session=session, owner_token_id=owner_token_id, limit=max_active)
    now = utcnow()
    run = Run(
        name=name or (_shortened(config.describe()) if config else ""),
        status="queued" if execute else "running",
        execute=execute,
        spec=config.model_dump(mode="json") if config else None,
        params=params,
        method=config.method if config else None,
        dataset=config.dataset if config else None,
        fusion=config.fusion if config else None,
        seed=config.seed if config else None,
        queue=queue_for(config, auto_queue=auto_queue) if execute and config else None,
        experiment=experiment,
        created_at=now,
        started_at=None if execute else now,
        owner_token_id=owner_token_id,
        sweep_id=sweep_id,
        tag_rows=[RunTag(tag=tag) for tag in dict.fromkeys(tags)],
    )
    session.add(run)
    session.flush()
    if not run.name:
        run.name = f"run {run.id}"
    return run


# The suffix the New run form gives each run of several seeds: "miles tau 0.2 (seed 3)".
_SEED_SUFFIX = re.compile(r" \(seed \d+\)$")


def renamed_for_seed(name: str, seed: int) -> str:
    """A clone's name: the source's, its "(seed N)" suffix, if any, naming the clone's own seed."""
    return _SEED_SUFFIX.sub(f" (seed {seed})", name)


def _shortened(text: str) -> str:
    return text if len(text) <= NAME_LENGTH else text[: NAME_LENGTH - 1] + "\u2026"


def create_many(
    *,
    session: Session,
    named: Sequence[tuple[str, TrainConfig]],
    experiment: Experiment | None = None,
    tags: Sequence[str] = (),
    owner_token_id: int | None = None,
    max_active: int | None = None,
    auto_queue: str = "cpu",
) -> list[Run]:
    """Queued runs of ``(name, config)`` pairs (a grid), all or none: refused when they would not all fit
    under ``max_active`` queued and running runs of ``owner_token_id``."""
    if max_active is not None:
        _check_active_limit(session=session, owner_token_id=owner_token_id, limit=max_active, adding=len(named))
    return [
        create(session=session, config=config, execute=True, name=name, experiment=experiment, tags=tags,
               owner_token_id=owner_token_id, auto_queue=auto_queue)
        for name, config in named
    ]


def _check_active_limit(*, session: Session, owner_token_id: int | None, limit: int, adding: int = 1) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # Two concurrent submissions of one token must not both see room for one more run.
        session.execute(text("SELECT pg_advisory_xact_lock(:key, :owner)"), {"key": _ACTIVE_RUNS_LOCK, "owner": owner_token_id or 0})
    active = session.scalar(
        select(func.count()).select_from(Run).where(
            Run.execute.is_(True),
            Run.status.in_(ACTIVE_STATUSES),
            Run.owner_token_id.is_(None) if owner_token_id is None else Run.owner_token_id == owner_token_id,
        )
    ) or 0
    if active + adding > limit:
        who = "this API token" if owner_token_id is not None else "this server's anonymous submissions"
        if adding == 1:
            raise LimitReached(
                f"{who} already has {active} queued or running runs, the most allowed at once "
                f"(MILES_MAX_ACTIVE_RUNS={limit}); wait for one to finish or cancel one"
            )
        raise LimitReached(
            f"these {adding} runs would pass the most queued or running runs allowed at once (MILES_MAX_ACTIVE_RUNS="
            f"{limit}): {who} has {active}; submit fewer methods, fusions or seeds, or wait for runs to finish"
        )


def page(
    *, session: Session, filters: RunFilters = RunFilters(), sort: str | None = None, limit: int = 50,
    cursor: str | None = None,
) -> Page[Run]:
    statement = select(Run)
    if filters.status:
        statement = statement.where(Run.status.in_(filters.status))
    for column, value in ((Run.method, filters.method), (Run.dataset, filters.dataset), (Run.fusion, filters.fusion)):
        if value is not None:
            statement = statement.where(column == value)
    if filters.experiment is not None:
        experiment = experiments.find(session=session, ref=filters.experiment)
        statement = statement.where(Run.experiment_id == experiment.id if experiment else false())
    for tag in dict.fromkeys(filters.tags):
        statement = statement.where(Run.id.in_(select(RunTag.run_id).where(RunTag.tag == tag)))
    if filters.q:
        pattern = filters.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        statement = statement.where(Run.name.ilike(f"%{pattern}%", escape="\\"))
    if filters.ids:
        statement = statement.where(Run.id.in_(filters.ids))
    if filters.sweep is not None:
        statement = statement.where(Run.sweep_id == filters.sweep)
    return paginate(session, statement, sorting=SORTING, sort=sort, limit=limit, cursor=cursor)


def set_tags(*, session: Session, run: Run, tags: Sequence[str]) -> None:
    wanted = list(dict.fromkeys(tags))
    run.tag_rows = [row for row in run.tag_rows if row.tag in wanted]
    have = set(run.tags)
    run.tag_rows.extend(RunTag(tag=tag) for tag in wanted if tag not in have)
    session.flush()
    session.refresh(run, ["tag_rows"])


def set_status(*, session: Session, run: Run, status: str, error: str | None = None) -> Run:
    """The client of a logged run reports its outcome: ``running`` -> a final status (repeating it is fine)."""
    if run.execute:
        raise Conflict(
            f"the status of run {run.id} is set by the worker executing it; to stop it, use POST /api/v1/runs/{run.id}/cancel"
        )
    if status == run.status and error in (None, run.error):
        return run
    if run.is_final:
        raise Conflict(f"run {run.id} already {run.status}; the status of a finished run cannot change")
    if status not in FINAL_STATUSES:
        raise Conflict(f"run {run.id} is {run.status}; it can only become {', '.join(FINAL_STATUSES)}")
    _finalize(run, status, error=error)
    return run


def _finalize(run: Run, status: str, *, error: str | None = None, error_detail: str | None = None) -> None:
    run.status = status
    run.finished_at = utcnow()
    run.cancel_requested = run.cancel_requested and status == "cancelled"
    if error is not None:
        run.error = error
    if error_detail is not None:
        run.error_detail = error_detail


def cancel(*, session: Session, run: Run) -> Run:
    """Cancel a queued run at once; ask the worker (or the client of a logged run) to stop a running one."""
    if run.is_final:
        raise Conflict(f"run {run.id} already {run.status}; there is nothing to cancel")
    if run.status == "queued":
        _finalize(run, "cancelled")
    else:
        run.cancel_requested = True
    session.flush()
    return run


def prune(*, session: Session, run_id: int, epoch: int, message: str, data: dict[str, Any]) -> bool:
    """End a running trial of a sweep ``pruned`` after ``epoch``, with a ``run.pruned`` event saying why; False
    (nothing changed) when it is not running. Its worker finds it no longer holds the run and stops."""
    run = session.get(Run, run_id, with_for_update={"of": Run})  # against its worker finishing it meanwhile
    if run is None or run.status != "running":
        return False
    _finalize(run, "pruned")
    events.add(session=session, run_id=run.id, events=[
        events.NewEvent(step=epoch, kind="run.pruned", message=message, data={"epoch": epoch, **data}, key="run.pruned"),
    ])
    session.flush()
    return True


def delete(*, session: Session, run: Run) -> None:
    """Delete a run with its tags, metrics and events; its files are the caller's to remove."""
    if run.execute and run.status == "running":
        raise Conflict(f"run {run.id} is running on {run.worker or 'a worker'}; cancel it first, then delete it")
    # The run row goes first: that waits for an ingest in progress (which holds it through
    # latest_metric's foreign key) and keeps new ones out. The other tables cascade from it.
    session.execute(sql_delete(Run).where(Run.id == run.id))
    session.execute(sql_delete(Metric).where(Metric.run_id == run.id))
    session.expunge(run)


def merged_spec(*, run: Run, overrides: dict[str, Any]) -> dict[str, Any]:
    """The run's spec with ``overrides`` merged in (nested dicts merge key by key).

    Choosing another dataset drops the dataset's options, modalities, data path, preset and the
    encoders, depths and weights named by modality, and another method drops the method's hyperparameters,
    unless the overrides give them.
    """
    if run.spec is None:
        raise Conflict(f"run {run.id} was logged without a config; there is nothing to clone")
    merged = copy.deepcopy(run.spec)
    if overrides.get("dataset", merged.get("dataset")) != merged.get("dataset"):
        for dependent in ("dataset_params", "modalities", "data_path", "preset"):
            merged.pop(dependent, None)
        for per_modality in ("encoders", "depths", "pretrained"):
            merged.get("model", {}).pop(per_modality, None)
    if overrides.get("method", merged.get("method")) != merged.get("method"):
        merged.pop("params", None)
    return _deep_merge(merged, overrides)


def _deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = _deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


# -- the worker's side of the life cycle -------------------------------------------------------


def claim(*, session: Session, run_id: int, worker: str) -> bool:
    """Compare-and-set ``queued`` -> ``running`` for ``worker``; False when the run is not queued (any more)."""
    now = utcnow()
    claimed = session.execute(
        update(Run)
        .where(Run.id == run_id, Run.status == "queued", Run.cancel_requested.is_(False))
        .values(
            status="running", worker=worker, heartbeat_at=now, attempts=Run.attempts + 1,
            started_at=func.coalesce(Run.started_at, now),
        )
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def finish(
    *, session: Session, run_id: int, status: str, error: str | None = None, error_detail: str | None = None,
    summary: dict[str, Any] | None = None,
) -> bool:
    """End an active run in a final ``status``; False (and nothing changed) when it had already ended."""
    _check_final(status)
    # FOR UPDATE OF run: PostgreSQL cannot lock the outer join that loads the experiment.
    run = session.get(Run, run_id, with_for_update={"of": Run})
    if run is None:
        return False
    return end(session=session, run=run, status=status, error=error, error_detail=error_detail, summary=summary)


def end(
    *, session: Session, run: Run, status: str, error: str | None = None, error_detail: str | None = None,
    summary: dict[str, Any] | None = None,
) -> bool:
    """`finish` for a run the caller has already locked (``FOR UPDATE``), e.g. the heartbeat sweep."""
    _check_final(status)
    if run.is_final:
        return False
    _finalize(run, status, error=error, error_detail=error_detail)
    if summary is not None:
        run.summary = summary
    session.flush()
    return True


def _check_final(status: str) -> None:
    if status not in FINAL_STATUSES:
        raise ValueError(f"{status!r} is not a final status; use one of {', '.join(FINAL_STATUSES)}")
