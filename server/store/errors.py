"""What the store refuses, in words a user can act on; the API turns each into an HTTP status."""

from __future__ import annotations

from trainer.spec import FieldError


class StoreError(Exception):
    """Base of the store's refusals; ``str(error)`` is the sentence shown to the user."""


class NotFound(StoreError):
    """The thing named does not exist (``run 42 not found``)."""


class Conflict(StoreError):
    """The request contradicts the current state (a name taken, a finished run changed)."""


class LimitReached(StoreError):
    """A quota of the server would be exceeded (too many active runs)."""


class Invalid(StoreError):
    """Field-level problems with what was sent, each naming the field and what is allowed."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors
        super().__init__("; ".join(map(str, errors)))

    @classmethod
    def field(cls, field: str, message: str) -> Invalid:
        return cls([FieldError(field, message)])
