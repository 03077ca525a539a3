"""A ``multipart/form-data`` body (RFC 7578), parsed strictly from its bytes.

The openai SDKs send file uploads (``images.edit``) this way. The body has already been read
within ``GROK_API_MAX_BODY_BYTES``; parsing is a few ``bytes.find`` passes over it (C speed),
at most :data:`MAX_PARTS` parts with at most :data:`MAX_HEAD_BYTES` of headers each. Anything
malformed — no boundary, a body that does not open with it, a part without headers or
``Content-Disposition: form-data; name=…``, a body cut off before its closing boundary — is a
400 (``invalid_multipart``) that says what is wrong; nothing here raises anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.policy import HTTP

from .errors import InvalidRequest

MAX_PARTS = 64
MAX_HEAD_BYTES = 8192
FORM_TYPE = "multipart/form-data"


def malformed(message: str) -> InvalidRequest:
    return InvalidRequest(f"The multipart/form-data body is malformed: {message}.", code="invalid_multipart")


@dataclass(slots=True, frozen=True)
class Part:
    """One part: a text field (``filename`` None) or a file."""

    name: str
    data: bytes
    filename: str | None = None
    content_type: str = ""

    def text(self) -> str:
        try:
            return self.data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest(
                f"The form field '{self.name}' is not UTF-8 text.", param=self.name
            ) from None


@dataclass(slots=True, frozen=True)
class Form:
    parts: list[Part]


def is_form(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == FORM_TYPE


def boundary_of(content_type: str) -> bytes:
    """The delimiter of a ``multipart/form-data`` content type: ``--`` and its boundary."""
    boundary = str(HTTP.header_factory("content-type", content_type).params.get("boundary", ""))
    if not 1 <= len(boundary) <= 70 or not boundary.isascii() or not boundary.isprintable():
        raise malformed("its Content-Type has no valid boundary parameter")
    return b"--" + boundary.encode("ascii")


def parse_form(raw: bytes, content_type: str) -> Form:
    """The parts of ``raw``, in order; a preamble before the first boundary and an epilogue after
    the last are ignored, as RFC 2046 says."""
    delimiter = boundary_of(content_type)
    if raw.startswith(delimiter):
        pos = len(delimiter)
    else:
        at = raw.find(b"\r\n" + delimiter)
        if at < 0:
            raise malformed("it does not contain the boundary its Content-Type names")
        pos = at + 2 + len(delimiter)
    separator = b"\r\n" + delimiter
    parts: list[Part] = []
    while raw[pos : pos + 2] != b"--":  # "--" after a delimiter closes the body
        eol = raw.find(b"\r\n", pos)
        if eol < 0 or raw[pos:eol].strip(b" \t"):
            raise malformed("it ends, or has stray bytes, after a boundary (truncated?)")
        end = raw.find(separator, eol + 2)
        if end < 0:
            raise malformed("it ends inside a part, before its closing boundary (truncated?)")
        if len(parts) == MAX_PARTS:
            raise malformed(f"it has more than {MAX_PARTS} parts")
        parts.append(_part(raw, eol + 2, end))
        pos = end + len(separator)
    return Form(parts)


def _part(raw: bytes, start: int, end: int) -> Part:
    split = (
        -1
        if raw.startswith(b"\r\n", start)
        else raw.find(b"\r\n\r\n", start, min(end, start + MAX_HEAD_BYTES))
    )
    if split < 0:
        raise malformed(f"a part has no headers, or no blank line after them within {MAX_HEAD_BYTES} bytes")
    headers = _headers(raw[start:split])
    disposition = HTTP.header_factory("content-disposition", headers.get("content-disposition", ""))
    name = disposition.params.get("name")
    if disposition.content_disposition != "form-data" or not name:
        raise malformed("a part has no 'Content-Disposition: form-data; name=…' header")
    filename = disposition.params.get("filename")
    return Part(name, raw[split + 4 : end], filename, headers.get("content-type", "").strip().lower())


def _headers(block: bytes) -> dict[str, str]:
    try:
        lines = block.decode("utf-8").split("\r\n")
    except UnicodeDecodeError:
        raise malformed("a part's headers are not UTF-8") from None
    out: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise malformed(f"a part has a header line that is not 'Name: value' ({line[:60]!r})")
        out[name.lower()] = value.strip()
    return out
