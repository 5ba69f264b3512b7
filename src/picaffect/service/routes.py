"""The routes of ``picaffect serve``, as module-level functions on one router.

    POST /v1/predict   multipart field ``files`` (repeated; ``file`` also works), ``?scale=1,7``
    GET  /v1/health    liveness; with the token (or on a server without one) also queue, counters, limits
    GET  /v1/model     name, input size, and what the loaded file records: config, data, version, commit,
                       evaluation (leave one source out first, then the validation rows), calibration
    GET  /             the page (one file, no external assets)
    GET  /model-card   MODEL_CARD.md, for the shipped models
    GET  /docs         OpenAPI documentation (Swagger UI's files served locally), /openapi.json its schema

With ``serve --token``, every route that shows the model's figures or the API's
description (``/v1/predict``, ``/v1/model``, ``/model-card``, ``/docs``, ``/openapi.json``)
needs the token; ``/v1/health`` says only that the service is up without it, and the page
asks for the token before it scores. Answers are typed (``schemas.py``), so the OpenAPI
document describes every field; every refusal, 404 and 405 included, is ``{"error", "code"}``.

Each route asks for what it needs (``state.py``: the service state, its settings and
predictor, the token check) through FastAPI dependencies. Only the Predictor's
public face is used (``spec``, ``name``, ``rows_for_arrays``), so any backend behind
``Predictor`` serves the same way, and every key of its rows reaches the answer.
"""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from contextlib import suppress
from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.requests import ClientDisconnect

from ..data.images import ImageProblem, TooManyPixels, decode_bytes
from ..inference import add_scaled, failed_row
from ..core.scale import Scale
from .batching import Saturated
from .model_info import is_shipped, model_card_path
from .schemas import ErrorAnswer, HealthAnswer, ModelAnswer, PredictAnswer
from .state import ServiceState, require_token, service_state, token_given
from .uploads import Refused, Upload, read_uploads

PAGE_SECURITY = {
    # The page is one self-contained file: nothing may load from elsewhere.
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "img-src 'self' blob: data:; connect-src 'self'; form-action 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

PICTURE_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": "a malformed request (bad ?scale, no pictures, a multipart body that is unreadable or ends "
                         "before its closing boundary)"},
    401: {"description": "the server was started with --token and the request has no matching bearer token"},
    408: {"description": "the upload arrived too slowly (the settings' timeout)"},
    413: {"description": "a picture, the request or the count of pictures is over its limit, or a picture's "
                         "pixel count is over the decompression-bomb guard"},
    415: {"description": "not multipart/form-data, or none of the uploads is a picture (decoded, not named) in an "
                         "accepted format (JPEG, PNG, WebP, GIF, BMP, TIFF)"},
    503: {"description": "the server is saturated; retry after the Retry-After header's seconds"},
    504: {"description": "scoring took longer than the settings' timeout"},
}
for _answer in PICTURE_RESPONSES.values():
    _answer["model"] = ErrorAnswer
TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {401: PICTURE_RESPONSES[401]}

UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["files"],
            "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"},
                                     "description": "one or more pictures, in the order the answer keeps"}}}}},
    }
}

# nginx's "client closed request": logged, never seen by the client, who has gone.
CLIENT_GONE = 499

router = APIRouter()


def refusal(status: int, code: str, message: str, headers: dict[str, str] | None = None,
            **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, "code": code, **extra}, status_code=status, headers=headers)


class ClientGone(Exception):
    """The client closed its connection before the answer was ready."""


@router.post("/v1/predict", openapi_extra=UPLOAD_SCHEMA, responses=PICTURE_RESPONSES, response_model=PredictAnswer,
             response_model_exclude_unset=True, summary="valence and arousal of uploaded pictures",
             dependencies=[Depends(require_token)])
