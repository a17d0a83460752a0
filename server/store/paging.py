"""Sorting and keyset pagination for every listing.

A page ends with an opaque cursor holding the sort key and id of its last row;
the next page starts strictly after that pair. Unlike an offset, this neither
skips nor repeats a row when others are inserted or deleted between two
requests, and it costs the same on page 1 and page 1,000 (an index range scan).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from server.store.errors import Invalid

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # None on the last page


@dataclass(frozen=True)
class Sorting:
    """The sorts a listing offers (``name`` ascending, ``-name`` descending); ties break on ``tiebreak``."""

    columns: Mapping[str, InstrumentedAttribute[Any]]
    tiebreak: InstrumentedAttribute[int]
    default: str

    @property
    def allowed(self) -> list[str]:
        return [f"{sign}{name}" for name in self.columns for sign in ("", "-")]

    def parse(self, sort: str | None) -> tuple[str, InstrumentedAttribute[Any], bool]:
        """``(sort, column, descending)``; an unknown sort is an `Invalid` naming the allowed ones."""
        sort = sort or self.default
        name = sort.removeprefix("-")
        if name not in self.columns:
            raise Invalid.field("sort", f"unknown sort {sort!r}; allowed: {', '.join(self.allowed)}")
        return sort, self.columns[name], sort.startswith("-")


def paginate(
    session: Session, statement: Select[tuple[T]], *, sorting: Sorting, sort: str | None, limit: int, cursor: str | None
) -> Page[T]:
    """One page of ``statement`` (which selects one entity, filters applied) in the order ``sort``."""
    sort, column, descending = sorting.parse(sort)
    if cursor:
        value, row_id = _decode(cursor, sort, column)
        # Strictly after (value, id) in the sort order, written so that the index on the sort
        # column bounds the scan (its first condition) on SQLite and PostgreSQL alike.
        if descending:
            statement = statement.where(column <= value, or_(column < value, sorting.tiebreak < row_id))
        else:
            statement = statement.where(column >= value, or_(column > value, sorting.tiebreak > row_id))
    order = (column.desc(), sorting.tiebreak.desc()) if descending else (column.asc(), sorting.tiebreak.asc())
    rows = list(session.scalars(statement.order_by(*order).limit(limit + 1)))
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], _encode(sort, getattr(last, column.key), getattr(last, sorting.tiebreak.key)))


def _encode(sort: str, value: Any, row_id: int) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps({"sort": sort, "after": [value, row_id]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, sort: str, column: InstrumentedAttribute[Any]) -> tuple[Any, int]:
    invalid = Invalid.field("cursor", "is not a cursor of this listing; pass next_cursor from the previous page")
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, row_id = raw["after"]
        cursor_sort = raw["sort"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise invalid from None
    if cursor_sort != sort:
        raise Invalid.field("cursor", f"belongs to sort {cursor_sort!r}, not {sort!r}; start again without a cursor")
    python_type = column.type.python_type
    try:
        if python_type is datetime:
            value = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise invalid from None
    if not isinstance(value, python_type) or isinstance(value, bool) or not _is_int64(row_id):
        raise invalid
    if isinstance(value, int) and not _is_int64(value):
        raise invalid
    return value, row_id


def _is_int64(value: Any) -> bool:
    # Both databases reject (and SQLite's driver raises on) integers beyond 64 bits.
    return type(value) is int and -(2**63) <= value < 2**63
