"""Running the app under uvicorn with limits on every stage of a connection.

uvicorn bounds only the idle time between two requests (``timeout_keep_alive``),
and even that timer stops at the first byte of the next request: a client that
opens a connection and sends nothing, or sends its headers a byte a second, or
its body a byte a minute, holds a socket (and a file handle) for as long as it
likes. ``GuardedH11Protocol`` is uvicorn's own HTTP/1.1 protocol with one deadline
per stage, following the h11 state of the client's side:

- request line and headers (``header_timeout_s``), counted from the connection's
  opening or from the first byte after an idle keep-alive: expired, the server
  answers ``408`` (when some of a request had arrived) and closes;
- idle between requests: uvicorn's keep-alive timer (``keep_alive_s``);
- body (``timeout_s`` plus a second, so that the app's own ``408`` answers first
  where it reads the body): expired, the connection is closed; the app sees a
  client that has gone and drops its work;
- while the app works on a complete request, no deadline: its own timeouts bound it.

Past ``max_connections`` open connections, a new one is answered ``503`` with
``Retry-After`` and closed at once. ``serve`` runs the server in the foreground and
returns normally after a SIGTERM (drained: in-progress requests answered, for at
most ``shutdown_timeout_s``), so that a service manager sees exit status 0.
"""
from __future__ import annotations

import asyncio
import signal
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .settings import Settings

# The app answers a body that arrives too slowly with 408 after ``timeout_s``; the connection's
# own deadline comes this much later, for clients of routes that never read their body.
BODY_GRACE_S = 1.0


def _raw_response(status: str, message: str, extra: str = "") -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for moments with no request to answer."""
    body = (message + "\n").encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n{extra}"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with deadlines for headers and body, and a cap on connections.

    A subclass per server (``guarded_protocol``) carries the settings as class attributes,
    since uvicorn builds one protocol object per connection from the class alone.
    """
    header_timeout_s: float = Settings.header_timeout_s
    body_timeout_s: float = Settings.timeout_s + BODY_GRACE_S
    max_connections: int = Settings.max_connections
    retry_after_s: int = Settings.retry_after_s

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._stage: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(_raw_response("503 Service Unavailable",
                                          f"this server holds {self.max_connections} connections, its limit; "
                                          f"try again shortly", f"retry-after: {self.retry_after_s}\r\n"))
            transport.close()
            return
        self._arm("headers", self.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Set the deadline of the stage the client's side of the connection is in."""
        if self.transport.is_closing():
            self._disarm()
            return
        theirs = self.conn.their_state
        if theirs is h11.IDLE:
            if self.timeout_keep_alive_task is not None:
                self._disarm()  # idle between requests: uvicorn's keep-alive timer runs
            else:
                self._arm("headers", self.header_timeout_s)  # a request has begun (or a body ended): headers due
        elif theirs is h11.SEND_BODY:
            self._arm("body", self.body_timeout_s)
        else:
            self._disarm()  # the whole request is in (or the connection is ending)

    def _arm(self, stage: str, seconds: float) -> None:
        if self._stage == stage:
            return  # the stage's deadline stands: a byte now and then does not extend it
        self._disarm()
        self._stage = stage
        self._deadline = self.loop.call_later(seconds, self._expired, stage)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline, self._stage = None, None

    def _expired(self, stage: str) -> None:
        self._deadline, self._stage = None, None
        if self.transport.is_closing():
            return
        started = bool(self.conn.trailing_data[0])
        if stage == "headers" and started:
            self.transport.write(_raw_response("408 Request Timeout", f"the request headers did not arrive within "
                                                                      f"{self.header_timeout_s:g} s"))
        self.logger.info("closing a connection from %s: its request %s did not arrive in time",
                         "%s:%d" % self.client if self.client else "a client", stage)
        self.transport.close()


def guarded_protocol(settings: Settings) -> type[GuardedH11Protocol]:
    """``GuardedH11Protocol`` with this server's limits."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {
        "header_timeout_s": settings.header_timeout_s, "body_timeout_s": settings.timeout_s + BODY_GRACE_S,
        "max_connections": settings.max_connections, "retry_after_s": settings.retry_after_s})


def make_server(app: Any, settings: Settings, host: str, port: int, log_level: str = "info") -> uvicorn.Server:
    """A uvicorn server for ``app`` with the connection limits of ``settings`` (``port`` 0: any free one)."""
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, http=guarded_protocol(settings),
                            timeout_keep_alive=settings.keep_alive_s,  # type: ignore[arg-type]
                            timeout_graceful_shutdown=settings.shutdown_timeout_s,  # type: ignore[arg-type]
                            lifespan="on")
    return uvicorn.Server(config)


def serve(app: Any, settings: Settings, host: str, port: int) -> bool:
    """Serve until stopped; True when a SIGTERM stopped it (after draining).

    uvicorn re-raises the signal that stopped it once it has shut down, which for
    SIGTERM would end the process with status 143, read by service managers as a
    failure. The handler it restores and re-raises into is this one, which only notes it.
    """
    stopped: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stopped.append(signum))
    try:
        make_server(app, settings, host, port).run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return bool(stopped)
