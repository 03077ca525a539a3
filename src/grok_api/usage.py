"""UsageRecorder: the Events' usage, aggregated in memory, flushed to the store in batches.

The hot path only adds to a dict entry per (key, model, hour); every ``interval`` seconds (and
on shutdown) the batch is written with atomic upserts. A batch that cannot be written is kept
and merged into the next, so a store that is briefly away loses nothing. A row the store
refuses as data (a value it cannot hold) does not hold up the others: the batch is then written
row by row, and the refused row is logged and counted (``on_dropped``), not retried forever.
While the store is away, at most ``max_pending`` rows wait; past that, new (key, model) rows of
the hour are folded into the key's ``OVERFLOW_MODEL`` row (``on_folded``), so the key's totals,
and its budgets, lose nothing, only the split by model.

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
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import exc as sa_exc

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


OVERFLOW_MODEL = "(other models)"


def _refused_as_data(exc: BaseException) -> bool:
    """The store refused a value (not the connection): retrying the same row cannot help.
    SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation)."""
    if isinstance(exc, sa_exc.DataError | sa_exc.IntegrityError):
        return True
    if not isinstance(exc, sa_exc.StatementError):
        return False
    orig = exc.orig
    if isinstance(orig, ValueError | UnicodeError):
        return True
    state = getattr(orig, "sqlstate", None) or getattr(orig.__cause__, "sqlstate", None) if orig else None
    return isinstance(state, str) and state[:2] in ("22", "23")


class UsageRecorder:
    def __init__(
        self,
        store: UsageStore,
        *,
        on_flush_error: Callable[[], None] = lambda: None,
        max_pending: int = 100_000,
        on_dropped: Callable[[], None] = lambda: None,
        on_folded: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.on_flush_error = on_flush_error
        self.max_pending = max_pending
        self.on_dropped = on_dropped
        self.on_folded = on_folded
        self._rows: dict[tuple[str, str, int], UsageRow] = {}
        self._flushing = asyncio.Lock()  # a flush waits for the one under way: after it, all is written

    def _row(self, key_id: str, model: str, hour: int) -> UsageRow:
        row = self._rows.get((key_id, model, hour))
        if row is not None:
            return row
        if len(self._rows) >= self.max_pending:
            self.on_folded()
            model = OVERFLOW_MODEL
            row = self._rows.get((key_id, model, hour))
            if row is not None:
                return row
        row = self._rows[(key_id, model, hour)] = UsageRow(key_id, model, hour)
        return row

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
        row = self._row(key_id, model, int(time.time()) // 3600 * 3600)
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
        """Writes the pending rows. When it returns, every row recorded before the call is
        stored (or kept for the next try), also if another flush was writing them meanwhile."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        if not self._rows:
            return
        batch, self._rows = self._rows, {}
        try:
            await self.store.add(list(batch.values()))
        except Exception as exc:  # the store may be briefly away: keep the batch for the next flush
            if _refused_as_data(exc):
                await self._flush_each(batch)
                return
            self.on_flush_error()
            log.warning("could not write usage (%d rows); will retry", len(batch), exc_info=True)
            self._keep(batch.items())

    async def _flush_each(self, batch: dict[tuple[str, str, int], UsageRow]) -> None:
        """Writes a batch that held a row the store refuses row by row: the others are written,
        the refused one is dropped (logged and counted); a store that goes away meanwhile keeps
        the rest for the next flush."""
        items = list(batch.items())
        for i, (_, row) in enumerate(items):
            try:
                await self.store.add([row])
            except Exception as exc:
                if not _refused_as_data(exc):
                    self.on_flush_error()
                    log.warning("could not write usage; will retry", exc_info=True)
                    self._keep(items[i:])
                    return
                self.on_dropped()
                log.error(
                    "usage row refused by the store and dropped: key %s, %d requests, %d tokens (%s)",
                    row.key_id,
                    row.requests,
                    row.prompt_tokens + row.completion_tokens,
                    type(exc.__cause__ or exc).__name__,
                )

    def _keep(self, items: Iterable[tuple[tuple[str, str, int], UsageRow]]) -> None:
        for k, row in items:
            mine = self._rows.get(k)
            if mine is None:
                self._rows[k] = row
            else:
                mine.add(row)

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.flush()
