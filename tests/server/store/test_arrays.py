"""The binary arrays an ingest sends are read back by a real PostgreSQL exactly as the columns were."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from server.store.arrays import Float8Array, Int8Array, TextArray, TimestamptzArray

RECEIVED = datetime(2026, 12, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def connection(postgres_url: str):
    with psycopg.connect(postgres_url.replace("postgresql+psycopg", "postgresql")) as connection:
        yield connection


@pytest.mark.parametrize(("array", "cast", "values"), [
    (Int8Array, "int8", [0, 1, -5, 2**53 - 1, -(2**63), 2**63 - 1]),
    (Float8Array, "float8", [0.1, -0.0, 1e308, -1e308, 5e-324, 3]),
    (TextArray, "text", ["loss/train", "util/audio", "", "loss/train", "gr\u00fc\u00dfe/\u00e9t\u00e9", "k" * 251]),
    (TimestamptzArray, "timestamptz", [
        RECEIVED, RECEIVED, RECEIVED + timedelta(microseconds=1), datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),  # after 2000 in UTC
        datetime(1900, 6, 1, tzinfo=UTC),  # before PostgreSQL's epoch: negative microseconds
    ]),
])
def test_a_column_reads_back_as_it_was_in_order(connection, array, cast, values):
    stored = connection.execute(f"SELECT %b::{cast}[]", (array.of(values),)).fetchone()[0]
    assert stored == values
    assert connection.execute(f"SELECT %b::{cast}[]", (array.of([]),)).fetchone()[0] == []


def test_columns_unnest_into_rows_together(connection):
    keys, steps, values = ["a", "b", "a"], [3, 1, 4], [0.5, -1.0, 2.25]
    rows = connection.execute(
        "SELECT * FROM unnest(%b::text[], %b::int8[], %b::float8[], %b::timestamptz[])",
        (TextArray.of(keys), Int8Array.of(steps), Float8Array.of(values), TimestamptzArray.of([RECEIVED] * 3)),
    ).fetchall()
    assert rows == [(k, s, v, RECEIVED) for k, s, v in zip(keys, steps, values, strict=True)]


def test_a_step_outside_int8_and_a_naive_time_are_refused_before_sending():
    with pytest.raises(OverflowError):
        Int8Array.of([2**63])
    with pytest.raises(ValueError, match="no time zone"):
        TimestamptzArray.of([datetime(2026, 1, 1)])
