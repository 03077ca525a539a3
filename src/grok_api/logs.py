"""Structured logs: one JSON object a line (or plain text), configured once by the CLI.

Every line written while a request is being served carries its ``request_id``: the pipeline
sets :data:`REQUEST_ID` (a context variable, so concurrent requests never mix) and the
:class:`RequestIdFilter` on the handler copies it onto each record. The access log
(``GROK_API_ACCESS_LOG``) is the logger ``grok_api.access``: one line per request, its fields
as the record's extras.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar

import orjson

_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}

REQUEST_ID: ContextVar[str | None] = ContextVar("grok_api_request_id", default=None)
ACCESS_LOGGER = "grok_api.access"
MAX_REQUEST_ID = 128


def new_request_id() -> str:
    """A unique label, not a secret: Python's own generator (seeded from the OS, reseeded after a
    fork) costs a fraction of a system call per request."""
    return f"req_{random.getrandbits(96):024x}"


def request_id_from(given: str | None) -> str:
    """The client's ``x-request-id`` when it is sane (1–128 printable ASCII characters, no spaces
    at the ends), else a new one."""
    if given and len(given) <= MAX_REQUEST_ID and given.isascii() and given.isprintable():
        stripped = given.strip()
        if stripped == given:
            return given
    return new_request_id()


def with_request_id(headers: Mapping[str, str]) -> Mapping[str, str]:
    """``headers`` plus the current request's ``x-request-id`` (for calls made upstream)."""
    rid = REQUEST_ID.get()
    return headers if rid is None else {**headers, "x-request-id": rid}


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or "-"
        return True


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = vars(record)
        access = fields.get("access")
        if access is not None:  # an access line: its fields, flat (they include the request id)
            out.update(access)
        else:
            extra = fields.keys() - _STD
            if extra:
                out.update((k, v) for k, v in fields.items() if k in extra and not k.startswith("_"))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


class BatchedStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler that writes the lines of a burst in one write.

    Under load the access log is a line per request, and one write (a system call) per line
    cost a tenth of the gateway's throughput. Lines are collected and written together
    ``delay`` seconds after the first of them (timed on the event loop when there is one), at
    ``max_lines``, at once for warnings and errors, and on ``flush()`` (which logging calls at
    exit).
    """

    def __init__(self, stream: object, *, delay: float = 0.1, max_lines: int = 512) -> None:
        super().__init__(stream)
        self.delay = delay
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._lines.append(self.format(record))
        except Exception:
            self.handleError(record)
            return
        if record.levelno >= logging.WARNING or len(self._lines) >= self.max_lines:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()  # not on an event loop: nothing would come back to write it
                return
            self._timer = loop.call_later(self.delay, self.flush)

    def flush(self) -> None:
        self.acquire()
        try:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._lines:
                text = "\n".join(self._lines) + "\n"
                self._lines = []
                self.stream.write(text)
            if hasattr(self.stream, "flush"):
                self.stream.flush()
        finally:
            self.release()


def handler_for(fmt: str, stream: object = None, *, batched: bool = False) -> logging.Handler:
    """A handler in the given format (``json`` or ``text``) with the request-id filter on it;
    ``batched``: lines of a burst are written together (what ``serve`` uses)."""
    target = stream or sys.stderr
    handler = BatchedStreamHandler(target) if batched else logging.StreamHandler(target)  # type: ignore[arg-type]
    handler.setFormatter(JSONFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RequestIdFilter())
    return handler


def configure(level: str = "INFO", fmt: str = "json") -> None:
    root = logging.getLogger()
    root.handlers[:] = [handler_for(fmt, batched=True)]
    root.setLevel(level.upper())
    # Quiet at any level: SQLAlchemy's and aiosqlite's debug lines carry SQL parameters (key hashes).
    for name in ("alembic", "sqlalchemy", "aiosqlite"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
