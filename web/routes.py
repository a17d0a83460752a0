"""The dashboard's pages: HTML shells whose scripts read the JSON API and the live stream.

Nothing here touches the database: a page is a template, and its ES module asks
``/api/v1`` for the data, exactly as a notebook would. `install` adds the pages,
the static files and Plotly's JavaScript (served from the installed ``plotly``
package: no CDN, no build step) to an application.

The one question a page asks before it is sent is whether the run or experiment in its
address exists, so that ``/runs/99999`` answers 404 (`error_page`); whoever installs the
pages answers it (`Exists`), as far as the visitor may know.

Files are served so that a page costs one download each at most: the static files under
``/assets/<digest>/`` (a digest of all of them, so that any change gives new addresses
and every address can be cached for good), compressed; Plotly's bundles with their
version in their name, compressed, and for pages that draw only lines and markers its
basic partial bundle.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
import re
from dataclasses import dataclass
from functools import cache
from importlib.metadata import version
from importlib.resources import files
from os import PathLike
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.types import Scope

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
router = APIRouter(include_in_schema=False)

# No inline script anywhere, and nothing from another origin. Plotly sets style
# attributes and injects <style> elements, hence 'unsafe-inline' for styles only.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
IdParam = Annotated[int, PathParam(ge=1, le=2**31 - 1)]
STRICT_VERSION = "4.1.1"  # of web/vendor/plotly-strict-*.min.js: the plotly.js of the `plotly` package
BASIC_VERSION = "4.1.1"  # of web/vendor/plotly-basic-*.min.js, the same plotly.js
Kind = Literal["run", "experiment", "sweep"]
Preloaded = Literal["run", "compare"]  # the pages that hold their first data


class Exists(Protocol):
    def __call__(self, request: Request, kind: Kind, ident: int) -> bool | None:
        """Whether the run, experiment or sweep ``ident`` exists; None when this visitor may not be told
        (not signed in) or it cannot be known now: the page is sent, and its script says what it finds."""
        ...


class Preload(Protocol):
    def __call__(self, request: Request, page: Preloaded, ids: list[int]) -> dict[str, Any] | None:
        """What the page of the run ``ids[0]``, or the comparison of the runs ``ids``, would first ask the API
        for, as the API answers it (JSON values), embedded in the page so that it draws its first charts
        without waiting for those requests; None: the script asks."""
        ...


def preloaded(request: Request, page: Preloaded, ids: list[int]) -> dict[str, Any] | None:
    """The first data of ``page`` from the app's `Preload`, for the template's ``preloaded`` block."""
    preload: Preload | None = getattr(request.app.state, "page_preload", None)
    return preload(request, page, ids) if preload else None


def page(request: Request, template: str, title: str, section: str, **context: Any) -> HTMLResponse:
    """A page shell; ``section`` marks the current item of the navigation."""
    base = request.scope.get("root_path", "")
    return templates.TemplateResponse(
        request, template,
        {"title": title, "section": section, "base": base, "static": base + static_url(),
         "plotly_url": plotly_url(), "plotly_basic_url": plotly_basic_url(), **context},
        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
    )


@router.get("/", response_class=HTMLResponse)
def runs_page(request: Request) -> HTMLResponse:
    return page(request, "runs.html", "Runs", "runs")


@router.get("/runs/new", response_class=HTMLResponse)
def new_run_page(request: Request) -> HTMLResponse:
    return page(request, "new_run.html", "New run", "new")


def error_page(request: Request, status_code: int, heading: str, message: str) -> HTMLResponse:
    """An HTML page saying what went wrong, with the status it is sent with."""
    response = page(request, "error.html", heading, "error", status_code=status_code, heading=heading, message=message)
    response.status_code = status_code
    return response


def missing(request: Request, kind: Kind, ident: int) -> HTMLResponse | None:
    """The 404 page when the run, experiment or sweep ``ident`` is known not to exist."""
    exists: Exists | None = getattr(request.app.state, "page_lookup", None)
    if exists is None or exists(request, kind, ident) is not False:
        return None
    return error_page(request, 404, f"No {kind} {ident}", f"There is no {kind} {ident}; it may have been deleted.")


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: IdParam) -> HTMLResponse:
    return missing(request, "run", run_id) or page(
        request, "run.html", f"Run {run_id}", "runs", run_id=run_id, preloaded=preloaded(request, "run", [run_id]),
    )


def compared_ids(ids: str | None) -> list[int]:
    """The runs of ``/compare?ids=3,1,2`` as the page's script reads them (``idsParam`` of api.js): the
    positive whole numbers, each once, in their order; anything else is left out."""
    chosen: dict[int, None] = {}
    for part in (ids or "").split(","):
        if re.fullmatch(r"[0-9]+", part.strip()) and int(part) > 0:
            chosen[int(part)] = None
    return list(chosen)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, ids: str | None = None) -> HTMLResponse:
    chosen = compared_ids(ids)
    return page(request, "compare.html", "Compare runs", "runs",
                preloaded=preloaded(request, "compare", chosen) if chosen else None)


@router.get("/experiments/{experiment_id}", response_class=HTMLResponse)
def experiment_page(request: Request, experiment_id: IdParam) -> HTMLResponse:
    return missing(request, "experiment", experiment_id) or page(
        request, "experiment.html", f"Experiment {experiment_id}", "runs", experiment_id=experiment_id,
    )


@router.get("/sweeps", response_class=HTMLResponse)
def sweeps_page(request: Request) -> HTMLResponse:
    return page(request, "sweeps.html", "Sweeps", "sweeps")


@router.get("/sweeps/new", response_class=HTMLResponse)
def new_sweep_page(request: Request) -> HTMLResponse:
    return page(request, "new_sweep.html", "New sweep", "sweeps")


@router.get("/sweeps/{sweep_id}", response_class=HTMLResponse)
def sweep_page(request: Request, sweep_id: IdParam) -> HTMLResponse:
    # Parallel coordinates: a WebGL trace, in Plotly's full bundles only, and built without eval in the strict one.
    return missing(request, "sweep", sweep_id) or page(
        request, "sweep.html", f"Sweep {sweep_id}", "sweeps", sweep_id=sweep_id, plotly_full_url=plotly_strict_url(),
    )


@router.get("/workers", response_class=HTMLResponse)
def workers_page(request: Request) -> HTMLResponse:
    return page(request, "workers.html", "Workers", "workers")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return page(request, "login.html", "Sign in", "login")


# -- Plotly's JavaScript ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Bundle:
    """A JavaScript file held in memory, plain and gzip-compressed, with its ETag."""

    plain: bytes
    compressed: bytes
    etag: str

    @classmethod
    def of(cls, plain: bytes) -> Bundle:
        return cls(plain, gzip.compress(plain, compresslevel=9, mtime=0), f'"{hashlib.sha256(plain).hexdigest()[:32]}"')


@cache
def plotly_bundle() -> Bundle:
    """plotly.min.js from the installed ``plotly`` package (about 5 MB, 1.4 MB compressed)."""
    return Bundle.of(files("plotly").joinpath("package_data", "plotly.min.js").read_bytes())


def plotly_url() -> str:
    # The package's version is in the path, so the file can be cached for good.
    return f"/vendor/plotly-{version('plotly')}.min.js"


@cache
def plotly_strict_bundle() -> Bundle:
    """Plotly's strict bundle (web/vendor/PROVENANCE.md): its WebGL traces need no eval, which our CSP forbids."""
    return Bundle.of((HERE / "vendor" / f"plotly-strict-{STRICT_VERSION}.min.js").read_bytes())


