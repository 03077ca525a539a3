"""The stored request log (GROK_API_REQUEST_LOG_RETENTION) on SQLite and PostgreSQL: the store's
reads, filters and purge; the queue (batches, its bound, the write at shutdown); and gateways
serving real requests — through the openai SDK, two processes sharing one database, a purge at
start, a shutdown with records still queued, and a database that goes away."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from grok_api.errors import InvalidRequest, Unavailable
from grok_api.recent import RequestFilter, RequestRecord
from grok_api.request_log import RequestLog
from grok_api.simulator import Simulator
from grok_api.store import Database
from grok_api.store import request_log as request_log_store
from grok_api.store.request_log import LogRow, RequestLogStore
from grok_api.timespec import moment

from .helpers import (
    ADMIN_KEY,
    UPSTREAM_KEY,
    ServedApp,
    assert_openai_error,
    clean_environ,
    create_key,
    database_url,
    gateway_processes,
    gateway_settings,
    post_chat,
    postgres_execute,
    run_async,
)
from .test_usage import metric

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
MODEL = "grok-4.20-non-reasoning"


def tag(name: str) -> str:
    """A value no other test (nor an earlier run on the shared PostgreSQL) has used."""
    return f"{name}-{secrets.token_hex(4)}"


def plain_url(url: str) -> str:
    """The URL as an operator writes it (the driver left to the gateway)."""
    return url.replace("+aiosqlite", "").replace("+asyncpg", "")


def requests_page(base_url: str, **params: Any) -> dict[str, Any]:
    r = httpx.get(base_url + "/admin/requests", params=params, headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


# --- what the filters accept ----------------------------------------------------------------

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1767225600.25", 1767225600.25),
        ("2026-11-28T10:15:00.123Z", 1795860900.123),
        ("2026-11-28T10:15:00Z", 1795860900.0),
        ("2026-11-28 10:15", 1795860900.0),
        ("2026-11-28", 1795824000.0),
        ("15m", NOW - 900),
        (" 2h ", NOW - 7200),
    ],
)
def test_a_time_is_epoch_seconds_a_utc_time_a_date_or_a_duration_back(text: str, expected: float) -> None:
    assert moment(text, NOW, "since") == pytest.approx(expected)


@pytest.mark.parametrize(
    "text", ["", "soon", "nan", "inf", "-5", "2026-13-45", "2026-11-28T25:00:00Z", "1e400"]
)
def test_anything_else_is_a_400_naming_the_parameter(text: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        moment(text, NOW, "before")
    assert refused.value.param == "before"


# --- the store -------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'log.db'}"
    return str(request.getfixturevalue("postgres_url")).replace("postgresql://", "postgresql+asyncpg://")


@pytest.fixture
async def store(url: str) -> AsyncIterator[RequestLogStore]:
    db = await Database.open(url)
    try:
        yield RequestLogStore(db)
    finally:
        await db.close()


def row(rid: str, key_id: str, at: float, *, model: str = MODEL, status: int = 200) -> LogRow:
    fields = {"request_id": rid, "key_id": key_id, "model": model, "status": status, "path": "/v1/x"}
    return LogRow(int(at * 1_000_000), rid, key_id, model, status, fields)


def record(rid: str, key_id: str, status: int = 200) -> RequestRecord:
    return RequestRecord(
        rid, "POST", "/v1/chat/completions", "chat", time.time(), 0.0, key_id=key_id, status=status
    )


async def test_reads_are_filtered_and_newest_first(store: RequestLogStore) -> None:
    key, other = tag("key"), tag("other")
    now = time.time()
    await store.add(
        [
            row("a", key, now - 30),
            row("b", key, now - 20, status=429),
            row("c", key, now - 10, model="grok-4.3", status=502),
            row("d", other, now - 5),
        ]
    )

    async def ids(limit: int = 100, **wanted: Any) -> list[str]:
        return [r["request_id"] for r in await store.query(limit, **wanted)]

    assert await ids(key_id=key) == ["c", "b", "a"]
    assert await ids(key_id=key, limit=2) == ["c", "b"]
    assert await ids(key_id=key, status=(400, 499)) == ["b"]
    assert await ids(key_id=key, status=(502, 502)) == ["c"]
    assert await ids(key_id=key, model=MODEL) == ["b", "a"]
    assert await ids(key_id=key, since=now - 25) == ["c", "b"]
    assert await ids(key_id=key, before=now - 20) == ["a"]  # strictly before
    assert await ids(key_id=other) == ["d"]
    got = await store.query(10, key_id=other, request_id="d")
    assert got == [{"request_id": "d", "key_id": other, "model": MODEL, "status": 200, "path": "/v1/x"}]


async def test_a_driver_without_a_written_insert_stores_the_same_rows(
    store: RequestLogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drivers the project does not pick itself (another one named in the URL) go through
    SQLAlchemy's insert: the same rows, read back the same."""
    monkeypatch.setattr(request_log_store, "_INSERT", {})
    key, now = tag("any-driver"), time.time()
    await store.add([row("x", key, now - 2), row("y", key, now - 1, status=502)])
    got = await store.query(10, key_id=key)
    assert [(r["request_id"], r["status"]) for r in got] == [("y", 502), ("x", 200)]