async def predict(request: Request, scale: str | None = None,
                  state: ServiceState = Depends(service_state)) -> Any:
    """Score one or more pictures, answered in upload order: ``name``, ``valence``, ``arousal`` (1..9),
    ``quadrant`` and ``error`` per picture. A picture that cannot be read gets an ``error`` and the others are
    still scored; when none can, the answer is 415 with the same list. ``?scale=1,7`` adds
    ``valence_scaled`` and ``arousal_scaled`` on that scale."""
    settings = state.settings
    target = _target_scale(scale)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > settings.max_request_bytes:
        raise Refused(413, "request_too_large", f"the upload ({int(declared) / 1048576:.1f} MB) is over the limit "
                                                f"of {settings.max_request_bytes / 1048576:g} MB per request")
    if state.counters.requests >= settings.max_requests:
        raise Refused(503, "busy", f"{settings.max_requests} requests are in progress, this server's limit; "
                                   f"try again shortly", {"Retry-After": str(settings.retry_after_s)})
    state.counters.requests += 1
    taken = 0
    try:
        try:
            uploads, taken = await asyncio.wait_for(read_uploads(
                request.headers.get("content-type", ""), request.stream(),
                max_file_bytes=settings.max_file_bytes, max_request_bytes=settings.max_request_bytes,
                max_files=settings.max_files, budget=state.budget), settings.timeout_s)
        except asyncio.TimeoutError:
            raise Refused(408, "upload_timeout", f"the upload did not arrive within {settings.timeout_s:g} s") \
                from None
        except ClientDisconnect:
            state.counters.abandoned += 1
            return Response(status_code=CLIENT_GONE)
        if not uploads:
            raise Refused(400, "no_pictures", "no pictures: send one or more files in the form field 'files' "
                                              "(curl -F files=@photo.jpg ...)")
        try:
            state.batcher.reserve(len(uploads))
        except Saturated as e:
            raise Refused(503, "busy", f"{e}; try again shortly", {"Retry-After": str(settings.retry_after_s)}) \
                from None
        try:
            return await _unless_client_leaves(request, _score(state, uploads, target))
        except ClientGone:
            state.counters.abandoned += 1
            return Response(status_code=CLIENT_GONE)
        finally:
            state.batcher.release(len(uploads))
    finally:
        state.counters.requests -= 1
        state.budget.give(taken)
        state.request_ended()


def _target_scale(scale: str | None) -> Scale | None:
    if scale is None:
        return None
    try:
        return Scale.parse(scale)
    except ValueError as e:
        raise Refused(400, "bad_scale", f"scale={scale}: {e}") from None


async def _unless_client_leaves(request: Request, work: Coroutine[Any, Any, Any]) -> Any:
    """Run ``work`` (decoding and scoring), dropped as soon as the client goes away: nobody would
    read its answer, and its place in the batches belongs to clients still waiting.

    Once the body has been read, the next ASGI ``receive`` returns only when the client
    disconnects (or the answer has been sent), so waiting on it costs nothing.
    """
    job = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_client_gone(request))
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not job.done():
            job.cancel()
            with suppress(BaseException):
                await job  # its pictures leave the batcher's queue before anything else happens
        watch.cancel()
    if job.cancelled():
        raise ClientGone
    return job.result()


