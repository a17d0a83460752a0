"""Sweeps: create (validated like a run, every bad field named), list, read, their trials and importance, cancel."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from server.api.deps import ID_MAX, CallerDep, SessionDep, SettingsDep
from server.models import Sweep, SweepStatus
from server.store import experiments
from server.store import sweeps as store
from server.sweeps import spec
from server.sweeps.study import Studies

router = APIRouter(prefix="/sweeps", tags=["sweeps"])


class MethodProgress(BaseModel):
    budget: int = Field(description="Trials this method's study runs.")
    trials: int = Field(description="Trials started so far.")
    running: int
    complete: int
    pruned: int
    failed: int
    reruns: int = Field(description="Reruns of the best configuration started (of seeds_for_best).")
    reruns_done: int


class BestTrial(BaseModel):
    number: int
    value: float = Field(description="Its objective (validation).")
    params: dict[str, Any]


class SweepOut(BaseModel):
    id: int
    name: str
    status: SweepStatus
    experiment_id: int | None
    experiment: str | None
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    plan: spec.SweepPlan = Field(description="The sweep as validated, every default filled in.")
    progress: dict[str, MethodProgress] = Field(description="Per method.")
    best: dict[str, BestTrial] | None = Field(description="Per method, once the search is over.")

    @classmethod
    def build(cls, sweep: Sweep, tally: dict[str, Counter[str]]) -> SweepOut:
        plan = spec.SweepPlan.model_validate(sweep.spec)
        progress = {}
        for method in plan.methods:
            counts = tally.get(method, Counter())
            states = ("running", "complete", "pruned", "failed")
            progress[method] = MethodProgress(
                budget=plan.budgets[method], trials=sum(counts[s] for s in states), **{s: counts[s] for s in states},
                reruns=sum(counts[f"best/{s}"] for s in states),
                reruns_done=sum(counts[f"best/{s}"] for s in states if s != "running"),
            )
        return cls(
            id=sweep.id, name=sweep.name, status=sweep.status, experiment_id=sweep.experiment_id,
            experiment=sweep.experiment.name if sweep.experiment else None, created_at=sweep.created_at,
            finished_at=sweep.finished_at, error=sweep.error, plan=plan, progress=progress,
            best={m: BestTrial(**b) for m, b in sweep.best.items()} if sweep.best else None,
        )


class SweepPage(BaseModel):
    items: list[SweepOut]
    next_cursor: str | None


class TrialOut(BaseModel):
    method: str
    role: str = Field(description="trial: a trial of the method's study; best: a rerun of its best trial on another seed.")
    number: int = Field(description="The trial's number in its method's study (a rerun: the trial it repeats).")
    seed: int
    params: dict[str, Any] = Field(description="Config path -> the value searched.")
    state: str = Field(description="running, complete, pruned or failed (as told to the study).")
    value: float | None = Field(description="The objective (validation); for a pruned trial, its last epoch's.")
    error: str | None
    run_id: int | None
    run_status: str | None
    epoch: int | None = Field(description="Epochs its run has completed.")
    created_at: datetime
    finished_at: datetime | None


class TrialList(BaseModel):
    items: list[TrialOut]


class Importance(BaseModel):
    importance: dict[str, dict[str, float]] = Field(
        description="Method -> parameter -> Optuna's importance (PED-ANOVA, summing to 1) from its completed trials.",
    )


def get_sweep(sweep_id: Annotated[int, Path(ge=1, le=ID_MAX)], session: SessionDep) -> Sweep:
    return store.get(session=session, sweep_id=sweep_id)


SweepDep = Annotated[Sweep, Depends(get_sweep)]


def sweep_out(session: Session, sweep: Sweep) -> SweepOut:
    return SweepOut.build(sweep, store.tallies(session=session, sweep_ids=[sweep.id])[sweep.id])


@router.post("", status_code=status.HTTP_201_CREATED, summary="Start a sweep")
def create_sweep(
    body: spec.SweepCreate, session: SessionDep, settings: SettingsDep, caller: CallerDep, response: Response,
) -> SweepOut:
    """Checked at once (every problem names its field); the server then queues its trials to the workers,
    ``parallelism`` at a time."""
    plan = spec.plan(body, settings)
    name = body.name or spec.default_name(plan.methods, plan.config)
    experiment = experiments.ensure(session=session, name=body.experiment or name)
    sweep = store.create(
        session=session, name=name, spec=plan.model_dump(mode="json"), experiment=experiment,
        owner_token_id=caller.token_id,
    )
    response.headers["Location"] = f"/api/v1/sweeps/{sweep.id}"
    return sweep_out(session, sweep)


@router.get("", summary="List sweeps, newest first")
def list_sweeps(
    session: SessionDep,
    status_: Annotated[list[SweepStatus], Query(alias="status", description="Repeat for several.")] = [],  # noqa: B006
    sort: Annotated[str | None, Query(max_length=40, description="created_at, name or id; '-' for descending.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> SweepPage:
    page = store.page(session=session, status=status_, sort=sort, limit=limit, cursor=cursor)
    tallies = store.tallies(session=session, sweep_ids=[s.id for s in page.items])
    return SweepPage(items=[SweepOut.build(s, tallies[s.id]) for s in page.items], next_cursor=page.next_cursor)


@router.get("/{sweep_id}", summary="One sweep, with its progress and each method's best trial")
def get_one(sweep: SweepDep, session: SessionDep) -> SweepOut:
    return sweep_out(session, sweep)


@router.get("/{sweep_id}/trials", summary="Every trial of the sweep and every rerun of the best, with its run")
def list_trials(sweep: SweepDep, session: SessionDep) -> TrialList:
    return TrialList(items=[
        TrialOut(
            method=trial.method, role=trial.role, number=trial.number, seed=trial.seed, params=trial.params,
            state=trial.state, value=trial.value, error=trial.error, run_id=trial.run_id,
            run_status=run.status if run else None, epoch=run.epoch if run else None,
            created_at=trial.created_at, finished_at=trial.finished_at,
        )
        for trial, run in store.trials(session=session, sweep_id=sweep.id)
    ])


@router.get("/{sweep_id}/importance", summary="How much each searched parameter mattered, per method (Optuna)")
def importance(sweep: SweepDep, session: SessionDep, request: Request) -> Importance:
    plan = spec.SweepPlan.model_validate(sweep.spec)
    tally = store.tallies(session=session, sweep_ids=[sweep.id])[sweep.id]
    studies: Studies = request.app.state.studies
    found = {}
    for method in plan.methods:
        complete = tally.get(method, Counter())["complete"]
        found[method] = studies.of(sweep.study_key, plan, method).importance() if complete >= 2 else {}
    return Importance(importance=found)


@router.post("/{sweep_id}/cancel", summary="Cancel a sweep: no new trials, its queued runs cancelled, running ones stopped")
def cancel_sweep(sweep: SweepDep, session: SessionDep) -> SweepOut:
    locked = store.get(session=session, sweep_id=sweep.id, lock=True)
    return sweep_out(session, store.cancel(session=session, sweep=locked))