async def test_the_purge_removes_only_rows_past_the_retention(store: RequestLogStore) -> None:
    key = tag("purge")
    now = time.time()
    await store.add([row(f"old{i}", key, now - 7200 - i) for i in range(7)] + [row("fresh", key, now - 60)])
    assert await store.purge(int((now - 3600) * 1_000_000), chunk=3) >= 7  # in three statements
    assert [r["request_id"] for r in await store.query(100, key_id=key)] == ["fresh"]
    log = RequestLog(store, retention=3600)
    assert await log.purge(now=now + 3600) >= 1  # an hour on, the fresh one is past it too
    assert await store.query(100, key_id=key) == []


async def test_the_queue_is_written_in_batches_and_the_rest_at_close(store: RequestLogStore) -> None:
    key = tag("batch")
    log = RequestLog(store, retention=3600, batch=3)
    writer = asyncio.create_task(log.run(interval=3600))  # only a full batch wakes it
    try:
        for i in range(3):
            log.add(record(f"r{i}", key))
        for _ in range(100):
            if log.pending() == 0:
                break
            await asyncio.sleep(0.02)
        assert len(await store.query(100, key_id=key)) == 3
        log.add(record("r3", key))
        log.add(record("r4", key, status=500))
        await asyncio.sleep(0.1)
        assert log.pending() == 2 and len(await store.query(100, key_id=key)) == 3
    finally:
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer
    await log.aclose()
    assert log.pending() == 0
    stored = await store.query(100, key_id=key)
    assert [r["request_id"] for r in stored] == ["r4", "r3", "r2", "r1", "r0"]
    assert stored[0]["status"] == 500 and stored[0]["path"] == "/v1/chat/completions"


async def test_requests_of_no_client_key_on_other_routes_are_not_kept(store: RequestLogStore) -> None:
    log = RequestLog(store, retention=3600)
    log.add(RequestRecord("admin", "GET", "/admin/requests", "other", time.time(), 0.0, status=200))
    assert log.pending() == 0
    counted = RequestRecord("count", "POST", "/v1/messages/count_tokens", "other", time.time(), 0.0)
    counted.key_id = tag("key")
    log.add(counted)
    assert log.pending() == 1


async def test_an_unreachable_database_costs_the_oldest_records_and_no_error() -> None:
    engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:9/none", hide_parameters=True)
    dropped: list[int] = []
    log = RequestLog(
        RequestLogStore(Database(engine)), retention=3600, max_pending=5, on_dropped=dropped.append
    )
    try:
        for i in range(8):
            log.add(record(f"r{i}", "key_x"))
        await log.flush()  # fails; the records wait for the next try
        assert log.pending() == 5 and sum(dropped) == 3
        with pytest.raises(Unavailable) as refused:
            await log.query(RequestFilter(), 10)
        assert refused.value.status == 503
        await log.aclose()  # gives up quietly: the process still stops
        assert log.pending() == 5
    finally:
        await engine.dispose()


