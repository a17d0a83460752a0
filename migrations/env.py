"""Alembic's environment: the dashboard's metadata, and a connection handed over by `server.migrate`."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, Integer

from server.models import Base, UTCDateTime


def render_item(kind: str, item: Any, _context: Any) -> str | bool:
    """Write the storage type of `UTCDateTime`, so that migrations do not import the models."""
    if kind == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def compare_type(
    migration: Any, _inspected_column: Any, _metadata_column: Any, inspected_type: Any, metadata_type: Any,
) -> bool | None:
    """On SQLite every integer is stored in up to 64 bits, whatever its declared name: a column declared
    INTEGER already holds what BigInteger means. Elsewhere, Alembic's own comparison (None)."""
    if migration.dialect.name == "sqlite" and isinstance(inspected_type, Integer) and isinstance(metadata_type, Integer):
        return False
    return None


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite alters a table by copying it; batch mode writes migrations that work there too.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=compare_type,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations through `miles db ...` (server.migrate), which provides the connection"
    )
run(connection)
