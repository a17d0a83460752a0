"""API tokens: random secrets shown once, stored as their SHA-256 (never the token itself)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import ROLES, ApiToken, utcnow
from server.store.errors import Conflict, Invalid, NotFound, StoreError

TOKEN_PREFIX = "miles_"
# last_used_at is a convenience for `miles token list`: refreshing it at most once a minute
# keeps reads from writing on every request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRejected(StoreError):
    """The token presented is unknown or revoked; the message says which."""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def create(*, session: Session, name: str, role: str = "member") -> tuple[ApiToken, str]:
    """A new token named ``name`` with ``role`` (see `server.api.access`): the row and the secret, which is
    never stored and cannot be shown again."""
    if role not in ROLES:
        raise Invalid.field("role", f"must be one of {', '.join(ROLES)}; got {role!r}")
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))) is not None:
        raise Conflict(f"an active token named {name!r} exists; revoke it first or choose another name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)  # 256 bits of entropy
    token = ApiToken(name=name, hash=digest(secret), prefix=secret[: len(TOKEN_PREFIX) + 6], role=role)
    session.add(token)
    session.flush()
    return token, secret


def identify(*, session: Session, secret: str) -> ApiToken:
    """The active token whose secret is ``secret``; `TokenRejected` says why not."""
    token = session.scalar(select(ApiToken).where(ApiToken.hash == digest(secret)))
    if token is None:
        raise TokenRejected("the API token is not valid; create one with `miles token create NAME`")
    if token.revoked_at is not None:
        raise TokenRejected(
            f"the API token {token.name!r} ({token.prefix}...) was revoked on {token.revoked_at:%Y-%m-%d %H:%M} UTC"
        )
    return token


def needs_touch(token: ApiToken) -> bool:
    return token.last_used_at is None or utcnow() - token.last_used_at > LAST_USED_RESOLUTION


def touch(*, session: Session, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is not None:
        token.last_used_at = utcnow()


def all_tokens(*, session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def find(*, session: Session, ref: str) -> ApiToken:
    """The active token named ``ref``, else the token whose id is ``ref``."""
    token = session.scalar(select(ApiToken).where(ApiToken.name == ref, ApiToken.revoked_at.is_(None)))
    if token is None and ref.isdigit() and int(ref) < 2**31:
        token = session.get(ApiToken, int(ref))
    if token is None:
        raise NotFound(f"no active API token named {ref!r} and none with that id")
    return token


def revoke(*, session: Session, ref: str) -> ApiToken:
    return _revoked(session, find(session=session, ref=ref))


def revoke_id(*, session: Session, token_id: int) -> None:
    """Revoke the token ``token_id`` (the caller's own, from the page's menu); again is fine."""
    token = session.get(ApiToken, token_id)
    if token is not None:
        _revoked(session, token)


def _revoked(session: Session, token: ApiToken) -> ApiToken:
    # From now on requests with it get 401, and its open live streams end (server.api.stream).
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        session.flush()
    return token


def is_active(*, session: Session, token_id: int) -> bool:
    """Whether the token ``token_id`` still exists and is not revoked (a live stream asks on every read)."""
    return session.scalar(select(ApiToken.id).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))) is not None
