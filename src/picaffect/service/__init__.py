"""``picaffect serve``: a web page for people and a REST service for programs.

    from picaffect import Predictor
    from picaffect.service import Settings, create_app
    app = create_app(Predictor.from_pretrained(), Settings(token="secret"))   # any ASGI server runs it

Modules: ``settings`` (limits, and ``ServeOptions``: the options of ``picaffect serve``),
``uploads`` (streaming multipart parsing into memory),
``batching`` (the micro-batching worker thread), ``state`` (what a running service
holds, and the FastAPI dependencies), ``routes`` (the routes, on one router), ``schemas``
(the answers as pydantic models, for the OpenAPI document),
``model_info`` (``/v1/model``: what the loaded file records), ``app`` (``create_app``), ``server`` (uvicorn with
connection deadlines, a connection cap and a clean SIGTERM), ``launch`` (``serve_model``: settings in
the command's units, the start-up checks and lines), ``index.html`` (the page).
Needs the ``serve`` extra: ``pip install 'picaffect[serve]'``.
"""
from __future__ import annotations

from .settings import ServeOptions, Settings

__all__ = ["ServeOptions", "Settings", "create_app"]


def __getattr__(name: str):
    """``create_app`` imports FastAPI; ``Settings`` alone does not."""
    if name == "create_app":
        from .app import create_app
        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
