"""The ASGI application of ``picaffect serve``: ``create_app(predictor, settings)``.

    POST /v1/predict   multipart field ``files`` (repeated; ``file`` also works), ``?scale=1,7``
    GET  /v1/health    liveness, queue, limits
    GET  /v1/model     name, input size, training sets, figures from the model card
    GET  /             the page (one file, no external assets)
    GET  /model-card   MODEL_CARD.md, for the shipped default model
    GET  /docs         OpenAPI documentation (assets served locally)

The app only uses the Predictor's public face (``spec``, ``name``,
``predict_arrays``; for a calibrated model ``calibration`` and
``predict_arrays_with_intervals``, whose bounds the rows pass on as
``valence_low`` ... ``arousal_high``), so any backend behind ``Predictor`` serves
the same way.
Uploads stay in memory; the server fetches nothing a client names.
"""
from __future__ import annotations

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from .. import __version__
from ..data.images import ImageProblem
from ..inference import add_scaled
from ..inference.intervals import INTERVAL_COLUMNS
from ..inference.predictor import rating_fields
from ..scale import Scale
from .batching import MicroBatcher, Saturated
from .model_info import describe, is_default, model_card_path
from .settings import Settings
from .uploads import MemoryBudget, Refused, TooManyPixels, decode, read_uploads

PAGE_SECURITY = {
    # The page is one self-contained file: nothing may load from elsewhere.
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

PICTURE_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "a malformed request (bad ?scale, no pictures, unreadable multipart body)"},
    401: {"description": "the server was started with --token and the request has no matching bearer token"},
    408: {"description": "the upload arrived too slowly (the settings' timeout)"},
    413: {"description": "a picture, the request or the count of pictures is over its limit, or a picture's "
                         "pixel count is over the decompression-bomb guard"},
    415: {"description": "not multipart/form-data, or none of the uploads is a picture (decoded, not named)"},
    503: {"description": "the server is saturated; retry after the Retry-After header's seconds"},
    504: {"description": "scoring took longer than the settings' timeout"},
}

UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["files"],
            "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"},
                                     "description": "one or more pictures, in the order the answer keeps"}}}}},
    }
}


def _refusal(status: int, code: str, message: str, headers: dict[str, str] | None = None,
             **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "code": code, **extra}, status_code=status, headers=headers)


