"""Grids: methods x fusions x seeds submitted at once, all or nothing, as the runs of one experiment."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from server import policy
from server.api.deps import CallerDep, DispatcherDep, SessionDep, SettingsDep, SubmissionTurn
from server.api.experiments import experiment_out
from server.api.runs import enqueue_after_commit
from server.schemas import GridCell, GridCreate, GridOut, RunOut
from server.store import experiments, runs
from server.store.errors import Invalid
from trainer.grid import Cell

router = APIRouter(prefix="/grids", tags=["grids"])


def run_name(prefix: str | None, cell: Cell) -> str:
    """``miles · concat · seed 0``, after ``prefix: `` when given; shortened to fit the name column."""
    name = f"{prefix}: {cell.label}" if prefix else cell.label
    return name if len(name) <= runs.NAME_LENGTH else name[: runs.NAME_LENGTH - 1] + "\u2026"


@router.post(
    "", status_code=status.HTTP_201_CREATED, summary="Submit a grid: every method x fusion x seed, as an experiment",
    dependencies=[SubmissionTurn],
)
def create_grid(
    body: GridCreate, session: SessionDep, settings: SettingsDep, dispatcher: DispatcherDep, caller: CallerDep,
    response: Response,
) -> GridOut:
    """The grid expands as `miles compare` expands it (one run per method, fusion and seed; a method of one
    modality alone runs once per modality of the pair). Every cell is validated first, and a problem of one
    combination is named with its cell (``grid.cells.<method>/<fusion>.<field>``); then the runs are created
    together or not at all, within MILES_MAX_ACTIVE_RUNS (429 when they would not all fit), and queued once
    committed. The experiment's page shows their table as they finish."""
    cells = body.grid.cells
    problems = {}
    for cell in cells:
        try:
            policy.check_config(cell.config, settings, field="grid.config")
        except Invalid as error:
            problems.update({(p.field, p.message): p for p in error.errors})  # a setting of every cell is named once
    if problems:
        raise Invalid(list(problems.values()))
    experiment = experiments.ensure(session=session, name=body.experiment)
    created = runs.create_many(
        session=session, named=[(run_name(body.name, cell), cell.config) for cell in cells], experiment=experiment,
        tags=body.tags, owner_token_id=caller.token_id, max_active=settings.max_active_runs, auto_queue=settings.auto_queue,
    )
    for run in created:
        enqueue_after_commit(session, dispatcher, run)
    response.headers["Location"] = f"/api/v1/experiments/{experiment.id}"
    return GridOut(
        experiment=experiment_out(session, experiment),
        cells=[GridCell(key=cell.key, run=RunOut.build(run, {})) for cell, run in zip(cells, created, strict=True)],
    )
