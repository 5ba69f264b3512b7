"""The service's limits and knobs, in one dataclass that the CLI and tests fill in.

Every default is chosen so that one machine stays safe under load: uploads are held
in memory only (never written to disk), so the byte limits bound the memory a
request and all requests together can take; the queue bound turns overload into a
quick ``503`` with ``Retry-After`` instead of an ever-growing backlog. The defaults
admit at least 200 concurrent single-picture requests without refusing any.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..core.errors import UsageError

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
    With ``token`` every ``/v1/predict`` and ``/v1/model`` request needs
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
