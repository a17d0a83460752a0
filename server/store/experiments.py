"""Experiments: named groups of runs."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.models import Experiment, Run
from server.store.errors import Conflict, NotFound
from server.store.paging import Page, Sorting, paginate

SORTING = Sorting(
    columns={"created_at": Experiment.created_at, "name": Experiment.name, "id": Experiment.id},
    tiebreak=Experiment.id,
    default="name",
)


def get(*, session: Session, experiment_id: int) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise NotFound(f"experiment {experiment_id} not found")
    return experiment


def find(*, session: Session, ref: str) -> Experiment | None:
    """The experiment named ``ref``, else the one whose id is ``ref``."""
    experiment = session.scalar(select(Experiment).where(Experiment.name == ref))
    if experiment is None and ref.isdigit() and int(ref) < 2**31:
        experiment = session.get(Experiment, int(ref))
    return experiment


def create(*, session: Session, name: str, description: str = "") -> Experiment:
    experiment = Experiment(name=name, description=description)
    try:
        with session.begin_nested():
            session.add(experiment)
    except IntegrityError:
        raise Conflict(f"an experiment named {name!r} already exists") from None
    return experiment


def ensure(*, session: Session, name: str) -> Experiment:
    """The experiment named ``name``, created if missing (safe against a concurrent creator)."""
    existing = session.scalar(select(Experiment).where(Experiment.name == name))
    if existing is not None:
        return existing
    try:
        return create(session=session, name=name)
    except Conflict:  # created by a concurrent request since the lookup
        return session.scalars(select(Experiment).where(Experiment.name == name)).one()


def update(*, session: Session, experiment: Experiment, name: str | None = None, description: str | None = None) -> Experiment:
    if description is not None:
        experiment.description = description
    if name is not None and name != experiment.name:
        experiment.name = name
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise Conflict(f"an experiment named {name!r} already exists") from None
    return experiment


def delete(*, session: Session, experiment: Experiment) -> None:
    """Delete an empty experiment; one with runs is refused (delete or move its runs first)."""
    runs = run_count(session=session, experiment_id=experiment.id)
    if runs:
        raise Conflict(
            f"experiment {experiment.name!r} has {runs} run{'s' if runs != 1 else ''}; delete them or move them "
            "to another experiment first"
        )
    session.delete(experiment)
    session.flush()


def run_count(*, session: Session, experiment_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Run).where(Run.experiment_id == experiment_id)) or 0


def run_counts(*, session: Session, experiment_ids: list[int]) -> dict[int, int]:
    rows = session.execute(
        select(Run.experiment_id, func.count()).where(Run.experiment_id.in_(experiment_ids)).group_by(Run.experiment_id)
    )
    return {experiment_id: count for experiment_id, count in rows}


def page(*, session: Session, sort: str | None = None, limit: int = 50, cursor: str | None = None) -> Page[Experiment]:
    return paginate(session, select(Experiment), sorting=SORTING, sort=sort, limit=limit, cursor=cursor)
