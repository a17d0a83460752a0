"""Metrics: batched ingest, downsampled series, latest values, CSV and JSON exports."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from server.api.admission import StreamingSlot
from server.api.deps import DatabaseDep, IngestTurn, JsonBody, NoticesDep, RunDep, RunId, SessionDep
from server.db import Database, after_commit, commit
from server.models import utcnow
from server.schemas import (
    KEY_PATTERN,
    IngestResult,
    LatestSet,
    LatestValue,
    MetricBatch,
    SeriesOut,
    SeriesSet,
)
from server.store import metrics, runs
from server.store.errors import Invalid

router = APIRouter(prefix="/runs/{run_id}", tags=["metrics"])
Keys = Annotated[str | None, Query(
    max_length=10_000, description="Comma-separated keys; 'util/*' is every key starting with 'util/'. Default: all.",
)]
_KEY = re.compile(KEY_PATTERN)
MAX_KEYS = 200


def parse_keys(keys: str | None, field: str = "keys") -> list[str] | None:
    """The comma-separated keys and ``prefix*`` patterns of the query parameter ``field`` (``*``: every key)."""
    if keys is None:
        return None
    parsed = [key.strip() for key in keys.split(",") if key.strip()]
    if len(parsed) > MAX_KEYS:
        raise Invalid.field(field, f"names {len(parsed)} keys; ask for at most {MAX_KEYS} per request")
    for key in parsed:
        if key != "*" and (not _KEY.match(key.removesuffix("*")) or len(key) > 251):
            raise Invalid.field(field, f"{key!r} is not a metric key or a 'prefix*' pattern")
    return parsed


# Parsed from its bytes (twice as fast as FastAPI's parse), before the run's turn is taken.
_BATCH = JsonBody(MetricBatch)


@router.post(
    "/metrics", summary="Write a batch of metric points (idempotent)", dependencies=[Depends(_BATCH), IngestTurn],
    openapi_extra=_BATCH.openapi,
)
async def ingest(
    run_id: RunId, body: Annotated[MetricBatch, Depends(_BATCH)], session: SessionDep, notices: NoticesDep,
) -> IngestResult:
    """Up to 50,000 points in one transaction. A point repeating (key, step) overwrites the stored one, so
    retrying a request is safe. The answer says whether someone asked the run to stop. Once committed,
    the points are on the run's open streams (a notice wakes them)."""
    now = utcnow()

    def write() -> metrics.Ingested:
        points = [metrics.Point(p["key"], p["step"], p["value"], p.get("time") or now) for p in body.points]
        done = metrics.ingest(session=session, run_id=run_id, points=points, progress=True)
        if done.accepted:
            fields = {} if done.epoch is None else {"step": done.epoch}  # sys/ steps are seconds, not epochs
            after_commit(session, lambda: notices.notify(run_id, "system" if done.epoch is None else "epoch", **fields))
        commit(session)  # in this trip to the thread pool, not in a second one after the handler
        return done

    # A coroutine that writes in the thread pool: one trip there, where a plain function would make
    # a second one to validate its answer.
    done = await run_in_threadpool(write)
    return IngestResult(accepted=done.accepted, cancel_requested=done.cancel_requested)


@router.get("/metrics", summary="Metric series, downsampled on the server")
def read_series(
    run: RunDep,
    session: SessionDep,
    keys: Keys = None,
    since_step: Annotated[int | None, Query(ge=-1, le=metrics.MAX_STEP, description="Only points after this step.")] = None,
    max_points: Annotated[int | None, Query(ge=10, le=20_000, description=(
        "At most this many points per series: each bucket of steps keeps its minimum and maximum point. "
        "Default: every point."
    ))] = None,
) -> SeriesSet:
    found = metrics.series(
        session=session, run_id=run.id, keys=parse_keys(keys), since_step=since_step, max_points=max_points
    )
    return SeriesSet(series={key: SeriesOut(steps=s.steps, values=s.values) for key, s in found.items()})


@router.get("/metrics/latest", summary="The latest point of each series")
def read_latest(run: RunDep, session: SessionDep) -> LatestSet:
    latest = metrics.latest(session=session, run_ids=[run.id])[run.id]
    return LatestSet(latest={key: LatestValue(step=row.step, value=row.value) for key, row in latest.items()})


def _points(database: Database, run_id: int, keys: list[str] | None) -> Iterator[tuple[str, int, float, str]]:
    # One transaction for the whole download, held between the chunks it sends: the request holds a
    # database slot until the response has been sent (StreamingSlot), as any request holding one must.
    with database.transaction(write=False) as session:
        for key, step, value, time in metrics.iter_points(session=session, run_id=run_id, keys=keys):
            yield key, step, value, time.isoformat()


def _existing(database: Database, run_id: int) -> int:
    """404 before the download starts (its own short transaction, inside the request's slot)."""
    with database.transaction(write=False) as session:
        return runs.get(session=session, run_id=run_id).id


def _chunks(lines: Iterator[str], size: int = 2000) -> Iterator[str]:
    buffer: list[str] = []
    for line in lines:
        buffer.append(line)
        if len(buffer) >= size:
            yield "".join(buffer)
            buffer.clear()
    yield "".join(buffer)


@router.get(
    "/metrics.csv", summary="Every point as CSV (key, step, value, time)", response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "A CSV file, streamed."}},
)
def export_csv(run_id: RunId, database: DatabaseDep, _slot: StreamingSlot, keys: Keys = None) -> StreamingResponse:
    selected = parse_keys(keys)
    run_id = _existing(database, run_id)

    def lines() -> Iterator[str]:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("key", "step", "value", "time"))
        for row in _points(database, run_id, selected):
            writer.writerow(row)
            yield out.getvalue()
            out.seek(0)
            out.truncate()
        yield out.getvalue()

    headers = {"Content-Disposition": f'attachment; filename="run-{run_id}-metrics.csv"'}
    return StreamingResponse(_chunks(lines()), media_type="text/csv; charset=utf-8", headers=headers)


@router.get(
    "/metrics.json", summary="Every point as a JSON array of {key, step, value, time}", response_class=StreamingResponse,
    responses={200: {"content": {"application/json": {}}, "description": "A JSON array, streamed."}},
)
def export_json(run_id: RunId, database: DatabaseDep, _slot: StreamingSlot, keys: Keys = None) -> StreamingResponse:
    selected = parse_keys(keys)
    run_id = _existing(database, run_id)

    def lines() -> Iterator[str]:
        separator = "[\n"
        for key, step, value, time in _points(database, run_id, selected):
            yield separator + json.dumps({"key": key, "step": step, "value": value, "time": time})
            separator = ",\n"
        yield "[]" if separator == "[\n" else "\n]"

    headers = {"Content-Disposition": f'attachment; filename="run-{run_id}-metrics.json"'}
    return StreamingResponse(_chunks(lines()), media_type="application/json", headers=headers)