def plotly_strict_url() -> str:
    return f"/vendor/plotly-strict-{STRICT_VERSION}.min.js"


@cache
def plotly_basic_bundle() -> Bundle:
    """Plotly's basic partial bundle (web/vendor/PROVENANCE.md): scatter, bar and pie traces."""
    return Bundle.of((HERE / "vendor" / f"plotly-basic-{BASIC_VERSION}.min.js").read_bytes())


def plotly_basic_url() -> str:
    return f"/vendor/plotly-basic-{BASIC_VERSION}.min.js"


@router.get("/vendor/plotly-basic-{bundle_version}.min.js")
def plotly_basic_js(request: Request, bundle_version: str) -> Response:
    return bundle_response(request, plotly_basic_bundle(), current=bundle_version == BASIC_VERSION)


@router.get("/vendor/plotly-strict-{bundle_version}.min.js")
def plotly_strict_js(request: Request, bundle_version: str) -> Response:
    return bundle_response(request, plotly_strict_bundle(), current=bundle_version == STRICT_VERSION)


# After the strict bundle's route, which this one would match too.
@router.get("/vendor/plotly-{package_version}.min.js")
def plotly_js(request: Request, package_version: str) -> Response:
    return bundle_response(request, plotly_bundle(), current=package_version == version("plotly"))


def bundle_response(request: Request, bundle: Bundle, *, current: bool, media_type: str = "text/javascript") -> Response:
    """A bundle, compressed when the browser accepts it; cached for good when asked for by its current version."""
    headers = {
        "ETag": bundle.etag,
        "Cache-Control": "public, max-age=31536000, immutable" if current else "no-cache",
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(bundle.compressed, media_type=media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(bundle.plain, media_type=media_type, headers=headers)


# -- the static files under their digest ------------------------------------------------------------

MEDIA_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Assets:
    """Every file under web/static, in memory (plain and compressed), and a digest of them all."""

    digest: str
    files: dict[str, tuple[Bundle, str]]  # by path under web/static: the file and its media type


@cache
def assets() -> Assets:
    root = HERE / "static"
    digest = hashlib.sha256()
    found: dict[str, tuple[Bundle, str]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            name, plain = path.relative_to(root).as_posix(), path.read_bytes()
            digest.update(name.encode() + b"\0" + hashlib.sha256(plain).digest())
            media_type = MEDIA_TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            found[name] = (Bundle.of(plain), media_type)
    return Assets(digest.hexdigest()[:16], found)


def static_url() -> str:
    """Where the pages load the static files from: the modules' relative imports stay under the same digest."""
    return f"/assets/{assets().digest}"


@router.get("/assets/{digest}/{path:path}")
def asset(request: Request, digest: str, path: str) -> Response:
    found = assets().files.get(path)
    if found is None:
        raise HTTPException(404)
    bundle, media_type = found
    return bundle_response(request, bundle, current=digest == assets().digest, media_type=media_type)


# -- static files and installation ------------------------------------------------------------------


class DashboardFiles(StaticFiles):
    """Static files with ``cache_control``: by default the dashboard's CSS and modules under their plain
    names (``/static/...``, for scripts of one's own), revalidated on every load."""

    def __init__(self, *, directory: Path, cache_control: str = "no-cache") -> None:
        super().__init__(directory=directory)
        self.cache_control = cache_control

    def file_response(
        self, full_path: PathLike[str] | str, stat_result: Any, scope: Scope, status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = self.cache_control
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def install(app: FastAPI, exists: Exists | None = None, preload: Preload | None = None) -> None:
    """Serve the dashboard from ``app``: the pages, ``/static`` and Plotly's JavaScript. With ``exists``,
    the page of a run or experiment that does not exist is a 404; with ``preload``, a run page holds
    its first data."""
    app.state.page_lookup = exists
    app.state.page_preload = preload
    app.include_router(router)
    app.mount("/static", DashboardFiles(directory=HERE / "static"), name="static")
