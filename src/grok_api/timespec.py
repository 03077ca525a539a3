"""Durations and points in time as the CLI and the admin API accept them."""

from __future__ import annotations

import calendar
import contextlib
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


_ISO_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?Z?")


def moment(text: str, now: float, param: str) -> float:
    """A point in time, in epoch seconds: epoch seconds (``1767225600.5``), a UTC time as the
    request records show it (``2026-11-28T10:15:00.123Z``), a UTC date, or a duration back
    from now (``15m``)."""
    text = text.strip()
    with contextlib.suppress(ValueError):
        value = float(text)
        if 0 <= value < 1e11:  # not NaN, not infinite, before the year 5138
            return value
    if m := _ISO_TIME.fullmatch(text):
        clock = m.group(2) if m.group(2).count(":") == 2 else m.group(2) + ":00"
        with contextlib.suppress(ValueError):
            whole = calendar.timegm(time.strptime(f"{m.group(1)}T{clock}", "%Y-%m-%dT%H:%M:%S"))
            return whole + float(m.group(3) or 0)
    try:
        return float(since_epoch(text, now))
    except InvalidRequest:
        raise InvalidRequest(
            f"'{param}' must be a time (2026-11-28T10:15:00Z, or epoch seconds), a date (YYYY-MM-DD) "
            "or a duration back from now (15m).",
            param=param,
        ) from None
