"""Hourly usage per key and model: added to with atomic upserts, read for reports and budgets.

Every instance adds its batch with ``INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n``,
so several instances flushing the same (key, model, hour) add up without lost updates.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .db import Database
from .tables import USAGE_COUNTERS, usage_hourly


@dataclass(slots=True)
class UsageRow:
    key_id: str
    model: str
    hour: int
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    estimated_requests: int = 0
    images: int = 0

    def add(self, other: UsageRow) -> None:
        for name in USAGE_COUNTERS:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, Any]:
        return dict(zip((f.name for f in fields(self)), astuple(self), strict=True))


class UsageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, rows: list[UsageRow]) -> None:
        """Adds the counters of ``rows`` to what is stored, atomically per row."""
        if not rows:
            return
        dialect = sqlite if self.db.is_sqlite else postgresql
        stmt = dialect.insert(usage_hourly)
        stmt = stmt.on_conflict_do_update(
            index_elements=["key_id", "model", "hour"],
            set_={name: usage_hourly.c[name] + stmt.excluded[name] for name in USAGE_COUNTERS},
        )
        async with self.db.engine.begin() as conn:
            await conn.execute(stmt, [row.as_dict() for row in rows])

    async def report(self, *, key_id: str | None = None, since_hour: int = 0) -> list[dict[str, Any]]:
        """Totals per key and model since ``since_hour`` (epoch seconds of an hour's start)."""
        cols = [sa.func.sum(usage_hourly.c[name]).label(name) for name in USAGE_COUNTERS]
        query = (
            sa.select(usage_hourly.c.key_id, usage_hourly.c.model, *cols)
            .where(usage_hourly.c.hour >= since_hour)
            .group_by(usage_hourly.c.key_id, usage_hourly.c.model)
            .order_by(usage_hourly.c.key_id, usage_hourly.c.model)
        )
        if key_id is not None:
            query = query.where(usage_hourly.c.key_id == key_id)
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        out = []
        for r in rows:
            row = {str(k): (int(v) if k in USAGE_COUNTERS else v) for k, v in r._asdict().items()}
            row["total_tokens"] = row["prompt_tokens"] + row["completion_tokens"]
            row["estimated"] = row["estimated_requests"] > 0
            out.append(row)
        return out

    async def tokens_since(self, key_id: str, *hours: int) -> list[int]:
        """Tokens (prompt + completion) the key used since each of ``hours``, in one query."""
        tokens = usage_hourly.c.prompt_tokens + usage_hourly.c.completion_tokens
        cols = [
            sa.func.coalesce(sa.func.sum(sa.case((usage_hourly.c.hour >= h, tokens), else_=0)), 0)
            for h in hours
        ]
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(sa.select(*cols).where(usage_hourly.c.key_id == key_id))).one()
        return [int(v) for v in row]
