"""Runs: submit, list, read, update, cancel, clone, delete."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Response, status
from sqlalchemy.orm import Session

from server import policy
from server.api.deps import (
    ID_MAX,
    CallerDep,
    DispatcherDep,
    NoticesDep,
    RunDep,
    SessionDep,
    SettingsDep,
    SubmissionTurn,
)
from server.api.metrics import parse_keys
from server.db import after_commit
from server.dispatch import BrokerUnavailable, Dispatcher
from server.models import Run, Status
from server.schemas import (
    TEXT_PATTERN,
    Name,
    RunClone,
    RunCreate,
    RunOut,
    RunPage,
    RunUpdate,
    Tag,
    Unserved,
)
from server.settings import Settings
from server.store import experiments, metrics, runs, workers
from server.store.paging import Page
from trainer.config import TrainConfig

router = APIRouter(prefix="/runs", tags=["runs"])
# No NUL: PostgreSQL cannot hold one in a text parameter (it answered 500).
Filter = Annotated[str | None, Query(max_length=200, pattern=TEXT_PATTERN)]


def run_out(session: Session, run: Run) -> RunOut:
    unserved = unserved_queues(session, [run])
    return RunOut.build(run, metrics.latest(session=session, run_ids=[run.id])[run.id], unserved=unserved.get(run.queue))


def shown_keys(run: Run) -> list[str]:
    """The latest values a row of a list carries unless asked for others: those the dashboard's tables show
    (the gap, the losses, and each head's validation metric and utilization)."""
    heads = [*(run.modalities or []), "fused"]
    return ["util/delta", "loss/train", "loss/val", *(f"{kind}/{head}" for head in heads for kind in ("metric/val", "util"))]


def page_out(session: Session, page: Page[Run], keys: list[str] | None = None) -> RunPage:
    """The page's runs, each with the latest values of ``keys`` (default: `shown_keys`): a run may have
    thousands of series, and a list sent them all in every row."""
    run_ids = [run.id for run in page.items]
    if keys is not None:
        latest = metrics.latest(session=session, run_ids=run_ids, keys=keys)
    else:
        shown = {run.id: shown_keys(run) for run in page.items}
        found = metrics.latest(session=session, run_ids=run_ids, keys=sorted({k for ks in shown.values() for k in ks}))
        latest = {run_id: {k: v for k, v in found[run_id].items() if k in shown[run_id]} for run_id in run_ids}
    unserved = unserved_queues(session, page.items)
    return RunPage(
        items=[RunOut.build(run, latest[run.id], unserved=unserved.get(run.queue)) for run in page.items],
        next_cursor=page.next_cursor,
    )


def unserved_queues(session: Session, shown: Sequence[Run]) -> dict[str | None, Unserved]:
    """The warning for each queue of the queued runs in ``shown`` that no live worker consumes (one query)."""
    waiting = {run.queue for run in shown if run.execute and run.status == "queued" and run.queue}
    if not waiting:
        return {}
    served = workers.serving(session=session, queues=waiting)
    return {queue: unserved_warning(queue) for queue in waiting - served}


def unserved_warning(queue: str) -> Unserved:
    command = workers.SERVE_COMMANDS.get(queue, f"miles worker (for the {queue} queue)")
    return Unserved(
        queue=queue, command=command,
        message=f"No live worker consumes the {queue} queue, so this run waits until one starts: run `{command}`.",
    )


def submit(
    session: Session, settings: Settings, dispatcher: Dispatcher, caller_token: int | None, *, config: TrainConfig | None,
    execute: bool, field: str, name: str | None = None, experiment: str | None = None, tags: list[str] | None = None,
    params: dict[str, Any] | None = None, sweep_id: int | None = None,
) -> Run:
    """Create a run; an executed one is handed to the dispatcher once its row is committed."""
    if config is not None:
        policy.check_config(config, settings, field=field)
    run = runs.create(
        session=session, config=config, execute=execute, name=name, params=params, tags=tags or [],
        experiment=experiments.ensure(session=session, name=experiment) if experiment else None,
        owner_token_id=caller_token, max_active=settings.max_active_runs, auto_queue=settings.auto_queue,
        sweep_id=sweep_id,
    )
    if execute:
        enqueue_after_commit(session, dispatcher, run)
    return run


def enqueue_after_commit(session: Session, dispatcher: Dispatcher, run: Run) -> None:
    """Hand the executed ``run`` to the dispatcher once the request's transaction is committed."""
    run_id, queue = run.id, run.queue  # every executed run has one (runs.create)

    def enqueue() -> None:
        try:
            dispatcher.enqueue(run_id, queue)
        except BrokerUnavailable as error:
            raise BrokerUnavailable(f"run {run_id}: {error}") from error

    after_commit(session, enqueue)


@router.post(
    "", status_code=status.HTTP_201_CREATED, summary="Submit a run, or start logging one", dependencies=[SubmissionTurn],
)
def create_run(
    body: RunCreate, session: SessionDep, settings: SettingsDep, dispatcher: DispatcherDep, caller: CallerDep,
    response: Response,
) -> RunOut:
    """With ``execute: true`` the run is queued for a worker; with ``execute: false`` it is a run logged from
    outside (your own training loop), ``running`` until you PATCH its final status."""
    run = submit(
        session, settings, dispatcher, caller.token_id, config=body.config, execute=body.execute, field="config",
        name=body.name, experiment=body.experiment, tags=body.tags, params=body.params,
    )
    response.headers["Location"] = f"/api/v1/runs/{run.id}"
    return run_out(session, run)


@router.get("", summary="List runs, filtered and sorted, a page at a time")
def list_runs(
    session: SessionDep,
    status_: Annotated[list[Status], Query(alias="status", description="Repeat for several.")] = [],  # noqa: B006
    method: Filter = None,
    dataset: Filter = None,
    fusion: Filter = None,
    experiment: Annotated[str | None, Query(max_length=200, pattern=TEXT_PATTERN, description="Experiment name or id.")] = None,
    tag: Annotated[list[Tag], Query(max_length=20, description="Runs having every tag given.")] = [],  # noqa: B006
    q: Annotated[str | None, Query(max_length=200, pattern=TEXT_PATTERN, description="Text in the run's name (any case).")] = None,
    id_: Annotated[list[Annotated[int, Query(ge=1, le=ID_MAX)]], Query(alias="id", max_length=500, description="Only these runs.")] = [],  # noqa: B006
    sweep: Annotated[int | None, Query(ge=1, le=ID_MAX, description="Only the runs of this sweep.")] = None,
    sort: Annotated[str | None, Query(max_length=40, description="created_at, name, status or id; '-' for descending. Default -created_at.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000, description="next_cursor of the previous page.")] = None,
    latest: Annotated[str | None, Query(max_length=10_000, description=(
        "Comma-separated metric keys ('util/*': every key starting with 'util/'; '*': all) whose latest values each "
        "row carries. Default: those the dashboard's tables show: util/delta, loss/train, loss/val, and "
        "metric/val/<head> and util/<head> for each modality and fused."
    ))] = None,
) -> RunPage:
    filters = runs.RunFilters(
        status=status_, method=method, dataset=dataset, fusion=fusion, experiment=experiment, tags=tag, q=q, ids=id_,
        sweep=sweep,
    )
    keys = parse_keys(latest, "latest")
    return page_out(session, runs.page(session=session, filters=filters, sort=sort, limit=limit, cursor=cursor), keys)


@router.get("/{run_id}", summary="One run, with its latest metric values")
def get_run(run: RunDep, session: SessionDep) -> RunOut:
    return run_out(session, run)


@router.patch("/{run_id}", summary="Rename, retag or move a run; set a logged run's outcome")
def update_run(run: RunDep, body: RunUpdate, session: SessionDep, notices: NoticesDep) -> RunOut:
    fields = body.model_fields_set
    if body.name is not None:
        run.name = body.name
    if body.tags is not None:
        runs.set_tags(session=session, run=run, tags=body.tags)
    if "experiment" in fields:
        run.experiment = experiments.ensure(session=session, name=body.experiment) if body.experiment else None
    if body.params is not None:
        run.params = body.params
    if body.summary is not None:
        run.summary = body.summary
    if body.status is not None:
        runs.set_status(session=session, run=run, status=body.status, error=body.error)
        run_id, ended = run.id, run.status
        after_commit(session, lambda: notices.notify(run_id, "status", status=ended))
    elif body.error is not None:
        run.error = body.error
    session.flush()
    return run_out(session, run)


@router.post("/{run_id}/cancel", summary="Cancel a queued run now, or ask a running one to stop")
def cancel_run(run: RunDep, session: SessionDep, notices: NoticesDep) -> RunOut:
    """A queued run becomes ``cancelled`` at once. A running one gets ``cancel_requested``: its worker stops
    it after the current batch (a logged run's client sees the flag in the response to its next metrics)."""
    cancelled = runs.cancel(session=session, run=run)
    run_id, now = run.id, cancelled.status
    after_commit(session, lambda: notices.notify(run_id, "status", status=now))
    return run_out(session, cancelled)


@router.post(
    "/{run_id}/clone", status_code=status.HTTP_201_CREATED, summary="Queue a copy of a run, with changes",
    dependencies=[SubmissionTurn],
)
def clone_run(
    run: RunDep, body: RunClone, session: SessionDep, settings: SettingsDep, dispatcher: DispatcherDep,
    caller: CallerDep, response: Response,
) -> RunOut:
    """Retry a run, or run "the same but seed 3": its config with ``overrides`` merged in, validated again."""
    config = policy.validate_config(runs.merged_spec(run=run, overrides=body.overrides), field="overrides")
    experiment: Name | None = body.experiment or (run.experiment.name if run.experiment else None)
    clone = submit(
        session, settings, dispatcher, caller.token_id, config=config, execute=True, field="overrides",
        name=body.name or runs.renamed_for_seed(run.name, config.seed), experiment=experiment,
        tags=body.tags if body.tags is not None else run.tags,
    )
    response.headers["Location"] = f"/api/v1/runs/{clone.id}"
    return run_out(session, clone)


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a run with its metrics, events and files")
def delete_run(run: RunDep, session: SessionDep, settings: SettingsDep, background: BackgroundTasks) -> None:
    runs.delete(session=session, run=run)
    # Files go once the deletion is committed (background tasks run after the response).
    background.add_task(_remove_files, settings, run.id)


def _remove_files(settings: Settings, run_id: int) -> None:
    shutil.rmtree(settings.run_artifacts(run_id), ignore_errors=True)
