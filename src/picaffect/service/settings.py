"""The service's limits and knobs (``Settings``), and the options of ``picaffect serve`` (``ServeOptions``), from
which the command line is made.

Every default is chosen so that one machine stays safe under load: uploads are held
in memory only (never written to disk), so the byte limits bound the memory a
request and all requests together can take; the queue bound turns overload into a
quick ``503`` with ``Retry-After`` instead of an ever-growing backlog. The defaults
admit at least 200 concurrent single-picture requests without refusing any.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..core.errors import UsageError
from ..core.names import DEVICES

MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Limits, batching and access of ``picaffect serve``.

    Limits on one request (answered ``413``): ``max_file_bytes`` per picture,
    ``max_request_bytes`` for the whole upload, ``max_files`` pictures, and
    ``max_pixels`` per decoded picture (the decompression-bomb guard, checked from
    the header before any pixel is decoded; Pillow's own guard stays on too).

    Limits on the whole service (answered ``503`` with ``Retry-After``):
    ``max_requests`` requests in progress at once, ``max_queue`` pictures admitted
    and not yet answered, and ``max_memory_bytes`` of upload bytes held at once.

    ``timeout_s`` bounds receiving an upload (``408`` when the client is too slow)
    and, separately, scoring it (``504``).

    Limits on connections (``server.py``, for uvicorn, which by itself lets a
    connection wait forever for its request headers): ``header_timeout_s`` for the
    request line and headers, from the connection's first byte (or its opening);
    ``keep_alive_s`` idle between requests; the body must arrive within ``timeout_s``
    (plus a second's grace, so that the app's own ``408`` usually answers first);
    at most ``max_connections`` open at once (more are answered ``503`` and closed).
    On SIGTERM the server stops accepting, answers what it has, waits at most
    ``shutdown_timeout_s`` for that, and exits 0. ``batch_size`` and ``batch_wait_ms`` set
    the micro-batching: pictures of requests that arrive within ``batch_wait_ms`` of
    each other (or while the model is busy) are scored in one batch of at most
    ``batch_size``. ``decode_workers`` threads decode uploads (default: one per core).
    With ``token`` every ``/v1/predict`` and ``/v1/model`` request, and the pages that show the
    model's figures or the API (``/model-card``, ``/docs``, ``/openapi.json``), need
    ``Authorization: Bearer <token>``.
    """
    max_file_bytes: int = 16 * MB
    max_request_bytes: int = 64 * MB
    max_files: int = 64
    max_pixels: int = 40_000_000
    max_requests: int = 512
    max_queue: int = 2048
    max_memory_bytes: int = 4096 * MB  # 256 requests of the largest picture at once
    timeout_s: float = 60.0
    header_timeout_s: float = 10.0
    keep_alive_s: float = 30.0
    max_connections: int = 512
    shutdown_timeout_s: float = 30.0
    retry_after_s: int = 2
    batch_size: int = 32
    batch_wait_ms: float = 5.0
    decode_workers: int | None = None
    tta: bool = False
    token: str | None = None

    def __post_init__(self) -> None:
        for name in ("max_file_bytes", "max_request_bytes", "max_files", "max_pixels", "max_requests", "max_queue",
                     "max_memory_bytes", "retry_after_s", "batch_size", "max_connections"):
            if getattr(self, name) < 1:
                raise UsageError(f"service setting {name} must be at least 1, not {getattr(self, name)}")
        for name in ("timeout_s", "header_timeout_s", "keep_alive_s", "shutdown_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"service setting {name} must be a positive number of seconds, not {value}")
        if self.batch_wait_ms < 0:
            raise UsageError(f"service setting batch_wait_ms must not be negative, not {self.batch_wait_ms}")
        if self.decode_workers is not None and self.decode_workers < 1:
            raise UsageError(f"decode_workers must be at least 1, not {self.decode_workers}")
        if self.token is not None and not self.token.strip():
            raise UsageError("an empty token would let anyone in; give a real one or none")

    def public(self) -> dict[str, Any]:
        """The limits a client may see (``/v1/health``): everything but the token."""
        d = asdict(self)
        d.pop("token")
        d["auth"] = self.token is not None
        return d


# -- the options of `picaffect serve` ------------------------------------------------------------------------------
# One field each, with its type, default, help and check: the command line is made from them
# (``app.arguments.add_dataclass_options``), and ``ServeOptions.settings`` turns them into ``Settings``.

TOKEN_VARIABLE = "PICAFFECT_TOKEN"  # the token from the environment keeps it out of the process list


def at_least_one(name: str, value: int) -> None:
    if value < 1:
        raise UsageError(f"{name.replace('_', ' ')} must be at least 1, not {value}")


def positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{name.replace('_', ' ')} must be a positive number, not {value}")


def port_number(name: str, value: int) -> None:
    if not 0 < value < 65536:
        raise UsageError(f"--port {value}: give a port between 1 and 65535")


def serve_option(default: Any, help: str, *, check: Callable[[str, Any], None] | None = None,
                 choices: tuple[str, ...] | None = None) -> Any:
    """A ``ServeOptions`` field: its default, help text (``%(default)s`` shows the default), check and choices."""
    return field(default=default, metadata={"help": help, "check": check, **({"choices": choices} if choices else {})})


@dataclass(frozen=True)
class ServeOptions:
    """``picaffect serve``'s options, in the command line's units (megabytes, seconds); checked on construction.

    The limits' defaults are ``Settings``' own, so each default is written once.
    """
    model: str = serve_option("default", "default (shipped, fast), accurate (shipped, about 6x slower to score), a "
                                         "run folder, or a checkpoint or ONNX file")
    host: str = serve_option("127.0.0.1", "address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 "
                                          "opens it to others)")
    port: int = serve_option(8000, "port to listen on (default %(default)s)", check=port_number)
    workers: int | None = serve_option(None, "threads that decode uploaded pictures (default: one per core); the "
                                             "model runs in one more thread that scores shared batches, using all "
                                             "cores", check=at_least_one)
    token: str | None = serve_option(None, "require 'Authorization: Bearer TOKEN' on /v1/predict, /v1/model, "
                                           "/model-card, /docs and /openapi.json (or set PICAFFECT_TOKEN, which "
                                           "keeps it out of the process list)")
    device: str = serve_option("auto", "where the model runs (default %(default)s)", choices=DEVICES)
    tta: bool = serve_option(Settings.tta, "average with the mirror image (slower, a little better)")
    batch_size: int = serve_option(Settings.batch_size, "largest shared batch (default %(default)s)",
                                   check=at_least_one)
    max_files: int = serve_option(Settings.max_files, "pictures per request (default %(default)s)",
                                  check=at_least_one)
    max_file_mb: float = serve_option(Settings.max_file_bytes / MB, "size of one picture (default %(default)g)",
                                      check=positive)
    max_request_mb: float = serve_option(Settings.max_request_bytes / MB,
                                         "size of one request (default %(default)g)", check=positive)
    timeout: float = serve_option(Settings.timeout_s, "seconds to receive, and to score, a request (default "
                                                      "%(default)g)", check=positive)
    header_timeout: float = serve_option(Settings.header_timeout_s, "seconds for a request's headers to arrive once "
                                                                    "a connection opens or a request begins (default "
                                                                    "%(default)g)", check=positive)
    keep_alive: float = serve_option(Settings.keep_alive_s, "seconds an idle connection stays open between requests "
                                                            "(default %(default)g)", check=positive)
    max_connections: int = serve_option(Settings.max_connections, "connections open at once; more are answered 503 "
                                                                  "(default %(default)s)", check=at_least_one)
    shutdown_timeout: float = serve_option(Settings.shutdown_timeout_s, "on SIGTERM, seconds to finish the requests "
                                                                        "in progress before exiting 0 (default "
                                                                        "%(default)g)", check=positive)

    def __post_init__(self) -> None:
        for f in fields(self):
            value, test = getattr(self, f.name), f.metadata.get("check")
            if value is not None and test is not None:
                test(f.name, value)
            if value is not None and f.metadata.get("choices") and value not in f.metadata["choices"]:
                raise UsageError(f"{f.name} {value!r}: choose one of {', '.join(f.metadata['choices'])}")

    def settings(self, environ: Mapping[str, str] | None = None) -> Settings:
        """The service's ``Settings``; without ``token``, ``$PICAFFECT_TOKEN`` (from ``environ``, default the
        process's) gives it."""
        environ = os.environ if environ is None else environ
        return Settings(token=self.token or environ.get(TOKEN_VARIABLE) or None, tta=self.tta,
                        batch_size=self.batch_size, decode_workers=self.workers, max_files=self.max_files,
                        max_file_bytes=int(self.max_file_mb * MB), max_request_bytes=int(self.max_request_mb * MB),
                        timeout_s=self.timeout, header_timeout_s=self.header_timeout, keep_alive_s=self.keep_alive,
                        max_connections=self.max_connections, shutdown_timeout_s=self.shutdown_timeout)
