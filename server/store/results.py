"""The table of results of stored runs: `trainer.comparison` over runs read from the database."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from server.models import LatestMetric, Run
from server.store import runs
from trainer.comparison import ComparisonTable, RunRecord, comparison_table

MAX_RUNS = 2000  # the newest runs one table holds; a page's listing holds as many
# The latest values the table reads beside the summary: the final gap, and validation metrics of runs logged without one.
GAP, VALIDATION = "util/delta", "metric/val/"


def record(run: Run, latest: Mapping[str, float]) -> RunRecord:
    return RunRecord(
        id=run.id, name=run.name, dataset=run.dataset, modalities=tuple(run.modalities or ()), method=run.method,
        fusion=run.fusion, seed=run.seed, status=run.status, summary=run.summary or {}, config=run.spec,
        latest=latest, error=run.error,
    )


def _latest(session: Session, run_ids: Sequence[int]) -> dict[int, dict[str, float]]:
    found: dict[int, dict[str, float]] = {run_id: {} for run_id in run_ids}
    if run_ids:
        rows = session.execute(
            select(LatestMetric.run_id, LatestMetric.key, LatestMetric.value).where(
                LatestMetric.run_id.in_(run_ids),
                or_(LatestMetric.key == GAP, LatestMetric.key.startswith(VALIDATION, autoescape=True)),
            )
        )
        for run_id, key, value in rows:
            found[run_id][key] = value
    return found


def table(*, session: Session, filters: runs.RunFilters, limit: int = MAX_RUNS) -> tuple[ComparisonTable, bool]:
    """The table of the newest ``limit`` runs matching ``filters``, and whether they are all the runs that match."""
    page = runs.page(session=session, filters=filters, sort="-created_at", limit=limit)
    chosen = list(reversed(page.items))  # oldest first: groups and rows appear in the order the runs were made
    latest = _latest(session, [run.id for run in chosen])
    return comparison_table([record(run, latest[run.id]) for run in chosen]), page.next_cursor is None
