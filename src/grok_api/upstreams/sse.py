"""What the decoders of an upstream's SSE stream share: fed the complete lines of one network
read (``http.read_lines``), they give back that read's Events.

A line that cannot be read stops the stream: ``error`` is set, and the Events decoded before
it are still given back, so that the caller passes them on and then raises. ``done`` is set
once the stream said it is over; nothing after that is read.
"""

from __future__ import annotations

from ..errors import GatewayError, UpstreamError
from .base import Event


class SSEDecoder:
    """A decoder's ``feed``: subclasses decode the lines in ``_feed``, appending to ``out``."""

    __slots__ = ("done", "error", "upstream")

    what = "a chunk"  # names one event of the stream in the message for one of the wrong shape

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.done = False
        self.error: GatewayError | None = None

    def feed(self, lines: list[bytes]) -> list[Event]:
        """The Events of complete lines; a bad line sets ``error`` after the Events before it."""
        out: list[Event] = []
        try:
            self._feed(lines, out)
        except GatewayError as exc:
            self.error = exc
        except (AttributeError, TypeError, KeyError, IndexError, ValueError):
            self.error = UpstreamError(f"{self.upstream} sent {self.what} of an unexpected shape")
        return out

    def _feed(self, lines: list[bytes], out: list[Event]) -> None:
        raise NotImplementedError

    def malformed(self, payload: bytes) -> UpstreamError:
        """The error for a ``data:`` line that is not JSON (quoted, at most 80 bytes of it)."""
        return UpstreamError(f"{self.upstream} sent a malformed stream line: {payload[:80]!r}")
