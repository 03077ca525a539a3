"""What the pipeline checks of a request beyond its surface's schema: how many values its body
holds (before parsing), its identifiers, and how long an answer its token budget allows."""

from __future__ import annotations

from typing import Any

from .errors import InvalidRequest, QuotaExceeded
from .jsonbounds import too_many_values_async


async def check_values(raw: bytes, limit: int) -> None:
    """400 for a body of more than ``limit`` values, before it is parsed: parsing (and walking)
    millions of tiny values would hold the event loop, and every other request, for seconds."""
    if limit and await too_many_values_async(raw, limit):
        raise InvalidRequest(f"The request body holds more than {limit} JSON values.", code="too_many_values")


def check_identifier(value: str, param: str, longest: int = 256) -> None:
    """Identifiers (model ids) go to the store and to logs: no control characters (PostgreSQL
    cannot even hold a NUL), no more than the store's column holds."""
    if len(value) > longest or not value.isprintable():
        raise InvalidRequest(
            f"'{param}' must be printable text of at most {longest} characters.",
            param=param,
            code="invalid_value",
        )


ANSWER_CAPS = {"chat": ("max_completion_tokens", "max_tokens"), "responses": ("max_output_tokens",)}


def cap_answer(body: dict[str, Any], cap: int, kind: str = "chat") -> None:
    """Caps the answer of a request under a token budget to what its reservation holds (the
    client's ``max_tokens``, or the default reserve, and never past what the budget has left);
    429 when what is left does not cover even the prompt. ``kind`` is the upstream call's
    shape: chat completions, or a Responses API body (``max_output_tokens``)."""
    if cap < 1:
        raise QuotaExceeded("What is left of this key's token budget does not cover this prompt.")
    fields = ANSWER_CAPS[kind]
    names = [n for n in fields if isinstance(body.get(n), int)]
    for name in names or [fields[-1]]:
        body[name] = min(body.get(name) or cap, cap)
