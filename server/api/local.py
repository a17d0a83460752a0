"""What a server without auth (local mode, the `miles up` default) accepts, since no token stands guard.

- **Only loopback host names** in ``Host`` (``localhost``, ``127.0.0.1``, ``[::1]``, and the bind
  address itself when it is a specific one): a web page that points a name of its own at
  127.0.0.1 (DNS rebinding) sends its name, and is refused with 421.
- **Changes only from the server's own pages**: a state-changing request whose ``Origin``
  (or, without one, ``Referer``) is another site, say a form on a web page posting to
  ``/api/v1/runs/3/cancel``, is refused with 403. Clients that are not browsers (the Python
  client, curl) send neither header and are let through.

With auth on, tokens guard the API, and `server.api.deps.authenticate` refuses cross-site
writes made with the login cookie by the same `same_origin` test.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from starlette import status
from starlette.types import ASGIApp, Receive, Scope, Send

from server.api.admission import SAFE_METHODS
from server.api.errors import error_response

LOOPBACK_NAMES = frozenset({"localhost"})
WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def host_name(host: str) -> str:
    """The name of a ``Host`` header, without its port, brackets or trailing dot: ``[::1]:8000`` -> ``::1``."""
    name = urlsplit(f"//{host}").hostname or ""
    return name.rstrip(".").lower()


def is_loopback_name(name: str) -> bool:
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def same_origin(headers: Mapping[str, str]) -> bool:
    """Whether a request comes from a page of this server: its ``Origin`` (else ``Referer``) names the
    ``Host`` it was sent to. A request with neither did not come from a browser's cross-site page."""
    origin = headers.get("origin") or headers.get("referer")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


class LocalOnly:
    """ASGI middleware for a server without auth: loopback ``Host`` names, and writes from its own pages."""

    def __init__(self, app: ASGIApp, bind_host: str) -> None:
        self.app = app
        self.allowed = {bind_host.lower()} - WILDCARDS  # e.g. a LAN address given as MILES_HOST

    def _allowed_host(self, name: str) -> bool:
        return is_loopback_name(name) or name in self.allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in _headers(scope["headers"])}
        host = headers.get("host", "")
        if not self._allowed_host(host_name(host)):
            response = error_response(status.HTTP_421_MISDIRECTED_REQUEST, (
                f"this server runs without auth and answers only to loopback names (localhost, 127.0.0.1, [::1]), "
                f"not to {host[:100]!r}: that refusal keeps other web sites out (DNS rebinding). Open it as "
                "http://127.0.0.1:<port>, or turn auth on (MILES_AUTH=on) to serve other names"
            ))
            await response(scope, receive, send)
            return
        if scope["method"] not in SAFE_METHODS and not same_origin(headers):
            origin = headers.get("origin") or headers.get("referer", "")
            response = error_response(status.HTTP_403_FORBIDDEN, (
                f"cross-site request refused: it comes from {origin[:100]!r}, not from this server's own pages, "
                "and a server without auth accepts changes only from those"
            ))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _headers(raw: Iterable[tuple[bytes, bytes]]) -> Iterable[tuple[bytes, bytes]]:
    # Lower-case names (ASGI's rule); the first of repeated headers, as Starlette's Headers.get reads them.
    seen: set[bytes] = set()
    for key, value in raw:
        key = key.lower()
        if key not in seen:
            seen.add(key)
            yield key, value
