"""Sweeps: creation, listing, cancel, the driver's lease, and the link of each trial to its run.

A sweep's status: ``searching`` (trials run), ``confirming`` (the best configuration of each
method runs on more seeds), then ``succeeded``, ``failed`` (no trial of any method
completed) or ``cancelled``. The trials and reruns are `SweepTrial` rows, each written in the
transaction that creates its run.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from server.models import ACTIVE_STATUSES, Experiment, Run, Sweep, SweepTrial, utcnow
from server.store import runs
from server.store.errors import Conflict, NotFound
from server.store.paging import Page, Sorting, paginate

SORTING = Sorting(
    columns={"created_at": Sweep.created_at, "name": Sweep.name, "id": Sweep.id},
    tiebreak=Sweep.id,
    default="-created_at",
)


def create(
    *, session: Session, name: str, spec: dict[str, Any], experiment: Experiment | None, owner_token_id: int | None,
) -> Sweep:
    sweep = Sweep(
        name=name, status="searching", spec=spec, experiment=experiment, owner_token_id=owner_token_id,
        study_key=f"miles-sweep-{secrets.token_hex(6)}", settled=False,
    )
    session.add(sweep)
    session.flush()
    return sweep


def get(*, session: Session, sweep_id: int, lock: bool = False) -> Sweep:
    sweep = session.get(Sweep, sweep_id, with_for_update={"of": Sweep} if lock else None)
    if sweep is None:
        raise NotFound(f"sweep {sweep_id} not found")
    return sweep


def page(
    *, session: Session, status: Sequence[str] = (), sort: str | None = None, limit: int = 50, cursor: str | None = None,
) -> Page[Sweep]:
    statement = select(Sweep)
    if status:
        statement = statement.where(Sweep.status.in_(status))
    return paginate(session, statement, sorting=SORTING, sort=sort, limit=limit, cursor=cursor)


def cancel(*, session: Session, sweep: Sweep) -> Sweep:
    """Stop the sweep: no more trials; its queued runs are cancelled at once, its running ones asked to stop."""
    if not sweep.is_active:
        raise Conflict(f"sweep {sweep.id} already {sweep.status}; there is nothing to cancel")
    sweep.status = "cancelled"
    sweep.finished_at = utcnow()
    active = session.scalars(
        select(Run).where(Run.sweep_id == sweep.id, Run.status.in_(ACTIVE_STATUSES)).with_for_update(of=Run)
    ).all()
    for run in active:
        runs.cancel(session=session, run=run)
    session.flush()
    return sweep


# -- what the driver reads and writes -------------------------------------------------------------


def to_drive(*, session: Session) -> list[int]:
    """Sweeps that need their driver: searching, confirming, or ended with trials not yet told."""
    return list(session.scalars(
        select(Sweep.id).where(or_(Sweep.status.in_(("searching", "confirming")), Sweep.settled.is_(False)))
        .order_by(Sweep.id)
    ))


def hold(*, session: Session, sweep_id: int, driver: str, timeout: float) -> bool:
    """Take or renew the lease on the sweep for ``driver``: free, already its own, or silent for ``timeout`` s."""
    now = utcnow()
    taken = session.execute(
        update(Sweep)
        .where(Sweep.id == sweep_id, or_(
            Sweep.driver.is_(None), Sweep.driver == driver, Sweep.driven_at < now - timedelta(seconds=timeout),
        ))
        .values(driver=driver, driven_at=now)
        .execution_options(synchronize_session=False)
    )
    return taken.rowcount == 1


def release(*, session: Session, driver: str) -> None:
    """Give up every lease of ``driver`` (its server is stopping): another server may drive them at once."""
    session.execute(
        update(Sweep).where(Sweep.driver == driver).values(driver=None, driven_at=None)
        .execution_options(synchronize_session=False)
    )


@dataclass(frozen=True)
class OpenTrial:
    """A trial or rerun whose outcome is not recorded yet, with what its run has reached."""

    id: int
    method: str
    role: str
    number: int
    run_id: int | None
    status: str | None  # None: the run was deleted
    epoch: int
    summary: dict[str, Any] | None
    error: str | None


def open_trials(*, session: Session, sweep_id: int) -> list[OpenTrial]:
    rows = session.execute(
        select(SweepTrial.id, SweepTrial.method, SweepTrial.role, SweepTrial.number, SweepTrial.run_id,
               Run.status, Run.epoch, Run.summary, Run.error)
        .outerjoin(Run, Run.id == SweepTrial.run_id)
        .where(SweepTrial.sweep_id == sweep_id, SweepTrial.told.is_(False))
        .order_by(SweepTrial.id)
    )
    return [OpenTrial(r[0], r[1], r[2], r[3], r[4], r[5], r[6] or 0, r[7], r[8]) for r in rows]


def known_numbers(*, session: Session, sweep_id: int, method: str, numbers: Sequence[int]) -> set[int]:
    """Which of ``numbers`` (trials of ``method``'s study) have their row, and so their run."""
    if not numbers:
        return set()
    return set(session.scalars(select(SweepTrial.number).where(
        SweepTrial.sweep_id == sweep_id, SweepTrial.method == method, SweepTrial.role == "trial",
        SweepTrial.number.in_(numbers),
    )))


def add_trial(
    *, session: Session, sweep_id: int, method: str, role: str, number: int, seed: int, params: dict[str, Any],
    run_id: int | None, error: str | None = None,
) -> SweepTrial:
    """The row of a trial (or a rerun of the best), in the transaction that created its run. A trial whose run
    could not be made (``run_id`` None, ``error`` saying why) is recorded failed, to be told so."""
    row = SweepTrial(
        sweep_id=sweep_id, method=method, role=role, number=number, seed=seed, params=params, run_id=run_id,
        state="running" if run_id is not None else "failed", error=error, told=False,
    )
    session.add(row)
    session.flush()
    return row


def record(*, session: Session, trial_id: int, state: str, value: float | None, error: str | None = None) -> None:
    """The outcome of a trial, once its study has been told (or of a rerun, which has no study)."""
    session.execute(
        update(SweepTrial).where(SweepTrial.id == trial_id)
        .values(state=state, value=value, error=error, told=True, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def active_runs(*, session: Session, sweep_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(Run).where(Run.sweep_id == sweep_id, Run.status.in_(ACTIVE_STATUSES))
    ) or 0


def rerun_seeds(*, session: Session, sweep_id: int, method: str) -> set[int]:
    """Seeds on which the best configuration of ``method`` already has its rerun."""
    return set(session.scalars(select(SweepTrial.seed).where(
        SweepTrial.sweep_id == sweep_id, SweepTrial.method == method, SweepTrial.role == "best",
    )))


def any_open(*, session: Session, sweep_id: int) -> bool:
    return session.scalar(select(func.count()).select_from(SweepTrial).where(
        SweepTrial.sweep_id == sweep_id, SweepTrial.told.is_(False),
    )) != 0


def advance(*, session: Session, sweep_id: int, status: str, best: dict[str, Any] | None = None,
            error: str | None = None) -> bool:
    """Move a searching or confirming sweep on (to ``confirming`` or a final status); False when it was
    cancelled meanwhile (it stays cancelled)."""
    values: dict[str, Any] = {"status": status, "error": error}
    if best is not None:
        values["best"] = best
    if status != "confirming":
        values["finished_at"] = utcnow()
    done = session.execute(
        update(Sweep).where(Sweep.id == sweep_id, Sweep.status.in_(("searching", "confirming")))
        .values(**values).execution_options(synchronize_session=False)
    )
    return done.rowcount == 1


def settle(*, session: Session, sweep_id: int) -> None:
    """Every trial of the ended sweep has been told: its driver is done with it."""
    session.execute(
        update(Sweep).where(Sweep.id == sweep_id).values(settled=True, driver=None, driven_at=None)
        .execution_options(synchronize_session=False)
    )


# -- what the API shows ---------------------------------------------------------------------------


def trials(*, session: Session, sweep_id: int) -> list[tuple[SweepTrial, Run | None]]:
    """Every trial and rerun of the sweep, oldest first, with its run."""
    rows = session.execute(
        select(SweepTrial, Run).outerjoin(Run, Run.id == SweepTrial.run_id)
        .where(SweepTrial.sweep_id == sweep_id).order_by(SweepTrial.id)
    )
    return [(trial, run) for trial, run in rows]


def tallies(*, session: Session, sweep_ids: Sequence[int]) -> dict[int, dict[str, Counter[str]]]:
    """sweep -> method -> how many trials are in each state, and how many reruns (``best``) there are."""
    found: dict[int, dict[str, Counter[str]]] = {sweep_id: {} for sweep_id in sweep_ids}
    if not sweep_ids:
        return found
    rows = session.execute(
        select(SweepTrial.sweep_id, SweepTrial.method, SweepTrial.role, SweepTrial.state, func.count())
        .where(SweepTrial.sweep_id.in_(sweep_ids))
        .group_by(SweepTrial.sweep_id, SweepTrial.method, SweepTrial.role, SweepTrial.state)
    )
    for sweep_id, method, role, state, count in rows:
        found[sweep_id].setdefault(method, Counter())[state if role == "trial" else f"best/{state}"] += count
    return found