# --- a served gateway ------------------------------------------------------------------------


@pytest.fixture
def served(url: str, sim: Simulator, tmp_path: Path) -> Iterator[ServedApp]:
    settings = gateway_settings(tmp_path, sim, database_url=plain_url(url), request_log_retention="1h")
    with ServedApp(settings) as app:
        yield app


def test_requests_through_the_sdk_are_stored_with_their_fields(served: ServedApp) -> None:
    key_name = tag("sdk")
    record, key = create_key(served.settings, key_name)
    client = openai.OpenAI(api_key=key, base_url=served.base_url + "/v1", max_retries=0)
    with client:
        ok = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-request-id": tag("ok")},
        )
        stream = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "flow"}],
            stream=True,
            extra_headers={"x-request-id": tag("st")},
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x [sim fault=500]"}]
            )
        client.models.list()  # names no key on its record: not kept
    httpx.get(served.base_url + "/health")
    page = requests_page(served.base_url, key_id=record.id)
    assert page["source"] == "store" and page["retention"] == 3600 and "kept" not in page
    rows = page["data"]
    assert [r["status"] for r in rows] == [502, 200, 200]
    failed, streamed, answered = rows
    assert answered["model"] == MODEL and answered["key_name"] == key_name and answered["stream"] is False
    assert (
        answered["prompt_tokens"] == ok.usage.prompt_tokens
        and answered["completion_tokens"] == ok.usage.completion_tokens
    )  # type: ignore[union-attr]
    assert (
        answered["path"] == "/v1/chat/completions"
        and answered["surface"] == "chat"
        and answered["outcome"] == "ok"
    )
    assert (
        streamed["stream"] is True and streamed["request_id"].startswith("st-") and streamed["bytes_out"] > 0
    )
    assert failed["outcome"].startswith("upstream_error") and failed["upstream"] == "xai"
    assert (
        key not in httpx.get(served.base_url + "/admin/requests", params={"limit": 1000}, headers=ADMIN).text
    )
    everything = requests_page(served.base_url, limit=1000)["data"]
    assert all(r["surface"] != "other" or r["key_id"] for r in everything)  # no admin, health, models

    def ids(**params: Any) -> list[str]:
        return [r["request_id"] for r in requests_page(served.base_url, key_id=record.id, **params)["data"]]

    assert ids(status="5xx") == [failed["request_id"]]
    assert ids(status="200", limit=1) == [streamed["request_id"]]
    assert ids(request_id=answered["request_id"]) == [answered["request_id"]]
    assert ids(model="grok-4.3") == []
    assert ids(before=streamed["time"]) == [answered["request_id"]]
    assert ids(since=streamed["time"]) == [failed["request_id"], streamed["request_id"]]
    assert len(ids(since="1h")) == 3 and ids(before="1h") == []


def test_a_bad_filter_is_a_400_in_openais_shape(served: ServedApp) -> None:
    for params in ({"status": "4x"}, {"since": "yesterday"}, {"before": "2026-13-45"}, {"model": "a\x01b"}):
        r = httpx.get(served.base_url + "/admin/requests", params=params, headers=ADMIN)
        err = assert_openai_error(r, 400)
        assert err["param"] == next(iter(params))


