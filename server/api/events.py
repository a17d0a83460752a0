"""Run events: the log of a run (MILES decisions, starts, resumptions, warnings)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from server.api.deps import ID_MAX, NoticesDep, RunDep, SessionDep
from server.db import after_commit
from server.schemas import EventBatch, EventOut, EventPage, EventsAdded
from server.store import events

router = APIRouter(prefix="/runs/{run_id}/events", tags=["events"])
KindFilter = Annotated[str, Query(
    min_length=1, max_length=101, pattern=r"^[A-Za-z0-9_\-.]+\*?$|^\*$",
    description="A kind ('miles.decision') or a prefix ('miles.*'); repeat for several.",
)]


@router.get("", summary="The run's events, oldest first, after a given event")
def list_events(
    run: RunDep,
    session: SessionDep,
    after_id: Annotated[int | None, Query(ge=0, le=ID_MAX, description="Only events stored after this one.")] = None,
    kind: Annotated[list[KindFilter], Query(max_length=20)] = [],  # noqa: B006
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> EventPage:
    found = events.page(session=session, run_id=run.id, after_id=after_id, kinds=kind, limit=limit)
    return EventPage(
        items=[EventOut.model_validate(event) for event in found],
        next_after_id=found[-1].id if len(found) == limit else None,
    )


@router.post("", summary="Add events to a run (a repeated key is skipped)")
def add_events(run: RunDep, body: EventBatch, session: SessionDep, notices: NoticesDep) -> EventsAdded:
    """Once committed, the new events are on the run's open streams (a notice wakes them)."""
    created = events.add(session=session, run_id=run.id, events=[
        events.NewEvent(step=e.step, kind=e.kind, message=e.message, data=e.data, key=e.key, time=e.time)
        for e in body.events
    ])
    if created:
        run_id = run.id
        after_commit(session, lambda: notices.notify(run_id, "event"))
    return EventsAdded(created=created)
