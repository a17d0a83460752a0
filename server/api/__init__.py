"""The JSON API under ``/api/v1``: thin routers over the store, one module per resource."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from server.api import (
    artifacts,
    auth,
    catalog,
    events,
    experiments,
    grids,
    health,
    metrics,
    results,
    runs,
    stream,
    sweeps,
    workers,
)
from server.api.access import authorize
from server.api.deps import caller_of
from server.api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
# Open to all: probes, and logging in.
router.include_router(health.router)
router.include_router(auth.router)
# Everything else needs a token when auth is on (reads too, unless MILES_PUBLIC_READS), whose role
# allows what the request does (server.api.access).
protected = APIRouter(dependencies=[Depends(caller_of), Depends(authorize)])
for module in (runs, grids, metrics, events, artifacts, experiments, results, catalog, stream, sweeps, workers):
    protected.include_router(module.router)
router.include_router(protected)
