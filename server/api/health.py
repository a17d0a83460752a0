"""Health: is the database reachable (503 if not), and the broker when one is configured."""

from __future__ import annotations

from importlib.metadata import version

import redis
from fastapi import APIRouter, Response, status
from sqlalchemy import text

from server.api.deps import DatabaseDep, SettingsDep
from server.schemas import Health

router = APIRouter(tags=["health"])


@router.get(
    "/health", summary="Database and broker reachability",
    responses={503: {"model": Health, "description": "The database cannot be reached."}},
)
def health(database: DatabaseDep, settings: SettingsDep, response: Response) -> Health:
    try:
        with database.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        database_state = "ok"
    except Exception as error:  # any failure to answer is "unreachable" to a probe
        database_state = f"unreachable: {type(error).__name__}"
    broker_state = "not configured"
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
            broker_state = "ok"
        except redis.RedisError as error:
            broker_state = f"unreachable: {type(error).__name__}"
        finally:
            client.close()
    if database_state != "ok":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
        state = "unavailable"
    else:
        state = "ok" if broker_state in ("ok", "not configured") else "degraded"
    return Health(status=state, database=database_state, broker=broker_state, version=version("miles-dashboard"))

