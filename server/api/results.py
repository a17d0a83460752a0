"""The table of results: per method and fusion, mean ± sd over seeds, of an experiment or of chosen runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from server.api.deps import ID_MAX, SessionDep
from server.schemas import ResultsOut
from server.store import results, runs

router = APIRouter(prefix="/results", tags=["results"])


@router.get("", summary="The paper's kind of table of an experiment's runs, or of chosen runs")
def get_results(
    session: SessionDep,
    experiment: Annotated[str | None, Query(max_length=200, description="Experiment name or id.")] = None,
    id_: Annotated[list[Annotated[int, Query(ge=1, le=ID_MAX)]], Query(alias="id", max_length=500, description="Only these runs.")] = [],  # noqa: B006
) -> ResultsOut:
    """Runs grouped by dataset and pair of modalities, a row per method and fusion: the test metric of the fused
    head, of the dominant and the weak head (chosen on validation) and their difference Delta, as mean and sample
    standard deviation over seeds, at the best validation epoch and at the last. Runs that have not succeeded are
    counted per row by status; the newest 2,000 matching runs are read."""
    table, complete = results.table(session=session, filters=runs.RunFilters(experiment=experiment, ids=id_))
    return ResultsOut(**table.model_dump(), complete=complete)
