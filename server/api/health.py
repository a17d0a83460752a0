"""Health: is the database reachable (503 if not), and the broker when one is configured."""

from __future__ import annotations

import redis
from fastapi import APIRouter, Request, Response, status
from sqlalchemy import text

from server.api.deps import DatabaseDep
from server.schemas import Health

router = APIRouter(tags=["health"])


class BrokerProbe:
    """Pings the broker for health checks: one Redis client (and its connection pool) for the app's
    lifetime, closed with it (`server.app`); nothing to ping without Redis."""

    def __init__(self, redis_url: str | None) -> None:
        self._client = (
            redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1) if redis_url else None
        )

    def state(self) -> str:
        if self._client is None:
            return "not configured"
        try:
            self._client.ping()
        except redis.RedisError as error:
            return f"unreachable: {type(error).__name__}"
        return "ok"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


@router.get(
    "/health", summary="Database and broker reachability",
    responses={503: {"model": Health, "description": "The database cannot be reached."}},
)
def health(database: DatabaseDep, request: Request, response: Response) -> Health:
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database_state = "ok"
    except Exception as error:  # any failure to answer is "unreachable" to a probe
        database_state = f"unreachable: {type(error).__name__}"
    probe: BrokerProbe = request.app.state.broker_probe
    broker_state = probe.state()
    if database_state != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        state = "unavailable"
    else:
        state = "ok" if broker_state in ("ok", "not configured") else "degraded"
    return Health(status=state, database=database_state, broker=broker_state, version=request.app.version)
