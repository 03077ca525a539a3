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
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

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


class _SecondCache:
    """The text of the last few seconds asked for (a line's own time and its request's start
    are often different seconds), each made once."""

    __slots__ = ("convert", "fmt", "texts")

    def __init__(self, fmt: str, convert: Callable[[float], time.struct_time]) -> None:
        self.fmt, self.convert = fmt, convert
        self.texts: dict[int, str] = {}

    def text_of(self, second: int) -> str:
        text = self.texts.get(second)
        if text is None:
            if len(self.texts) >= 64:
                self.texts.clear()
            text = self.texts[second] = time.strftime(self.fmt, self.convert(second))
        return text


_utc_second = _SecondCache("%Y-%m-%dT%H:%M:%S", time.gmtime)
_local_second = _SecondCache("%Y-%m-%d %H:%M:%S", time.localtime)
_UTC_MS = tuple(f".{ms:03d}Z" for ms in range(1000))
_LOCAL_MS = tuple(f",{ms:03d}" for ms in range(1000))


def utc_stamp(t: float) -> str:
    """``t`` (epoch seconds) as ISO 8601 UTC with milliseconds; the second's text is cached,
    since a busy gateway stamps thousands of lines within one."""
    second = int(t)
    return _utc_second.text_of(second) + _UTC_MS[int((t - second) * 1000)]


def local_stamp(t: float) -> str:
    """``t`` the way :class:`logging.Formatter` writes ``%(asctime)s`` by default."""
    second = int(t)
    return _local_second.text_of(second) + _LOCAL_MS[int((t - second) * 1000)]


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": utc_stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = vars(record)
        access = fields.get("access")
        if access is not None:  # an access line: its fields, flat (they include the request id)
            out["msg"] = access_msg(access)
            out.update(access)
        else:
            extra = fields.keys() - _STD
            if extra:
                out.update((k, v) for k, v in fields.items() if k in extra and not k.startswith("_"))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()

    def format_access(self, created: float, fields: dict[str, Any], summary: Callable[[], str]) -> str:
        """What :meth:`format` makes of an access line, made without a ``LogRecord`` (and
        without copying ``fields``: the line's first keys are written before them). One
        f-string, one stamp, two ``orjson`` calls: it runs once a request."""
        msg = orjson.dumps(access_msg(fields)).decode()
        return (
            f'{{"ts":"{utc_stamp(created)}","level":"info","logger":"{ACCESS_LOGGER}","msg":{msg},'
            f"{orjson.dumps(fields, default=str).decode()[1:]}"
        )


def access_msg(fields: Mapping[str, Any]) -> str:
    """An access line's ``msg`` in JSON, where its fields say the rest: method, path, status."""
    return f"{fields['method']} {fields['path']} {fields['status']}"


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
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.add(line, urgent=record.levelno >= logging.WARNING)

    def add(self, line: str, *, urgent: bool = False) -> None:
        """Queues one formatted line (``urgent``: write it, and all before it, now)."""
        self._lines.append(line)
        if urgent or len(self._lines) >= self.max_lines:
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
            lines, self._lines = self._lines, []  # swapped first: a line added meanwhile stays
            if lines:
                self.stream.write("\n".join(lines) + "\n")
            if hasattr(self.stream, "flush"):
                self.stream.flush()
        finally:
            self.release()


def _text_access(created: float, fields: dict[str, Any], summary: Callable[[], str]) -> str:
    return f"{local_stamp(created)} INFO {ACCESS_LOGGER} [{fields['request_id']}]: {summary()}"


AccessWriter = Callable[[float, dict[str, Any], Callable[[], str]], str]


def _direct_writer(handler: logging.Handler) -> AccessWriter | None:
    """How ``handler`` can take an access line without a ``LogRecord``: a function of
    (created, fields, summary) making exactly the line its formatter would, or None when the
    handler is not one whose output is known (another class, filters, format or level)."""
    if type(handler) is not BatchedStreamHandler or handler.level > logging.INFO:
        return None
    if len(handler.filters) != 1 or type(handler.filters[0]) is not RequestIdFilter:
        return None
    formatter = handler.formatter
    if type(formatter) is JSONFormatter:
        return formatter.format_access
    if type(formatter) is logging.Formatter and formatter._fmt == TEXT_FORMAT and formatter.datefmt is None:
        return _text_access
    return None


class AccessLog:
    """Writes access lines through the ``grok_api.access`` logger's handlers.

    One line per request is a tenth of a fast request's cost when made the ordinary way
    (``makeRecord``, the record's field dict, ``strftime``). When every handler the line would
    reach is one whose output is known (``serve``'s own), the line is formatted directly, the
    same text byte for byte; otherwise (another handler, a filter, logging configured by the
    embedding application) it goes through ``logging`` as any line.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def _direct(self) -> list[tuple[BatchedStreamHandler, AccessWriter]] | None:
        logger: logging.Logger | None = self.logger
        if self.logger.disabled or self.logger.filters or logging.root.manager.disable >= logging.INFO:
            return None
        out: list[tuple[BatchedStreamHandler, AccessWriter]] = []
        while logger is not None:
            handlers = logger.handlers
            if handlers:
                for handler in handlers:
                    writer = _direct_writer(handler)
                    if writer is None:
                        return None
                    out.append((handler, writer))  # type: ignore[arg-type]  # checked: a BatchedStreamHandler
            logger = logger.parent if logger.propagate else None
        return out

    def write(self, created: float, fields: dict[str, Any], summary: Callable[[], str]) -> None:
        """One access line: ``fields`` flat in JSON (they include ``request_id``), ``summary()``
        as the text format's message (called only when a line is written as text)."""
        if not self.logger.isEnabledFor(logging.INFO):
            return
        direct = self._direct()
        if direct is not None:
            for handler, writer in direct:
                handler.add(writer(created, fields, summary))
            return
        msg = summary()
        line = self.logger.makeRecord(
            ACCESS_LOGGER,
            logging.INFO,
            "",
            0,
            msg,
            (),
            None,
            extra={"access": fields, "request_id": fields["request_id"]},
        )
        self.logger.handle(line)


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
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # uvicorn's own access line stays off (the gateway writes its own, GROK_API_ACCESS_LOG). A
    # worker of `serve --workers N` configures logging after uvicorn did: letting this logger
    # propagate there made every worker log every request.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
