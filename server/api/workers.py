"""Workers: the `miles worker` processes that heartbeat in the database, live ones first."""

from __future__ import annotations

from fastapi import APIRouter

from server.api.deps import SessionDep
from server.schemas import WorkerList, WorkerOut, WorkerRun
from server.store import workers

router = APIRouter(prefix="/workers", tags=["workers"])


@router.get("", summary="Every worker: live ones first, then those lost in the last day")
def list_workers(session: SessionDep) -> WorkerList:
    """Each worker's queue, device, state (busy with a run, idle, or lost: no heartbeat within its timeout)
    and its recent CPU and GPU utilization. Works the same in local and team mode."""
    items = []
    for listed in workers.listing(session=session):
        row, facts = listed.worker, listed.worker.facts
        items.append(WorkerOut(
            name=row.name, host=row.host, pid=row.pid, process=row.process, queues=[row.queue],
            status="lost" if listed.lost else row.state, device=facts.get("device", "cpu"),
            device_name=facts.get("device_name", ""), gpu_memory_mib=facts.get("gpu_memory_mib"),
            cuda=facts.get("cuda"), torch=facts.get("torch"), version=facts.get("version", "unknown"),
            started_at=row.started_at, heartbeat_at=row.heartbeat_at,
            run=WorkerRun(id=row.run_id, name=listed.run_name) if row.run_id is not None else None, recent=row.recent,
        ))
    return WorkerList(items=items)
