"""The web dashboard: page shells, static CSS and JavaScript, Plotly served from its package, and the API's pages.

`install(app)` adds it to a FastAPI application. This package imports nothing from
`server`: its pages read the same JSON API and live stream that notebooks use.
"""

from fastapi import FastAPI

from web import api_docs, routes


def install(app: FastAPI, *, exists: routes.Exists | None = None, preload: routes.Preload | None = None) -> None:
    """The dashboard's pages and files (`web.routes`; ``exists`` tells its pages whether the run, experiment or
    sweep they show exists, ``preload`` gives a run page its first data), and ``/docs`` and ``/redoc``
    (`web.api_docs`)."""
    routes.install(app, exists=exists, preload=preload)
    api_docs.install(app)


__all__ = ["install"]
