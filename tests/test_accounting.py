"""Usage is neither lost nor blocked, and budgets hold under concurrency (issue 10, items 10, 11):
control characters are refused at the edge, a row PostgreSQL refuses does not hold up the
others, pending rows are capped without losing totals, and budgets are reserved against."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import create_async_engine

from grok_api.config import Settings
from grok_api.store import Database, UsageStore
from grok_api.upstreams.base import Usage
from grok_api.usage import OVERFLOW_MODEL, UsageRecorder

from .helpers import ADMIN_KEY, Env, ServedApp, gateway_settings, key_for, post_chat, run_async
from .test_http_errors import assert_openai_error

URL = "/v1/chat/completions"
AWAY = "postgresql+asyncpg://nobody@127.0.0.1:9/none"  # a store that is away: nothing listens there


def test_control_characters_in_identifiers_are_refused(env: Env, key: str) -> None:
    for model in ("grok-4\u0000", "grok-4\n", "g" * 300):
        r = httpx.post(
            env.base_url + URL,
            headers={"Authorization": f"Bearer {key}"},
            json={"model": model, "messages": [{"role": "user", "content": "x"}]},
        )
        assert assert_openai_error(r, 400)["param"] == "model"
    admin = {"x-api-key": ADMIN_KEY}
    r = httpx.post(env.base_url + "/admin/keys/key_%00/revoke", headers=admin)
    assert_openai_error(r, 404)
    r = httpx.get(env.base_url + "/admin/usage", params={"key_id": "key_\u0000"}, headers=admin)
    assert assert_openai_error(r, 400)["param"] == "key_id"
    assert post_chat(env.base_url, key).status_code == 200


def record(recorder: UsageRecorder, key_id: str, model: str) -> None:
    usage = Usage(prompt_tokens=3, completion_tokens=4)
    recorder.record(key_id, model, usage, prompt_estimate=3, delivered_chars=16, error=False)


def test_a_row_postgres_refuses_does_not_block_the_others(postgres_url: str) -> None:
    async def go() -> None:
        db = await Database.open(Settings(_env_file=None, database_url=postgres_url).resolved_database_url())  # type: ignore[call-arg]
        dropped: list[int] = []
        try:
            recorder = UsageRecorder(UsageStore(db), on_dropped=lambda: dropped.append(1))
            record(recorder, "key_good1", "grok-4")
            record(recorder, "key_bad", "grok-4\u0000")  # as if it had passed the edge
            record(recorder, "key_good2", "grok-3")
            await recorder.flush()
            assert recorder.pending() == 0  # nothing left to retry forever
            assert dropped == [1]
            rows = await UsageStore(db).report()
            assert {(r["key_id"], r["model"], r["requests"]) for r in rows} == {
                ("key_good1", "grok-4", 1),
                ("key_good2", "grok-3", 1),
            }
            record(recorder, "key_good1", "grok-4")  # later usage is stored as usual
            await recorder.flush()
            rows = await UsageStore(db).report(key_id="key_good1")
            assert rows[0]["requests"] == 2
        finally:
            await db.close()

    run_async(go())


def test_pending_rows_are_capped_without_losing_totals(tmp_path: Path) -> None:
    async def go() -> None:
        away = UsageStore(Database(create_async_engine(AWAY)))
        folded: list[int] = []
        recorder = UsageRecorder(away, max_pending=3, on_folded=lambda: folded.append(1))
        for i in range(10):
            record(recorder, "key_a", f"model-{i}")
        await recorder.flush()  # the store is away: kept, still capped
        assert recorder.pending() == 4  # three models, and the key's overflow row
        assert len(folded) == 7
        await away.db.close()
        db = await Database.open(Settings(_env_file=None, data_dir=tmp_path).resolved_database_url())  # type: ignore[call-arg]
        try:
            recorder.store = UsageStore(db)
            await recorder.flush()
            rows = await UsageStore(db).report(key_id="key_a")
            assert sum(r["requests"] for r in rows) == 10
            assert sum(r["total_tokens"] for r in rows) == 70
            assert any(r["model"] == OVERFLOW_MODEL for r in rows)
        finally:
            await db.close()

    run_async(go())


def usage_total(base_url: str, key_id: str) -> int:
    r = httpx.get(base_url + "/admin/usage", params={"key_id": key_id}, headers={"x-api-key": ADMIN_KEY})
    return sum(int(row["total_tokens"]) for row in r.json()["data"])


def test_concurrent_requests_stay_within_a_budget(env: Env, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, env.sim)
    with ServedApp(settings) as served:
        key = key_for(settings, budget_total=300)
        record_id = httpx.get(served.base_url + "/admin/keys", headers={"x-api-key": ADMIN_KEY}).json()[
            "data"
        ][-1]["id"]

        def ask(i: int) -> int:
            return post_chat(served.base_url, key, f"long {i} [sim tokens=200]").status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(ask, range(20)))
        assert 200 in statuses
        assert set(statuses) <= {200, 429}
        total = usage_total(served.base_url, record_id)
        # before reservations: 20 × ~210 tokens; now the budget plus at most estimate error
        assert 0 < total <= 300 + 50, total


def test_an_answer_is_capped_to_what_the_budget_has_left(env: Env, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, env.sim)
    with ServedApp(settings) as served:
        key = key_for(settings, budget_total=60)
        r = post_chat(served.base_url, key, f"cap {time.time()} [sim tokens=200]")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["choices"][0]["finish_reason"] == "length"
        assert body["usage"]["completion_tokens"] < 60
        refused = post_chat(served.base_url, key, "more [sim tokens=200]")
        assert assert_openai_error(refused, 429)["code"] == "insufficient_quota"


def test_the_recorder_keeps_what_the_store_cannot_take_yet(tmp_path: Path) -> None:
    """The sibling of the cap: a store that is away keeps everything (below the cap)."""

    async def go() -> None:
        away = UsageStore(Database(create_async_engine(AWAY)))
        recorder = UsageRecorder(away)
        record(recorder, "key_b", "grok-4")
        await recorder.flush()
        await asyncio.sleep(0)
        assert recorder.pending() == 1
        await away.db.close()

    run_async(go())