def create_app(predictor: Any, settings: Settings | None = None) -> FastAPI:
    """The service around a loaded ``Predictor``. Scoring starts with the app's lifespan."""
    settings = settings or Settings()
    size = predictor.spec.size
    calibrated = getattr(predictor, "calibration", None) is not None
    score = predictor.predict_arrays_with_intervals if calibrated else predictor.predict_arrays
    batcher = MicroBatcher(lambda arrays: score(arrays, settings.tta),
                           batch_size=settings.batch_size, wait_s=settings.batch_wait_ms / 1000,
                           max_pending=settings.max_queue)
    budget = MemoryBudget(settings.max_memory_bytes, settings.retry_after_s)
    decoders = ThreadPoolExecutor(settings.decode_workers or os.cpu_count() or 1, thread_name_prefix="picaffect-decode")
    in_progress = {"requests": 0}
    model_name = describe(predictor, tta=settings.tta)["name"]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        batcher.start()
        try:
            yield
        finally:
            batcher.stop()
            decoders.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="picaffect", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Valence and arousal of pictures on the 1..9 Self-Assessment Manikin scale "
                              "(5 is neutral). POST pictures to /v1/predict as multipart field `files`.")
    app.state.settings, app.state.batcher, app.state.predictor = settings, batcher, predictor

    def check_token(request: Request) -> None:
        if settings.token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(value.strip().encode(), settings.token.encode()):
            raise Refused(401, "unauthorized", "this server needs the header 'Authorization: Bearer <token>' "
                                               "given to picaffect serve --token", {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(Refused)
    async def refused(request: Request, e: Refused) -> JSONResponse:
        return _refusal(e.status, e.code, e.message, e.headers, **e.extra)

    @app.post("/v1/predict", openapi_extra=UPLOAD_SCHEMA, responses=PICTURE_RESPONSES,
              summary="valence and arousal of uploaded pictures")
    async def predict(request: Request, scale: str | None = None) -> dict[str, Any]:
        """Score one or more pictures, answered in upload order: ``name``, ``valence``, ``arousal`` (1..9),
        ``quadrant`` and ``error`` per picture; a calibrated model adds ``valence_low``, ``valence_high``,
        ``arousal_low``, ``arousal_high`` (its ``interval_level`` prediction intervals). A picture that cannot be read gets an ``error`` and the others are
        still scored; when none can, the answer is 415 with the same list. ``?scale=1,7`` adds
        ``valence_scaled`` and ``arousal_scaled`` on that scale."""
        check_token(request)
        target = None
        if scale is not None:
            try:
                target = Scale.parse(scale)
            except ValueError as e:
                raise Refused(400, "bad_scale", f"scale={scale}: {e}") from None
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.max_request_bytes:
            raise Refused(413, "request_too_large", f"the upload ({int(declared) / 1048576:.1f} MB) is over the limit "
                                                    f"of {settings.max_request_bytes / 1048576:g} MB per request")
        if in_progress["requests"] >= settings.max_requests:
            raise Refused(503, "busy", f"{settings.max_requests} requests are in progress, this server's limit; "
                                       f"try again shortly", {"Retry-After": str(settings.retry_after_s)})
        in_progress["requests"] += 1
        taken = 0
        try:
            try:
                uploads, taken = await asyncio.wait_for(read_uploads(
                    request.headers.get("content-type", ""), request.stream(),
                    max_file_bytes=settings.max_file_bytes, max_request_bytes=settings.max_request_bytes,
                    max_files=settings.max_files, budget=budget), settings.timeout_s)
            except asyncio.TimeoutError:
                raise Refused(408, "upload_timeout", f"the upload did not arrive within {settings.timeout_s:g} s") \
                    from None
            if not uploads:
                raise Refused(400, "no_pictures", "no pictures: send one or more files in the form field 'files' "
                                                  "(curl -F files=@photo.jpg ...)")
            try:
                batcher.reserve(len(uploads))
            except Saturated as e:
                raise Refused(503, "busy", f"{e}; try again shortly", {"Retry-After": str(settings.retry_after_s)}) \
                    from None
            try:
                return await _score(uploads, target)
            finally:
                batcher.release(len(uploads))
        finally:
            in_progress["requests"] -= 1
            budget.give(taken)

    async def _score(uploads, target: Scale | None) -> Any:
        loop = asyncio.get_running_loop()

        def prepare(upload):
            try:
                return decode(upload.data, size, settings.max_pixels)
            except ImageProblem as e:
                return str(e)
            except TooManyPixels as e:
                raise Refused(413, "too_many_pixels", f"{upload.name}: {e}") from None

        prepared = await asyncio.gather(*(loop.run_in_executor(decoders, prepare, u) for u in uploads))
        for upload in uploads:  # the bytes are no longer needed
            upload.data = bytearray()
        arrays = [p for p in prepared if not isinstance(p, str)]
        values: list = []
        if arrays:
            try:
                values = await batcher.score(arrays, settings.timeout_s)
            except asyncio.TimeoutError:
                raise Refused(504, "timeout", f"scoring took longer than {settings.timeout_s:g} s; the server is "
                                              f"overloaded or the pictures too many",
                              {"Retry-After": str(settings.retry_after_s)}) from None
        rows, it = [], iter(values)
        for upload, p in zip(uploads, prepared):
            if isinstance(p, str):
                row = {"name": upload.name, "valence": None, "arousal": None,
                       **dict.fromkeys(INTERVAL_COLUMNS if calibrated else ()), "quadrant": None, "error": p}
            else:
                row = {"name": upload.name, **rating_fields(next(it), calibrated), "error": None}
            rows.append(add_scaled(row, target) if target else row)
        answer = {"model": model_name, "scale": "1..9", "scaled": str(target) if target else None,
                  "interval_level": predictor.level if calibrated else None, "predictions": rows}
        if not arrays:
            return _refusal(415, "no_picture", "none of the uploads is a picture that can be read", **answer)
        return answer

    @app.get("/v1/health", summary="liveness, queue and limits")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": model_name, "queue": batcher.pending, "batches": batcher.batches,
                "scored": batcher.scored, "requests_in_progress": in_progress["requests"], "upload_bytes_held": budget.used,
                "limits": settings.public()}

    @app.get("/v1/model", summary="the model: name, input size, training sets, figures from its model card")
    async def model(request: Request) -> dict[str, Any]:
        check_token(request)
        return describe(predictor, tta=settings.tta)

    page = resources.files("picaffect.service").joinpath("index.html").read_text(encoding="utf-8")

    @app.get("/", include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers=PAGE_SECURITY)

    @app.get("/model-card", include_in_schema=False)
    async def model_card() -> Response:
        path = model_card_path()
        if not is_default(predictor.name):
            return PlainTextResponse(f"This server runs the model {model_name}, not the shipped default: it has no "
                                     f"model card here. GET /v1/model says what its checkpoint states.",
                                     status_code=404)
        if path is None:
            return PlainTextResponse("The model card is MODEL_CARD.md in picaffect's source repository.",
                                     status_code=404)
        return PlainTextResponse(path.read_text(encoding="utf-8"), headers={"X-Content-Type-Options": "nosniff"})

    _add_docs(app)
    return app


def _add_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from files installed with the package (swagger-ui-bundle): works offline."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:  # without the bundle, the JSON schema is still at /openapi.json
        swagger_ui_path = None
    if swagger_ui_path is not None:
        app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        if swagger_ui_path is None:
            return PlainTextResponse("Install swagger-ui-bundle (the 'serve' extra) for this page; the OpenAPI "
                                     "schema is at /openapi.json.", status_code=404)
        return get_swagger_ui_html(openapi_url="/openapi.json", title="picaffect API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="data:,")
