"""Made-up values of the string ``format``s a JSON Schema names, for ``schema_fake``: each from a
number, a word and a seed (all derived from the prompt), so the same prompt gives the same value."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import date, timedelta


def _date(n: int) -> str:
    return (date(2026, 1, 1) + timedelta(days=n % 365)).isoformat()


def _time(n: int) -> str:
    return f"{n // 7 % 24:02d}:{n // 11 % 60:02d}:{n // 13 % 60:02d}Z"


def _uuid(seed: str) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(seed.encode()).digest()[:16], version=4))


_MADE: dict[str, Callable[[int, str, str], str]] = {
    "date": lambda n, w, s: _date(n),
    "date-time": lambda n, w, s: f"{_date(n)}T{_time(n)}",
    "time": lambda n, w, s: _time(n),
    "duration": lambda n, w, s: f"P{n % 28 + 1}D",
    "email": lambda n, w, s: f"{w}@example.com",
    "uri": lambda n, w, s: f"https://example.com/{w}",
    "uuid": lambda n, w, s: _uuid(s),
    "hostname": lambda n, w, s: f"{w}.example.com",
    "ipv4": lambda n, w, s: f"192.0.2.{n % 254 + 1}",
    "ipv6": lambda n, w, s: f"2001:db8::{n % 65535 + 1:x}",
}
_SAME = {  # formats whose values the ones above also are
    "idn-email": "email",
    "iri": "uri",
    "uri-reference": "uri",
    "iri-reference": "uri",
    "url": "uri",
    "idn-hostname": "hostname",
}
FORMATS = _MADE | {name: _MADE[like] for name, like in _SAME.items()}
