"""Cheap bounds on a JSON text, measured on its bytes before (or instead of) walking it.

Parsing millions of tiny values, or walking them in Python, would hold the event loop (and
every other request) for seconds. These functions use only C-speed passes over the bytes
(``count``, ``replace``, ``split``, ``translate``), each bounded by the body size limit.
"""

from __future__ import annotations

import asyncio

_BRACKETS = b"[]{}"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _BRACKETS)
_SQUARE = bytes.maketrans(b"{}", b"[]")  # in valid JSON the kind of bracket says nothing of depth


def _count(raw: bytes) -> int:
    return raw.count(b",") + raw.count(b"[") + raw.count(b"{")


def _unescaped(raw: bytes) -> bytes:
    return raw.replace(b"\\\\", b"").replace(b'\\"', b"")  # escaped quotes end no string


def _outside_strings(plain: bytes) -> bytes:
    return b"".join(plain.split(b'"')[::2])


_SLICE = 1 << 20


async def _count_until(raw: bytes, needles: tuple[bytes, ...], limit: int) -> int:
    """Occurrences of ``needles`` in ``raw``, counted a slice at a time with the event loop let
    through in between, and stopping once past ``limit``: no pass holds the loop for long."""
    total = 0
    for start in range(0, len(raw), _SLICE):
        end = start + _SLICE
        total += sum(raw.count(n, start, end) for n in needles)
        if total > limit:
            break
        await asyncio.sleep(0)
    return total


async def too_many_values_async(raw: bytes, limit: int) -> bool:
    """:func:`too_many_values` for large bodies: the same answer, the loop let through between
    slices, and a body far past the bound refused after its first slices."""
    if len(raw) <= _SLICE:
        return too_many_values(raw, limit)
    if await _count_until(raw, (b",", b"[", b"{"), limit) <= limit:
        return False
    quotes = await _count_until(raw, (b'"',), 2 * limit)
    if not quotes:
        return True
    if quotes > 2 * limit and quotes - raw.count(b'\\"') > 2 * limit:
        return True
    await asyncio.sleep(0)
    outside = _outside_strings(_unescaped(raw) if b"\\" in raw else raw)
    await asyncio.sleep(0)
    return await _count_until(outside, (b",", b"[", b"{"), limit) > limit


def too_many_values(raw: bytes, limit: int) -> bool:
    """Whether a JSON text holds more than about ``limit`` values: commas and opening brackets
    outside strings, and the strings themselves. The strings are split out only when there are
    at most ``limit`` of them, so the cost stays bounded."""
    if _count(raw) <= limit:
        return False
    quotes = raw.count(b'"')
    if not quotes:
        return True
    if quotes > 2 * limit and quotes - raw.count(b'\\"') > 2 * limit:
        return True
    plain = _unescaped(raw) if b"\\" in raw else raw
    return _count(_outside_strings(plain)) > limit


def deeper_than(raw: bytes, limit: int) -> bool:
    """Whether a (valid) JSON text nests arrays and objects more than ``limit`` levels deep:
    its bracket skeleton loses exactly one level per pass of removing empty pairs (``replace``
    does not rescan what it produced)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    skeleton = _outside_strings(_unescaped(raw)).translate(_SQUARE, _NOT_BRACKETS)
    for _ in range(limit):
        if not skeleton:
            return False
        skeleton = skeleton.replace(b"[]", b"")
    return bool(skeleton)
