"""The ASGI application of ``picaffect serve``: ``create_app(predictor, settings)``.

It puts a ``ServiceState`` (``state.py``) on ``app.state``, includes the router of
``routes.py``, answers ``Refused`` as JSON, and serves the OpenAPI documentation at
``/docs`` from files installed with the package. Uploads stay in memory; the server
fetches nothing a client names. ``server.py`` runs the app under uvicorn with the
connection limits that uvicorn lacks by itself.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from .routes import refusal, router, swagger_ui_folder
from .settings import Settings
from .state import ServiceState
from .uploads import Refused


async def _refused(request: Request, e: Refused) -> JSONResponse:
    return refusal(e.status, e.code, e.message, e.headers, **e.extra)


# Starlette's own refusals (no such route, a method a route does not take) in the documented shape.
HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


async def _http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
    where = f"{request.method} {request.url.path}"
    message = {404: f"no such page: {where} (the API: POST /v1/predict, GET /v1/health, GET /v1/model; /docs)",
               405: f"{where}: this route does not take {request.method}"}.get(e.status_code, str(e.detail))
    return refusal(e.status_code, HTTP_CODES.get(e.status_code, f"http_{e.status_code}"), message,
                   dict(e.headers or {}))


async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
    first = e.errors()[0] if e.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    return refusal(400, "bad_request", f"{where}: {first.get('msg', 'invalid request')}")


def create_app(predictor: Any, settings: Settings | None = None) -> FastAPI:
    """The service around a loaded ``Predictor``. Scoring starts with the app's lifespan."""
    state = ServiceState.create(predictor, settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state.start()
        try:
            yield
        finally:
            state.stop()

    # /docs and /openapi.json are routes of their own (routes.py), which ask for the token when one is set
    app = FastAPI(title="picaffect", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None,
                  description="Valence and arousal of pictures on the 1..9 Self-Assessment Manikin scale "
                              "(5 is neutral). POST pictures to /v1/predict as multipart field `files`.")
    app.state.service = state
    app.add_exception_handler(Refused, _refused)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.include_router(router)
    _add_docs(app)
    return app


def _add_docs(app: FastAPI) -> None:
    """Swagger UI's files (swagger-ui-bundle) served locally for ``/docs``: the docs work offline."""
    from fastapi.staticfiles import StaticFiles

    folder = swagger_ui_folder()
    if folder is not None:
        app.mount("/docs-assets", StaticFiles(directory=folder), name="docs-assets")
