"""What one running service holds, and the FastAPI dependencies that hand it to the routes.

``ServiceState`` is made once by ``create_app`` and kept on ``app.state``; the
routes (``routes.py``) are plain module-level functions that ask for what they
need through ``Depends``: the state, its settings, its predictor, and the token
check. Nothing is captured in closures, so a route can be read (and tested) on its own.
"""
from __future__ import annotations

import asyncio
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, Request

from ..core.runtime import trim_memory
from .batching import MicroBatcher
from .model_info import describe
from .schemas import checked_model_answer
from .settings import Settings
from .uploads import MemoryBudget, Refused

# Seconds without requests before freed memory is handed back to the system.
IDLE_TRIM_S = 1.0


@dataclass
class Counters:
    """Requests in progress, and those whose client left before its answer (never scored)."""
    requests: int = 0
    abandoned: int = 0


@dataclass
class ServiceState:
    """The predictor, the settings, the micro-batcher, the upload budget and the decoding threads."""
    predictor: Any
    settings: Settings
    batcher: MicroBatcher
    budget: MemoryBudget
    decoders: ThreadPoolExecutor
    model_info: dict[str, Any]  # GET /v1/model's answer, read from the model file once
    counters: Counters = field(default_factory=Counters)
    _trim: asyncio.TimerHandle | None = None

    @classmethod
    def create(cls, predictor: Any, settings: Settings) -> "ServiceState":
        tta = settings.tta
        batcher = MicroBatcher(lambda arrays: predictor.rows_for_arrays(arrays, tta),
                               batch_size=settings.batch_size, wait_s=settings.batch_wait_ms / 1000,
                               max_pending=settings.max_queue)
        return cls(predictor=predictor, settings=settings, batcher=batcher,
                   budget=MemoryBudget(settings.max_memory_bytes, settings.retry_after_s),
                   decoders=ThreadPoolExecutor(settings.decode_workers or os.cpu_count() or 1,
                                               thread_name_prefix="picaffect-decode"),
                   model_info=checked_model_answer(describe(predictor, tta=tta)))

    @property
    def model_name(self) -> str:
        return self.model_info["name"]

    def start(self) -> None:
        self.batcher.start()

    def stop(self) -> None:
        if self._trim is not None:
            self._trim.cancel()
        self.batcher.stop()
        self.decoders.shutdown(wait=False, cancel_futures=True)

    @property
    def idle(self) -> bool:
        return self.counters.requests == 0 and self.batcher.pending == 0

    def request_ended(self) -> None:
        """Called as each request ends: once the service has been idle for ``IDLE_TRIM_S``, the memory
        that the model's buffers, the uploads and their decoding took goes back to the system
        (``Predictor.release_memory``), so that a burst of load does not leave the server at its
        peak size for good."""
        if not self.idle:
            return
        if self._trim is not None:
            self._trim.cancel()
        loop = asyncio.get_running_loop()
        self._trim = loop.call_later(IDLE_TRIM_S, self._trim_if_idle, loop)

    def _trim_if_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        self._trim = None
        if self.idle:
            # A stand-in for a Predictor (the app needs only its public face) may hold nothing to give back.
            release = getattr(self.predictor, "release_memory", trim_memory)
            loop.run_in_executor(self.decoders, release)


def service_state(request: Request) -> ServiceState:
    return request.app.state.service


def settings_of(state: ServiceState = Depends(service_state)) -> Settings:
    return state.settings


def predictor_of(state: ServiceState = Depends(service_state)) -> Any:
    return state.predictor


def token_given(request: Request, settings: Settings = Depends(settings_of)) -> bool:
    """Whether the request may see everything: the server has no token, or the request carries it."""
    if settings.token is None:
        return True
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(value.strip().encode(), settings.token.encode())


def require_token(allowed: bool = Depends(token_given)) -> None:
    if not allowed:
        raise Refused(401, "unauthorized", "this server needs the header 'Authorization: Bearer <token>' given to "
                                           "picaffect serve --token", {"WWW-Authenticate": "Bearer"})
