"""The web dashboard: page shells, static CSS and JavaScript, and Plotly served from its package.

`install(app)` adds it to a FastAPI application. This package imports nothing from
`server`: its pages read the same JSON API and live stream that notebooks use.
"""

from web.routes import install

__all__ = ["install"]
