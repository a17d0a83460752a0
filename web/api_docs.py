"""The API's own pages, ``/docs`` (Swagger UI) and ``/redoc`` (Redoc), without a CDN.

FastAPI's built-in pages load their scripts from a CDN, at floating versions, with an
inline script: blank offline, and outside the policy the dashboard's pages are under.
These pages take Swagger UI and Redoc from the installed ``fastapi-standalone-docs``
package (each with its licence; the package's version, in the assets' path, pins theirs),
start them from modules of our own, and are sent with the pages' Content-Security-Policy.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import Any

import fastapi_standalone_docs
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse

from web.routes import SECURITY_HEADERS, DashboardFiles, static_url, templates

PACKAGE = "fastapi-standalone-docs"
router = APIRouter(include_in_schema=False)


@cache
def assets_path() -> str:
    """Where the assets are served: the package's version in the path, so they can be cached for good."""
    return f"/vendor/api-docs-{version(PACKAGE)}"


def assets_dir() -> Path:
    return Path(str(files(fastapi_standalone_docs).joinpath("static")))


def docs_page(request: Request, viewer: str, title: str) -> HTMLResponse:
    """The page of ``viewer`` (``swagger`` or ``redoc``) over the app's OpenAPI schema."""
    base = request.scope.get("root_path", "")
    context: dict[str, Any] = {
        "title": title, "viewer": viewer, "base": base, "assets": base + assets_path(), "static": base + static_url(),
        "openapi_url": base + (request.app.openapi_url or ""),
    }
    return templates.TemplateResponse(
        request, "api_docs.html", context, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
    )


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui(request: Request) -> HTMLResponse:
    return docs_page(request, "swagger", "API")


@router.get("/redoc", response_class=HTMLResponse)
def redoc(request: Request) -> HTMLResponse:
    return docs_page(request, "redoc", "API reference")


@router.get("/redoc/logo-mini.svg")
def redoc_logo() -> FileResponse:
    # The package's Redoc asks for its logo beside the page, at the page's path + "/logo-mini.svg".
    return FileResponse(assets_dir() / "redoc" / "logo-mini.svg", media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"})


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` from ``app`` (created with ``docs_url=None, redoc_url=None``)."""
    app.include_router(router)
    # Their version is in the path: cached for a year.
    immutable = DashboardFiles(directory=assets_dir(), cache_control="public, max-age=31536000, immutable")
    app.mount(assets_path(), immutable, name="api-docs")