async def _client_gone(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _score(state: ServiceState, uploads: list[Upload], target: Scale | None) -> Any:
    settings = state.settings
    loop = asyncio.get_running_loop()
    size = state.predictor.spec.size

    def prepare(upload: Upload):
        try:
            return decode_bytes(upload.data, size, settings.max_pixels)
        except TooManyPixels as e:
            raise Refused(413, "too_many_pixels", f"{upload.name}: {e}") from None
        except ImageProblem as e:
            return str(e)

    prepared = await asyncio.gather(*(loop.run_in_executor(state.decoders, prepare, u) for u in uploads))
    for upload in uploads:  # the bytes are no longer needed
        upload.data = bytearray()
    arrays = [p for p in prepared if not isinstance(p, str)]
    scored: list[dict[str, Any]] = []
    if arrays:
        try:
            scored = await state.batcher.score(arrays, settings.timeout_s)
        except asyncio.TimeoutError:
            raise Refused(504, "timeout", f"scoring took longer than {settings.timeout_s:g} s; the server is "
                                          f"overloaded or the pictures too many",
                          {"Retry-After": str(settings.retry_after_s)}) from None
    calibrated = getattr(state.predictor, "calibration", None) is not None  # rows carry interval bounds
    rows, it = [], iter(scored)
    for upload, p in zip(uploads, prepared):
        row = {"name": upload.name, **(failed_row(p, calibrated) if isinstance(p, str) else next(it))}
        rows.append(add_scaled(row, target) if target else row)
    answer = {"model": state.model_name, "scale": "1..9", "scaled": str(target) if target else None,
              "interval_level": state.predictor.level if calibrated else None, "predictions": rows}
    if not arrays:
        return refusal(415, "no_picture", "none of the uploads is a picture that can be read", **answer)
    return answer


@router.get("/v1/health", summary="liveness; with the token also queue, counters and limits",
            response_model=HealthAnswer, response_model_exclude_unset=True)
async def health(state: ServiceState = Depends(service_state),
                 full: bool = Depends(token_given)) -> dict[str, Any]:
    """``{"status": "ok"}`` for anyone (a load balancer's check); the model, the counters and the
    limits only for a request with the token, or on a server without one."""
    if not full:
        return {"status": "ok"}
    return {"status": "ok", "model": state.model_name, "queue": state.batcher.pending,
            "batches": state.batcher.batches, "scored": state.batcher.scored,
            "requests_in_progress": state.counters.requests, "abandoned": state.counters.abandoned,
            "upload_bytes_held": state.budget.used, "limits": state.settings.public()}


@router.get("/v1/model", summary="the model as its file describes itself: provenance, evaluation, calibration",
            response_model=ModelAnswer, responses=TOKEN_RESPONSES, dependencies=[Depends(require_token)])
async def model(state: ServiceState = Depends(service_state)) -> dict[str, Any]:
    """Name, input and scale; then what the loaded file records: the configuration it was made from, the
    dataset manifest's SHA-256, the picaffect version and commit that made it, its evaluation (leave one
    source out first: what a new set of pictures should expect; then the validation rows) and calibration.
    ``missing`` names what a file made before these were recorded lacks."""
    return state.model_info


@cache
def _page() -> str:
    return resources.files("picaffect.service").joinpath("index.html").read_text(encoding="utf-8")


@router.get("/", include_in_schema=False)
async def index() -> HTMLResponse:
    return HTMLResponse(_page(), headers=PAGE_SECURITY)


@router.get("/model-card", include_in_schema=False, dependencies=[Depends(require_token)])
async def model_card(state: ServiceState = Depends(service_state)) -> Response:
    if not is_shipped(str(state.predictor.name)):
        return PlainTextResponse(f"This server runs the model {state.model_name}, not a shipped one: it has "
                                 f"no model card here. GET /v1/model says what its file states.",
                                 status_code=404)
    path = model_card_path()
    if path is None:
        return PlainTextResponse("The model card is MODEL_CARD.md in picaffect's source repository.",
                                 status_code=404)
    return PlainTextResponse(path.read_text(encoding="utf-8"), headers={"X-Content-Type-Options": "nosniff"})


def swagger_ui_folder() -> str | None:
    """Where swagger-ui-bundle (the 'serve' extra) keeps Swagger UI's files; None without it."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return None
    return str(swagger_ui_path)


@router.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
async def openapi(request: Request) -> JSONResponse:
    return JSONResponse(request.app.openapi())


@router.get("/docs", include_in_schema=False, dependencies=[Depends(require_token)])
async def docs() -> Response:
    from fastapi.openapi.docs import get_swagger_ui_html

    if swagger_ui_folder() is None:  # the JSON schema is still at /openapi.json
        return PlainTextResponse("Install swagger-ui-bundle (the 'serve' extra) for this page; the OpenAPI "
                                 "schema is at /openapi.json.", status_code=404)
    return get_swagger_ui_html(openapi_url="/openapi.json", title="picaffect API",
                               swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                               swagger_css_url="/docs-assets/swagger-ui.css", swagger_favicon_url="data:,")
