"""Columns sent to PostgreSQL as binary arrays, each packed in a few calls into C.

psycopg dumps a Python list into a binary array element by element, in Python: at 1,000 points
per request that was an eighth of an ingest's time on the server. These classes hold a whole
column already in PostgreSQL's binary array format (``array_send``: the number of dimensions, a
has-nulls flag, the element type, each dimension's length and lower bound, then every element as
its length and its bytes), built with numpy and `struct`; psycopg sends them as they are, with
the array type's OID. Only one-dimensional arrays without nulls, which is all an ingest sends.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

_POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # timestamptz is microseconds since then
_MICROSECOND = timedelta(microseconds=1)


class BinaryArray(bytes):
    """A column in PostgreSQL's binary array format; subclasses name the element type."""

    ELEMENT_OID: int
    ARRAY_OID: int

    @classmethod
    def _packed(cls, count: int, elements: bytes) -> BinaryArray:
        if not count:
            return cls(struct.pack(">iii", 0, 0, cls.ELEMENT_OID))
        return cls(struct.pack(">iiiii", 1, 0, cls.ELEMENT_OID, count, 1) + elements)

    @classmethod
    def _fixed(cls, values: Sequence[float], kind: str) -> BinaryArray:
        """Elements of 8 bytes each, ``kind`` their numpy type (big-endian, as PostgreSQL sends them)."""
        packed = np.empty(len(values), dtype=[("size", ">i4"), ("value", kind)])
        packed["size"] = 8
        packed["value"] = values
        return cls._packed(len(values), packed.tobytes())


class Int8Array(BinaryArray):
    ELEMENT_OID, ARRAY_OID = 20, 1016

    @classmethod
    def of(cls, values: Sequence[int]) -> BinaryArray:
        return cls._fixed(values, ">i8")


class Float8Array(BinaryArray):
    ELEMENT_OID, ARRAY_OID = 701, 1022

    @classmethod
    def of(cls, values: Sequence[float]) -> BinaryArray:
        return cls._fixed(values, ">f8")


class TextArray(BinaryArray):
    ELEMENT_OID, ARRAY_OID = 25, 1009

    @classmethod
    def of(cls, values: Sequence[str]) -> BinaryArray:
        # A batch repeats a few keys many times: each is encoded once, and the loops over every value are in C.
        encoded = {value: _text(value) for value in dict.fromkeys(values)}
        return cls._packed(len(values), b"".join(map(encoded.__getitem__, values)))


def _text(value: str) -> bytes:
    """A text element: its length in bytes, then its UTF-8."""
    utf8 = value.encode()
    return struct.pack(">i", len(utf8)) + utf8


class TimestamptzArray(BinaryArray):
    ELEMENT_OID, ARRAY_OID = 1184, 1185

    @classmethod
    def of(cls, values: Sequence[datetime]) -> BinaryArray:
        """Aware datetimes (a naive one is refused: its zone would be a guess)."""
        micros: dict[datetime, int] = {}  # most points of a batch share the time they were received
        for value in dict.fromkeys(values):
            if value.tzinfo is None:
                raise ValueError(f"{value!r} has no time zone")
            micros[value] = (value - _POSTGRES_EPOCH) // _MICROSECOND
        return cls._fixed(list(map(micros.__getitem__, values)), ">i8")


def _dumper(array: type[BinaryArray]) -> type[Dumper]:
    class ArrayDumper(Dumper):
        format = Format.BINARY
        oid = array.ARRAY_OID

        def dump(self, obj: BinaryArray) -> bytes:
            return obj

    return ArrayDumper


for _array in (Int8Array, Float8Array, TextArray, TimestamptzArray):
    psycopg.adapters.register_dumper(_array, _dumper(_array))
