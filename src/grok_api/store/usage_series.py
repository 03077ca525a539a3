"""Usage over time, for the dashboard's charts and CSV export: hour or day buckets, by key or model."""

from __future__ import annotations

import csv
import io
import time
from typing import Any, Literal

import sqlalchemy as sa

from .db import Database
from .tables import USAGE_COUNTERS, usage_hourly

Bucket = Literal["hour", "day"]
SECONDS = {"hour": 3600, "day": 86400}


async def hourly_rows(
    db: Database, *, since_hour: int, key_id: str | None = None, model: str | None = None
) -> list[dict[str, Any]]:
    """The stored rows (key, model, hour and counters) since ``since_hour``, oldest first."""
    query = (
        sa.select(usage_hourly)
        .where(usage_hourly.c.hour >= since_hour)
        .order_by(usage_hourly.c.hour, usage_hourly.c.key_id, usage_hourly.c.model)
    )
    if key_id:
        query = query.where(usage_hourly.c.key_id == key_id)
    if model:
        query = query.where(usage_hourly.c.model == model)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [{str(k): v for k, v in r._asdict().items()} for r in rows]


def series(
    rows: list[dict[str, Any]], *, bucket: Bucket, by: Literal["key", "model"], since: int, until: int
) -> dict[str, Any]:
    """Rows summed per bucket and per key (or model): every bucket in [since, until] is present."""
    step = SECONDS[bucket]
    start = since // step * step
    buckets = list(range(start, until // step * step + 1, step))
    index = {b: i for i, b in enumerate(buckets)}
    dim = "key_id" if by == "key" else "model"
    groups: dict[str, dict[str, list[int]]] = {}
    totals = {name: [0] * len(buckets) for name in (*USAGE_COUNTERS, "tokens")}
    for row in rows:
        i = index.get(row["hour"] // step * step)
        if i is None:
            continue
        group = groups.setdefault(
            row[dim], {name: [0] * len(buckets) for name in ("requests", "errors", "tokens")}
        )
        tokens = row["prompt_tokens"] + row["completion_tokens"]
        group["requests"][i] += row["requests"]
        group["errors"][i] += row["errors"]
        group["tokens"][i] += tokens
        for name in USAGE_COUNTERS:
            totals[name][i] += row[name]
        totals["tokens"][i] += tokens
    return {
        "bucket": bucket,
        "by": by,
        "buckets": buckets,
        "totals": totals,
        "series": [{"name": name, **values} for name, values in sorted(groups.items())],
    }


def to_csv(rows: list[dict[str, Any]], bucket: Bucket) -> str:
    """One line per (bucket, key, model): the stored counters summed into hour or day buckets."""
    step = SECONDS[bucket]
    summed: dict[tuple[int, str, str], dict[str, int]] = {}
    for row in rows:
        k = (row["hour"] // step * step, row["key_id"], row["model"])
        acc = summed.setdefault(k, dict.fromkeys(USAGE_COUNTERS, 0))
        for name in USAGE_COUNTERS:
            acc[name] += row[name]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["bucket_start", "key_id", "model", *USAGE_COUNTERS, "total_tokens"])
    for (start, key, model), acc in sorted(summed.items()):
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
        values = [acc[name] for name in USAGE_COUNTERS]
        writer.writerow([when, key, _safe(model), *values, acc["prompt_tokens"] + acc["completion_tokens"]])
    return out.getvalue()


def _safe(cell: str) -> str:
    """No spreadsheet formulas from client-chosen text (model ids)."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@") else cell
