"""Two gateway processes sharing PostgreSQL and Redis: limits, budgets, usage and revocation
hold across both. Needs the machine's PostgreSQL and Redis (CI has them)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest

from grok_api.simulator import Simulator
from grok_api.store import KeyRecord, Limits

from .helpers import (
    ADMIN_KEY,
    UPSTREAM_KEY,
    WEB_AGENT,
    WEB_COOKIES,
    clean_environ,
    cli_ok,
    create_key,
    gateway_processes,
    post_chat,
    stored_usage,
)


class Cluster:
    def __init__(self, database_url: str, urls: list[str], sim: Simulator) -> None:
        self.database_url = database_url
        self.urls = urls
        self.sim = sim

    def create_key(self, name: str, limits: Limits) -> tuple[KeyRecord, str]:
        return create_key(self.database_url, name, limits=limits)

    def stored_usage(self, key_id: str) -> tuple[int, int]:
        """(requests, tokens) both instances flushed for one key."""
        stored = stored_usage(self.database_url, key_id)
        return stored.requests, stored.tokens


@pytest.fixture(scope="module")
def cluster(
    sim: Simulator, postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    env = clean_environ(
        {
            "GROK_API_DATABASE_URL": postgres_url,
            "GROK_API_REDIS_URL": redis_url,
            "GROK_API_XAI_BASE_URL": sim.base_url + "/v1",
            "XAI_API_KEY": UPSTREAM_KEY,
            "GROK_API_ADMIN_KEY": ADMIN_KEY,
            "GROK_API_KEY_CACHE_TTL": "60",  # only the Redis announcement can make a revocation quick
            "GROK_API_USAGE_FLUSH_INTERVAL": "0.5",
            "GROK_API_DATA_DIR": str(tmp_path_factory.mktemp("cluster")),
            "GROK_API_LOG_LEVEL": "WARNING",
            "GROK_API_WEB_BASE_URL": sim.base_url,
            "GROK_API_WEB_COOKIES": WEB_COOKIES,
            "GROK_API_WEB_USER_AGENT": WEB_AGENT,
        }
    )
    with gateway_processes(2, env) as urls:
        yield Cluster(postgres_url, urls, sim)


def test_both_instances_share_redis_limits(cluster: Cluster) -> None:
    for url in cluster.urls:
        assert httpx.get(url + "/ready").json()["checks"]["limits"] == "shared (redis)"


def test_ten_per_minute_across_two_instances(cluster: Cluster) -> None:
    _, key = cluster.create_key("rpm10", Limits(rpm=10))
    targets = [cluster.urls[i % 2] for i in range(30)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(lambda url: post_chat(url, key), targets))
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code == 429]
    assert len(ok) == 10
    assert len(refused) == 20
    served_by = {str(r.url).split("/v1")[0] for r in ok}
    assert served_by == set(cluster.urls)  # both instances served some of the ten
    for r in refused:
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers["x-ratelimit-limit-requests"] == "10"
        assert r.headers["x-ratelimit-remaining-requests"] == "0"
        assert r.json()["error"]["code"] == "rate_limit_requests"


def test_token_budget_stops_the_key_on_both(cluster: Cluster) -> None:
    record, key = cluster.create_key("budget", Limits(budget_total=30))
    served_tokens = served = 0
    for i in range(10):
        r = post_chat(cluster.urls[i % 2], key, "spend it")
        if r.status_code == 429:
            break
        assert r.status_code == 200
        served_tokens += r.json()["usage"]["total_tokens"]
        served += 1
        time.sleep(0.2)  # the charge is settled just after the answer is sent
    # it stops once what is left no longer covers a prompt and its answer (reserved, capped)
    assert 30 - 11 < served_tokens <= 30
    for url in cluster.urls:
        r = post_chat(url, key)
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "insufficient_quota"
    # and the usage both instances flushed to PostgreSQL adds up to what was served
    deadline = time.monotonic() + 5
    while cluster.stored_usage(record.id)[1] != served_tokens and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cluster.stored_usage(record.id) == (served, served_tokens)


def test_usage_totals_equal_what_was_served(cluster: Cluster) -> None:
    record, key = cluster.create_key("metered", Limits(rpm=1000))
    served = [post_chat(cluster.urls[i % 2], key, f"message number {i}").json()["usage"] for i in range(20)]
    total = sum(u["prompt_tokens"] + u["completion_tokens"] for u in served)
    deadline = time.monotonic() + 5
    while cluster.stored_usage(record.id) != (20, total) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cluster.stored_usage(record.id) == (20, total)


def test_revocation_on_one_is_refused_by_the_other_within_a_second(cluster: Cluster) -> None:
    record, key = cluster.create_key("revoked", Limits())
    a, b = cluster.urls
    assert post_chat(b, key).status_code == 200  # B has the key cached for 60 s
    r = httpx.post(f"{a}/admin/keys/{record.id}/revoke", headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 200
    started = time.monotonic()
    while post_chat(b, key).status_code == 200:
        assert time.monotonic() - started < 1.0, "B still served the revoked key after a second"
        time.sleep(0.05)
    assert post_chat(b, key).status_code == 401


def test_cli_revocation_is_announced(cluster: Cluster, redis_url: str, tmp_path: Path) -> None:
    record, key = cluster.create_key("cli-revoked", Limits())
    assert post_chat(cluster.urls[0], key).status_code == 200
    cli_ok(
        "keys", "revoke", record.id, GROK_API_DATABASE_URL=cluster.database_url, GROK_API_REDIS_URL=redis_url
    )
    started = time.monotonic()
    while post_chat(cluster.urls[0], key).status_code == 200:
        assert time.monotonic() - started < 1.0
        time.sleep(0.05)


def test_a_grok_com_conversation_continues_on_the_other_instance(cluster: Cluster) -> None:
    _, key = cluster.create_key("web-cluster", Limits())
    a, b = (openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0) for url in cluster.urls)
    messages: list[dict[str, str]] = []
    start = cluster.sim.recorded
    for turn, client in enumerate([a, b, a, b], start=1):
        messages.append({"role": "user", "content": f"turn {turn} text"})
        r = client.chat.completions.create(model="web/grok-3", messages=messages)  # type: ignore[arg-type]
        assert r.choices[0].message.content == f"[turn {turn}] You said: turn {turn} text"
        messages.append({"role": "assistant", "content": r.choices[0].message.content})
    for c in (a, b):
        c.close()
    # grok.com's chat gateway (the default protocol): one conversation, continued turn after turn
    creates = [
        b["event"]["session"]["x_grok"] for u, p, b in cluster.sim.since(start) if p == "ws:session.create"
    ]
    assert len(creates) == 4 and "conversation_id" not in creates[0]
    assert len({c["conversation_id"] for c in creates[1:]}) == 1
