"""Reading a multipart upload into memory under limits.

The body is parsed as it streams in, so an upload over a limit is refused as soon
as it crosses it, not after it has been received whole; parts are held in memory
(nothing is written to disk, unlike the usual form parsers that spool large files
to temporary files). A body must end with its closing boundary: one that stops
short (a client cut off, a Content-Length shorter than the body) is a broken
request, never a set of pictures scored as if complete. Pictures are recognised
later by decoding them (``data.images.decode_bytes``), never by name or declared type.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

# The form field of the pictures; ``file`` is accepted too, as people often write it.
FIELDS = ("files", "file")


class Refused(Exception):
    """A request the service will not handle: an HTTP status, a short code, and words for people."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 extra: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extra = extra or {}


@dataclass
class Upload:
    name: str
    data: bytearray = field(default_factory=bytearray)


class MemoryBudget:
    """Upload bytes held by all requests together; past ``limit``, new bytes are refused (503)."""

    def __init__(self, limit: int, retry_after: int) -> None:
        self.limit, self.retry_after, self.used = limit, retry_after, 0

    def take(self, n: int) -> None:
        if self.used + n > self.limit:
            raise Refused(503, "busy", f"the server holds {self.used // 1048576} MB of uploads, its limit; "
                                       f"try again shortly", {"Retry-After": str(self.retry_after)})
        self.used += n

    def give(self, n: int) -> None:
        self.used -= n


def _disposition(value: bytes) -> tuple[str | None, str | None]:
    from python_multipart.multipart import parse_options_header

    _, params = parse_options_header(value)
    name, filename = params.get(b"name"), params.get(b"filename")
    return (name.decode("utf-8", "replace") if name is not None else None,
            filename.decode("utf-8", "replace") if filename is not None else None)


async def read_uploads(content_type: str, stream: AsyncIterator[bytes], *, max_file_bytes: int,
                       max_request_bytes: int, max_files: int, budget: MemoryBudget) -> tuple[list[Upload], int]:
    """The pictures of a ``multipart/form-data`` body (fields ``files`` or ``file``), in order.

    Returns the uploads and the bytes taken from ``budget`` (the caller gives them
    back). Raises ``Refused`` with 413 (a file, the request or the count over its
    limit), 415 (not multipart) or 400 (a malformed or incomplete body).
    """
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, params = parse_options_header(content_type or "")
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise Refused(415, "not_multipart", "send the pictures as multipart/form-data in the form field 'files' "
                                            "(curl -F files=@photo.jpg ...)")
    uploads: list[Upload] = []
    state = {"field": b"", "value": b"", "headers": {}, "current": None, "total": 0, "taken": 0, "ended": False}

    def on_part_begin() -> None:
        state["headers"], state["current"] = {}, None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["field"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def on_headers_finished() -> None:
        name, filename = _disposition(state["headers"].get(b"content-disposition", b""))
        if name in FIELDS:
            if len(uploads) >= max_files:
                raise Refused(413, "too_many_files", f"more than {max_files} pictures in one request; send them in "
                                                     f"several requests")
            uploads.append(Upload(filename or f"picture {len(uploads) + 1}"))
            state["current"] = uploads[-1]

    def on_part_data(data: bytes, start: int, end: int) -> None:
        current: Upload | None = state["current"]
        if current is None:  # another form field: read past it, held nowhere
            return
        if len(current.data) + (end - start) > max_file_bytes:
            raise Refused(413, "file_too_large", f"{current.name} is over the limit of {_mb(max_file_bytes)} per "
                                                 f"picture")
        budget.take(end - start)
        state["taken"] += end - start
        current.data += data[start:end]

    def on_end() -> None:  # the closing boundary was read
        state["ended"] = True

    parser = MultipartParser(boundary, {"on_part_begin": on_part_begin, "on_header_field": on_header_field,
                                        "on_header_value": on_header_value, "on_header_end": on_header_end,
                                        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
                                        "on_end": on_end})
    try:
        async for chunk in stream:
            state["total"] += len(chunk)
            if state["total"] > max_request_bytes:
                raise Refused(413, "request_too_large", f"the upload is over the limit of {_mb(max_request_bytes)} "
                                                        f"per request; send the pictures in several requests")
            parser.write(chunk)
        parser.finalize()
        if not state["ended"]:
            raise Refused(400, "broken_request", "the multipart body ends before its closing boundary "
                                                 "(cut off, or a Content-Length shorter than the body)")
    except BaseException as e:  # a limit, a parse error, a client gone, a timeout: the bytes are let go
        budget.give(state["taken"])
        if isinstance(e, FormParserError):
            raise Refused(400, "bad_multipart", f"the multipart body could not be read: {e}") from None
        raise
    return uploads, state["taken"]


def _mb(n: int) -> str:
    return f"{n / 1048576:g} MB"
