"""The stored request log: every settled request's record, queued in memory, written in batches.

With ``GROK_API_REQUEST_LOG_RETENTION`` on, the observer hands each settled request's record to
:meth:`RequestLog.add` — on the requests' path, so it only appends to a queue. A background task
(:meth:`RequestLog.run`) writes the queue in batches, every second (by default) or as soon as
``batch`` records wait; :meth:`RequestLog.aclose` writes what is left at shutdown, after the
requests in flight have ended. The queue is bounded (``max_pending``): while the database is away or slow,
requests are served as ever and the oldest records are dropped — counted (``on_dropped``) and
warned about once. Rows older than the retention are purged hourly (:meth:`RequestLog.run_purge`).

Kept are the clients' requests: every surface's, and another route's when it names a client key
(``/v1/messages/count_tokens``). The admin API, the dashboard, health checks and metrics scrapes
are not: the dashboard's own polling would bury the requests it is there to show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from sqlalchemy import exc as sa_exc

from .errors import Unavailable
from .recent import RequestFilter, RequestRecord
from .store.db import purge_every
from .store.request_log import LogRow, RequestLogStore

log = logging.getLogger(__name__)

BATCH = 500
SHUTDOWN_FLUSH_SECONDS = 10.0
OTHER = "other"  # the observer's surface for routes that are not a surface's (observe.Observer.around)


def _row(r: RequestRecord) -> LogRow:
    return LogRow(int(r.started * 1_000_000), r.id, r.key_id or None, r.model or None, r.status, r.fields())


class RequestLog:
    def __init__(
        self,
        store: RequestLogStore,
        *,
        retention: float,
        max_pending: int = 10_000,
        batch: int = BATCH,
        on_dropped: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.store = store
        self.retention = retention
        self.max_pending = max_pending
        self.batch = batch
        self.on_dropped = on_dropped
        self._queue: deque[RequestRecord] = deque()
        self._full = asyncio.Event()
        self._lock = asyncio.Lock()  # one writer at a time, so that batches go in order
        self._writing = 0  # records taken from the queue by the write under way
        self._dropped = 0  # since the last write that succeeded
        self._failing = False

    def add(self, record: RequestRecord) -> None:
        """Queues a settled request's record (the observer's sink)."""
        if record.surface == OTHER and not record.key_id:
            return
        queue = self._queue
        if len(queue) >= self.max_pending:
            queue.popleft()
            self._drop(1)
        queue.append(record)
        if len(queue) == self.batch:
            self._full.set()

    def pending(self) -> int:
        """Records not stored yet: queued, or in the write under way."""
        return len(self._queue) + self._writing

    def _drop(self, n: int) -> None:
        if not self._dropped:
            log.warning(
                "the request log's queue is full (%d records: the database is away or slow); "
                "dropping the oldest records until it can be written",
                self.max_pending,
            )
        self._dropped += n
        self.on_dropped(n)

    async def flush(self) -> None:
        """Writes the records queued now, in batches; a batch that fails goes back to the front
        of the queue for the next try (the queue's bound still holds)."""
        async with self._lock:
            left = len(self._queue)
            while left > 0 and self._queue:
                records = [self._queue.popleft() for _ in range(min(self.batch, len(self._queue)))]
                left -= len(records)
                self._writing = len(records)
                try:
                    await self.store.add([_row(r) for r in records])
                except BaseException as exc:
                    self._requeue(records)
                    if not isinstance(exc, Exception):
                        raise  # cancelled (at shutdown): aclose writes them
                    self._failed()
                    return
                finally:
                    self._writing = 0
                self._written()

    def _requeue(self, records: list[RequestRecord]) -> None:
        self._queue.extendleft(reversed(records))
        over = len(self._queue) - self.max_pending
        if over > 0:
            for _ in range(over):
                self._queue.popleft()
            self._drop(over)

    def _failed(self) -> None:
        if not self._failing:
            log.warning("could not store request records; will retry", exc_info=True)
            self._failing = True

    def _written(self) -> None:
        if self._failing or self._dropped:
            log.warning("request records are stored again; %d were dropped meanwhile", self._dropped)
            self._failing, self._dropped = False, 0

    async def run(self, interval: float) -> None:
        """The background task: writes every ``interval`` seconds, or once a batch is queued."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), interval)
            self._full.clear()
            await self.flush()

    async def aclose(self) -> None:
        """At shutdown: writes what is queued, waiting for the database a few seconds at most."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), SHUTDOWN_FLUSH_SECONDS)
        if self.pending():
            log.warning("%d request records could not be stored before shutdown", self.pending())

    async def run_purge(self, interval: float) -> None:
        """The background task: removes rows past the retention every ``interval`` seconds."""
        await purge_every(interval, self.purge, "request-log rows past their retention")

    async def purge(self, now: float | None = None) -> int:
        cutoff = max(0.0, (time.time() if now is None else now) - self.retention)
        return await self.store.purge(int(cutoff * 1_000_000))

    async def query(self, wanted: RequestFilter, limit: int) -> list[dict[str, Any]]:
        """The newest stored requests ``wanted`` matches (this instance's queued ones written
        first, so that they show at once); a database that cannot be read is a 503."""
        await self.flush()
        try:
            return await self.store.query(limit, **asdict(wanted))
        except (sa_exc.SQLAlchemyError, OSError) as exc:
            log.warning("could not read the request log", exc_info=True)
            raise Unavailable(
                "The request log's database cannot be read just now; try again shortly.",
                code="request_log_unavailable",
            ) from exc
