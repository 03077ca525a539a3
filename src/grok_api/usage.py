"""UsageRecorder: the Events' usage, aggregated in memory, flushed to the store in batches.

The hot path only adds to a dict entry per (key, model, hour); every ``interval`` seconds (and
on shutdown) the batch is written with atomic upserts. A batch that cannot be written is kept
and merged into the next, so a store that is briefly away loses nothing.

When an answer carries no usage (the client went away, the upstream broke off, or the upstream
reports none), tokens are estimated at one per 4 characters, as OpenAI's rule of thumb has it:
the prompt from its text, the completion from what was actually delivered. Such requests are
counted in ``estimated_requests``.

Generated images are counted in ``images`` (one per image delivered); such a request is charged
the tokens of its prompt only (an estimate unless the upstream reports usage).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from .conversations import text_of
from .store.usage import UsageRow, UsageStore
from .upstreams.base import Usage

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4


def estimate_tokens(chars: int) -> int:
    return math.ceil(chars / CHARS_PER_TOKEN)


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """About how many tokens a prompt is: its text at 4 characters a token, plus 4 a message."""
    return sum(4 + estimate_tokens(len(text_of(m.get("content")))) for m in messages)


class UsageRecorder:
    def __init__(self, store: UsageStore, *, on_flush_error: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.on_flush_error = on_flush_error
        self._rows: dict[tuple[str, str, int], UsageRow] = {}

    def record(
        self,
        key_id: str,
        model: str,
        usage: Usage | None,
        *,
        prompt_estimate: int,
        delivered_chars: int,
        error: bool,
        images: int = 0,
    ) -> int:
        """Adds one answered request; returns the tokens it is charged (prompt + completion)."""
        hour = int(time.time()) // 3600 * 3600
        row = self._rows.get((key_id, model, hour))
        if row is None:
            row = self._rows[(key_id, model, hour)] = UsageRow(key_id, model, hour)
        row.requests += 1
        row.errors += error
        row.images += images
        if usage is not None and not usage.estimated:
            prompt, completion = usage.prompt_tokens, usage.completion_tokens
            row.reasoning_tokens += usage.reasoning_tokens
            row.cached_tokens += usage.cached_tokens
        elif usage is not None:
            prompt, completion = usage.prompt_tokens, usage.completion_tokens
            row.estimated_requests += 1
        elif delivered_chars or not error:
            prompt, completion = prompt_estimate, estimate_tokens(delivered_chars)
            row.estimated_requests += 1
        else:  # refused before anything was produced: the upstream charges nothing
            prompt = completion = 0
        row.prompt_tokens += prompt
        row.completion_tokens += completion
        return prompt + completion

    def pending(self) -> int:
        return len(self._rows)

    async def flush(self) -> None:
        if not self._rows:
            return
        batch, self._rows = self._rows, {}
        try:
            await self.store.add(list(batch.values()))
        except Exception:  # the store may be briefly away: keep the batch for the next flush
            self.on_flush_error()
            log.warning("could not write usage (%d rows); will retry", len(batch), exc_info=True)
            for k, row in batch.items():
                mine = self._rows.get(k)
                if mine is None:
                    self._rows[k] = row
                else:
                    mine.add(row)

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.flush()
