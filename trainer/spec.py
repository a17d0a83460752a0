"""Strict pydantic models whose validation errors read well to people.

Every job spec (the training config, method hyperparameters, dataset options)
derives from `SpecModel`: unknown fields are rejected with the list of allowed
ones, and a value out of range is reported with the whole allowed range
(``0 < lr <= 1``), not just the bound that was crossed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import annotated_types as at
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def allowed_range(name: str, field: FieldInfo) -> str | None:
    """The constraint of a numeric field as an inequality, e.g. ``0 < lr <= 1``."""
    low = high = ""
    for item in field.metadata:
        if isinstance(item, at.Ge):
            low = f"{item.ge} <= "
        elif isinstance(item, at.Gt):
            low = f"{item.gt} < "
        elif isinstance(item, at.Le):
            high = f" <= {item.le}"
        elif isinstance(item, at.Lt):
            high = f" < {item.lt}"
    if not (low or high):
        return None
    return f"{low}{name}{high}"


def _message(error: dict[str, Any], model: type[BaseModel]) -> str:
    loc = tuple(error["loc"])
    name = str(loc[0]) if len(loc) == 1 else ""
    field = model.model_fields.get(name)
    if error["type"] in _RANGE_ERRORS and field is not None:
        rule = allowed_range(name, field)
        if rule:
            return f"must satisfy {rule} (got {error['input']!r})"
    if error["type"] == "value_error":
        return error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden" and name:
        return f"unknown field; allowed fields: {', '.join(model.model_fields) or 'none'}"
    return error["msg"]


def rebuild(
    error: ValidationError, title: str, *, prefix: tuple[str | int, ...] = (),
    model: type[BaseModel] | None = None,
) -> ValidationError:
    """The same errors, located under ``prefix``, with messages made explicit for ``model``."""
    details: list[InitErrorDetails] = [
        {
            "type": PydanticCustomError(item["type"], _message(item, model) if model else item["msg"]),
            "loc": prefix + tuple(item["loc"]),
            "input": item["input"],
        }
        for item in error.errors()
    ]
    return ValidationError.from_exception_data(title, details)


def field_error(title: str, field: str, value: Any, message: str) -> ValidationError:
    """A validation error about one field, for checks that involve several fields."""
    details: InitErrorDetails = {"type": PydanticCustomError("invalid_value", message), "loc": (field,), "input": value}
    return ValidationError.from_exception_data(title, [details])


class SpecModel(BaseModel):
    """Base of every user-facing spec: strict fields and readable errors."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    @model_validator(mode="wrap")
    @classmethod
    def _readable_errors(cls, data: Any, handler: Any) -> Any:
        try:
            return handler(data)
        except ValidationError as error:
            raise rebuild(error, cls.__name__, model=cls) from None


@dataclass(frozen=True)
class FieldError:
    """One problem with a submitted spec: the dotted field and what is allowed."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def explain(error: ValidationError) -> list[FieldError]:
    """Flatten a validation error into one `FieldError` per problem."""
    return [
        FieldError(".".join(str(part) for part in item["loc"]), item["msg"])
        for item in error.errors()
    ]


def parse_assignment(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` from the command line: the value as JSON when it is JSON (``3``, ``true``,
    ``[1, 2]``), else as text. Raises ValueError without the ``=``."""
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise ValueError(f"{text!r}: expected NAME=VALUE")
    try:
        return name, json.loads(raw)
    except json.JSONDecodeError:
        return name, raw