def test_the_purge_runs_at_start_and_removes_rows_past_the_retention(
    url: str, sim: Simulator, tmp_path: Path
) -> None:
    key = tag("start")
    now = time.time()

    async def put() -> None:
        db = await Database.open(url)
        try:
            await RequestLogStore(db).add([row("ancient", key, now - 2 * 3600), row("recent", key, now - 60)])
        finally:
            await db.close()

    settings = gateway_settings(tmp_path, sim, database_url=plain_url(url), request_log_retention=3600)
    run_async(put())
    with ServedApp(settings) as app:
        deadline = time.monotonic() + 10
        while (
            len(kept := requests_page(app.base_url, key_id=key)["data"]) > 1 and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert [r["request_id"] for r in kept] == ["recent"]


def test_records_still_queued_at_shutdown_are_written(sim: Simulator, tmp_path: Path, url: str) -> None:
    settings = gateway_settings(
        tmp_path,
        sim,
        database_url=plain_url(url),
        request_log_retention=3600,
        request_log_flush_interval=3600,
    )
    record, key = create_key(settings, tag("stop"))
    with ServedApp(settings) as app:
        sent = [post_chat(app.base_url, key).headers["x-request-id"] for _ in range(3)]
        gw = app.app.state.gateway
        assert app.call(_pending(gw)) == 3  # nothing written yet: the writer waits an hour

    async def stored() -> list[str]:
        db = await Database.open(database_url(settings))
        try:
            return [r["request_id"] for r in await RequestLogStore(db).query(10, key_id=record.id)]
        finally:
            await db.close()

    assert run_async(stored()) == sent[::-1]


async def _pending(gw: Any) -> int:
    return int(gw.request_log.pending())


def test_two_gateways_sharing_a_database_see_each_others_requests(
    url: str, sim: Simulator, tmp_path: Path
) -> None:
    plain = plain_url(url)
    environ = clean_environ(
        {
            "GROK_API_DATABASE_URL": plain,
            "GROK_API_DATA_DIR": str(tmp_path),
            "GROK_API_XAI_BASE_URL": sim.base_url + "/v1",
            "XAI_API_KEY": UPSTREAM_KEY,
            "GROK_API_ADMIN_KEY": ADMIN_KEY,
            "GROK_API_LOG_LEVEL": "WARNING",
            "GROK_API_REQUEST_LOG_RETENTION": "1d",
            "GROK_API_REQUEST_LOG_FLUSH_INTERVAL": "0.2",
        }
    )
    with gateway_processes(2, environ) as urls:
        record, key = create_key(plain, tag("pair"))
        answered = {post_chat(url, key).headers["x-request-id"] for url in urls}
        for url in urls:
            deadline = time.monotonic() + 10
            while True:
                page = requests_page(url, key_id=record.id)
                if len(page["data"]) == 2 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert page["source"] == "store"
            assert {r["request_id"] for r in page["data"]} == answered


# --- a database that goes away ---------------------------------------------------------------


@pytest.fixture
def doomed_postgres(postgres_url: str) -> Iterator[tuple[str, str]]:
    """A database of its own on the machine's PostgreSQL, for a test to drop under a gateway:
    its URL, and the statement that drops it (run on the server's ``postgres`` database)."""
    base, _, _ = postgres_url.rpartition("/")
    name = "grok_api_doomed_" + secrets.token_hex(4)
    run_async(postgres_execute(f"{base}/postgres", f'CREATE DATABASE "{name}"'))
    drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    yield f"{base}/{name}", drop
    run_async(postgres_execute(f"{base}/postgres", drop))


def test_a_database_gone_costs_records_not_requests(
    sim: Simulator, tmp_path: Path, doomed_postgres: tuple[str, str]
) -> None:
    url, drop = doomed_postgres
    settings = gateway_settings(
        tmp_path,
        sim,
        database_url=url,
        request_log_retention=3600,
        request_log_flush_interval=0.1,
        request_log_max_pending=5,
        key_cache_ttl=3600,  # the key is known before the database goes
    )
    _, key = create_key(settings, "survivor")
    with ServedApp(settings) as app:
        assert post_chat(app.base_url, key).status_code == 200
        assert len(requests_page(app.base_url)["data"]) == 1
        run_async(postgres_execute(url.rpartition("/")[0] + "/postgres", drop))
        assert all(post_chat(app.base_url, key).status_code == 200 for _ in range(12))
        time.sleep(0.5)  # a few failed writes
        metrics = httpx.get(app.base_url + "/metrics").text
        assert metric(metrics, "grok_api_request_log_pending") == 5
        assert metric(metrics, "grok_api_request_log_dropped_total") == 7
        refused = httpx.get(app.base_url + "/admin/requests", headers=ADMIN)
        err = assert_openai_error(refused, 503)
        assert err["code"] == "request_log_unavailable"
