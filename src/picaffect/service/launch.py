"""How ``picaffect serve`` starts: its settings in the command line's units, the checks made before a model
is loaded, and what it says about who can reach it.

Here rather than in the command line so that a Python user starts the same service with the
same checks and warnings (``serve_model``); apart from ``server.py`` and ``app.py`` so that
reading the options and checking them costs no FastAPI or uvicorn import.
"""
from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable, Mapping

from ..core.errors import UsageError
from .settings import TOKEN_VARIABLE, ServeOptions, Settings, port_number

__all__ = ["TOKEN_VARIABLE", "ServeOptions", "check_port", "check_serve_extra", "serve_model", "settings_from_options",
           "start_lines"]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def check_serve_extra() -> None:
    """A ``UsageError`` naming the 'serve' extra when this install lacks FastAPI, uvicorn or multipart."""
    try:
        from . import app, server  # noqa: F401
    except ImportError as e:
        raise UsageError(f"picaffect serve needs the 'serve' extra ({e.name} is missing): "
                         f"pip install 'picaffect[serve]'") from None


def check_port(port: int) -> int:
    """``port`` when a TCP port can be it; a ``UsageError`` before the model is loaded otherwise."""
    port_number("port", port)
    return port


def settings_from_options(*, token: str | None = None, tta: bool = False, batch_size: int | None = None,
                          workers: int | None = None, max_files: int | None = None,
                          max_file_mb: float | None = None, max_request_mb: float | None = None,
                          timeout: float | None = None, header_timeout: float | None = None,
                          keep_alive: float | None = None, max_connections: int | None = None,
                          shutdown_timeout: float | None = None,
                          environ: Mapping[str, str] | None = None) -> Settings:
    """``Settings`` from sizes in megabytes and times in seconds, as ``picaffect serve`` takes them
    (``ServeOptions.settings``); a limit left at None keeps its default. Without ``token``,
    ``$PICAFFECT_TOKEN`` (from ``environ``, default the process's) gives it.
    """
    given = {"token": token, "tta": tta, "batch_size": batch_size, "workers": workers, "max_files": max_files,
             "max_file_mb": max_file_mb, "max_request_mb": max_request_mb, "timeout": timeout,
             "header_timeout": header_timeout, "keep_alive": keep_alive, "max_connections": max_connections,
             "shutdown_timeout": shutdown_timeout}
    return ServeOptions(**{k: v for k, v in given.items() if v is not None}).settings(environ)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``localhost``, 127.0.0.0/8, ``::1``)."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def start_lines(model: str, host: str, port: int, token: str | None) -> list[str]:
    """What the service says as it starts: where it listens, and who can reach it; a warning when other
    machines can and no token guards it."""
    shown = f"[{host}]" if ":" in host else host
    lines = [f"picaffect serve: model {model}, http://{shown}:{port}/ (page), /v1/predict, /docs"]
    if is_loopback(host):
        lines.append(f"picaffect serve: listening on loopback {host} only: other machines cannot reach it "
                     f"(--host 0.0.0.0 opens it, with --token)")
    elif token is None:
        lines.append(f"picaffect serve: warning: listening on {host} without --token: anyone who can reach this "
                     f"address can use the service")
    return lines


def serve_model(model: str = "default", settings: Settings | None = None, host: str = "127.0.0.1",
                port: int = 8000, *, device: str = "auto", say: Callable[[str], None] = _to_stderr) -> bool:
    """Load ``model`` and serve it until stopped; True when a SIGTERM stopped it after answering the requests
    in progress. ``say`` gets the ``start_lines`` once the model is loaded (default: standard error)."""
    settings = settings or Settings()
    check_serve_extra()
    check_port(port)
    from ..inference import Predictor
    from .app import create_app
    from .server import serve

    predictor = Predictor.from_pretrained(model, device=device, workers=settings.decode_workers)
    for line in start_lines(str(model), host, port, settings.token):
        say(line)
    return serve(create_app(predictor, settings), settings, host, port)
