"""Gives memory back to the operating system after a burst of traffic.

CPython frees objects into its own and the C library's allocators, which keep the pages: after
a burst of a thousand concurrent streams the process stays at its peak size although nothing
is in use. When the gateway has been idle (no request in flight) after serving some, this
collects garbage and asks glibc to return free pages (``malloc_trim``). It does nothing where
glibc is not the allocator, and costs a few milliseconds only when there is nothing else to do.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


class IdleTrimmer:
    def __init__(self) -> None:
        self.in_flight = 0
        self.served = 0
        self._trim = _malloc_trim()

    def started(self) -> None:
        self.in_flight += 1

    def finished(self) -> None:
        self.in_flight -= 1
        self.served += 1

    def trim_if_idle(self, min_served: int = 100) -> bool:
        if self.in_flight or self.served < min_served:
            return False
        self.served = 0
        gc.collect()
        if self._trim is not None:
            self._trim(0)
        return True

    async def run(self, interval: float = 5.0) -> None:
        while True:
            await asyncio.sleep(interval)
            self.trim_if_idle()
