"""Durations and points in time as the CLI and the admin API accept them."""

from __future__ import annotations

import calendar
import re
import time

from .errors import InvalidRequest

MAX_SECONDS = 1000 * 365 * 86400.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w``, ``1y`` → seconds (ValueError otherwise)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdwy])\s*", text.lower())
    if not m:
        raise ValueError(f"'{text}' is not a duration like 90s, 15m, 12h, 30d, 2w or 1y")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError("the duration must be positive")
    if seconds > MAX_SECONDS:
        raise ValueError("the duration must be at most 1000 years")
    return seconds


def since_epoch(text: str, now: float) -> int:
    """A start time: a duration back from now (``7d``) or a UTC date (``2026-11-01``)."""
    try:
        return int(now - parse_duration(text))
    except ValueError:
        pass
    try:
        return calendar.timegm(time.strptime(text.strip(), "%Y-%m-%d"))
    except ValueError:
        raise InvalidRequest(
            f"'{text}' is neither a duration (7d) nor a date (YYYY-MM-DD).", param="since"
        ) from None
