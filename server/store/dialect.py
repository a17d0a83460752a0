"""The one write construct that differs by backend: INSERT ... ON CONFLICT, PostgreSQL's or SQLite's."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert(dialect: str) -> Any:
    """The ``insert`` of ``dialect`` (a name, e.g. ``session.get_bind().dialect.name``), with ``on_conflict_do_*``."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def insert_for(session: Session) -> Any:
    """`insert` for the backend of ``session``."""
    return insert(session.get_bind().dialect.name)
