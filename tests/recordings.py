"""Recorded upstream bodies (tests/data) and the ways a network can cut them, for the codecs'
direct tests."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> bytes:
    """A recorded upstream body from tests/data (see tests/data/record.py)."""
    return (DATA / name).read_bytes()


def splits(data: bytes) -> Iterator[tuple[str, list[bytes]]]:
    """``data`` as the reads a network might deliver: whole (many events in one read), one byte
    a read (one event over many reads), cut in two at every byte boundary (mid-line, mid-UTF-8
    character), and a few seeded random cuttings."""
    yield "whole", [data]
    yield "bytewise", [data[i : i + 1] for i in range(len(data))]
    for i in range(1, len(data)):
        yield f"at {i}", [data[:i], data[i:]]
    rng = random.Random(len(data))
    for n in range(8):
        cuts = sorted(rng.sample(range(1, len(data)), min(len(data) - 1, 2 + n * 7)))
        yield f"random {n}", [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


async def reads(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class _ConnectionKey:
    ssl = False
    host, port = "up.test", 443


def connector_refused() -> aiohttp.ClientConnectorError:
    """aiohttp's error for a refused connection, as a transport raises it."""
    return aiohttp.ClientConnectorError(_ConnectionKey(), OSError(111, "Connection refused"))  # type: ignore[arg-type]
