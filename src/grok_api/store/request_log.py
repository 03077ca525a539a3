"""The stored request log: one row per settled request, read newest first, purged by age.

A row holds what a filter reads (when the request arrived, its id, key id, model and status) as
columns, and the request's record (:meth:`~grok_api.recent.RequestRecord.fields`: never a key
or a credential) as one JSON document, which is what a read gives back. Writes come in batches
from :class:`~grok_api.request_log.RequestLog`, off the requests' path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from .db import Database
from .tables import request_log

PURGE_CHUNK = 10_000  # rows deleted per statement, so that a large purge never holds the store long


@dataclass(frozen=True, slots=True)
class LogRow:
    started_us: int
    request_id: str
    key_id: str | None
    model: str | None
    status: int
    fields: dict[str, Any]


def _column(text: str | None, longest: int) -> str | None:
    """A value as its column holds it: at most ``longest`` characters, no NUL (PostgreSQL
    refuses one), ``None`` for nothing."""
    if not text:
        return None
    return text[:longest].replace("\x00", "")


def _where(
    *,
    key_id: str | None,
    model: str | None,
    request_id: str | None,
    status: tuple[int, int] | None,
    since: float | None,
    before: float | None,
) -> list[sa.ColumnElement[bool]]:
    c = request_log.c
    out: list[sa.ColumnElement[bool]] = []
    for column, value in ((c.key_id, key_id), (c.model, model), (c.request_id, request_id)):
        if value:
            out.append(column == value)
    if status is not None:
        out.append(c.status.between(*status))
    if since is not None:
        out.append(c.started_us >= int(since * 1e6))
    if before is not None:
        out.append(c.started_us < int(before * 1e6))
    return out


# The insert in the placeholders of the drivers the project uses (aiosqlite: ``?``; asyncpg:
# ``$1``); another driver, named in GROK_API_DATABASE_URL, gets SQLAlchemy's insert.
_COLUMNS = ("started_us", "request_id", "key_id", "model", "status", "fields")
_INSERT = {
    "qmark": "INSERT INTO request_log (started_us, request_id, key_id, model, status, fields)"
    " VALUES (?, ?, ?, ?, ?, ?)",
    "numeric_dollar": "INSERT INTO request_log (started_us, request_id, key_id, model, status, fields)"
    " VALUES ($1, $2, $3, $4, $5, $6)",
}


class RequestLogStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, rows: list[LogRow]) -> None:
        """Writes a batch in one transaction, as the driver's own ``executemany`` of plain
        tuples: SQLAlchemy's insert builds and checks a parameter dict per row, which cost
        more than the rest of storing a request's record."""
        if not rows:
            return
        values = [
            (
                r.started_us,
                _column(r.request_id, 128) or "",
                _column(r.key_id, 32),
                _column(r.model, 256),
                r.status,
                orjson.dumps(r.fields).decode(),
            )
            for r in rows
        ]
        async with self.db.engine.begin() as conn:
            sql = _INSERT.get(conn.dialect.paramstyle)
            if sql is not None:
                await conn.exec_driver_sql(sql, values)
            else:
                await conn.execute(
                    request_log.insert(), [dict(zip(_COLUMNS, v, strict=True)) for v in values]
                )

    async def query(
        self,
        limit: int,
        *,
        key_id: str | None = None,
        model: str | None = None,
        request_id: str | None = None,
        status: tuple[int, int] | None = None,
        since: float | None = None,
        before: float | None = None,
    ) -> list[dict[str, Any]]:
        """The fields of the newest ``limit`` matching rows, newest first. ``status`` is an
        inclusive range (``(400, 499)`` for ``4xx``); ``since`` (at or after) and ``before``
        (strictly before) are epoch seconds."""
        c = request_log.c
        where = _where(
            key_id=key_id, model=model, request_id=request_id, status=status, since=since, before=before
        )
        stmt = sa.select(c.fields).where(*where).order_by(c.started_us.desc(), c.id.desc()).limit(limit)
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(stmt)).scalars().all()
        return [orjson.loads(r) for r in rows]

    async def purge(self, before_us: int, *, chunk: int = PURGE_CHUNK) -> int:
        """Deletes every row of a request that arrived before ``before_us``, ``chunk`` rows a
        statement; returns how many."""
        c = request_log.c
        removed = 0
        while True:
            oldest = sa.select(c.id).where(c.started_us < before_us).limit(chunk).scalar_subquery()
            async with self.db.engine.begin() as conn:
                result = await conn.execute(request_log.delete().where(c.id.in_(oldest)))
            count = int(result.rowcount or 0)
            removed += count
            if count < chunk:
                return removed
