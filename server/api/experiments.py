"""Experiments: named groups of runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from sqlalchemy.orm import Session

from server.api.deps import ID_MAX, SessionDep
from server.models import Experiment
from server.schemas import ExperimentCreate, ExperimentOut, ExperimentPage, ExperimentUpdate
from server.store import experiments

router = APIRouter(prefix="/experiments", tags=["experiments"])


def get_experiment(experiment_id: Annotated[int, Path(ge=1, le=ID_MAX)], session: SessionDep) -> Experiment:
    return experiments.get(session=session, experiment_id=experiment_id)


ExperimentDep = Annotated[Experiment, Depends(get_experiment)]


def experiment_out(session: Session, experiment: Experiment, runs: int | None = None) -> ExperimentOut:
    if runs is None:
        runs = experiments.run_count(session=session, experiment_id=experiment.id)
    return ExperimentOut(
        id=experiment.id, name=experiment.name, description=experiment.description,
        created_at=experiment.created_at, runs=runs,
    )


@router.get("", summary="List experiments")
def list_experiments(
    session: SessionDep,
    sort: Annotated[str | None, Query(max_length=40, description="name, created_at or id; '-' for descending.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> ExperimentPage:
    page = experiments.page(session=session, sort=sort, limit=limit, cursor=cursor)
    counts = experiments.run_counts(session=session, experiment_ids=[e.id for e in page.items])
    return ExperimentPage(
        items=[experiment_out(session, e, counts.get(e.id, 0)) for e in page.items], next_cursor=page.next_cursor
    )


@router.post("", status_code=status.HTTP_201_CREATED, summary="Create an experiment (names are unique)")
def create_experiment(body: ExperimentCreate, session: SessionDep, response: Response) -> ExperimentOut:
    experiment = experiments.create(session=session, name=body.name, description=body.description)
    response.headers["Location"] = f"/api/v1/experiments/{experiment.id}"
    return experiment_out(session, experiment, 0)


@router.get("/{experiment_id}", summary="One experiment")
def get_one(experiment: ExperimentDep, session: SessionDep) -> ExperimentOut:
    return experiment_out(session, experiment)


@router.patch("/{experiment_id}", summary="Rename or describe an experiment")
def update_experiment(experiment: ExperimentDep, body: ExperimentUpdate, session: SessionDep) -> ExperimentOut:
    experiments.update(session=session, experiment=experiment, name=body.name, description=body.description)
    return experiment_out(session, experiment)


@router.delete("/{experiment_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an experiment without runs")
def delete_experiment(experiment: ExperimentDep, session: SessionDep) -> None:
    experiments.delete(session=session, experiment=experiment)
