"""Limits, usage accounting and the admin API, through one served gateway (in-process limits)."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from grok_api.store import Limits

from .helpers import ADMIN_KEY, Env, ServedApp, cli_ok, gateway_settings, post_chat, stream_frames, usage_rows


def flush(env: Env) -> None:
    env.app.call(env.app.app.state.gateway.usage.flush())


def test_rate_limit_headers_and_429(env: Env) -> None:
    _, key = env.create_key("rpm3", limits=Limits(rpm=3))
    seen = []
    for _ in range(3):
        r = post_chat(env.base_url, key)
        assert r.status_code == 200
        assert r.headers["x-ratelimit-limit-requests"] == "3"
        seen.append(r.headers["x-ratelimit-remaining-requests"])
        assert r.headers["x-ratelimit-reset-requests"].endswith("s")
    assert seen == ["2", "1", "0"]
    refused = post_chat(env.base_url, key)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    err = refused.json()["error"]
    assert err["code"] == "rate_limit_requests"
    assert "3 requests per minute" in err["message"]
    with pytest.raises(openai.RateLimitError):
        env.client(key).chat.completions.create(
            model="grok-4.20-non-reasoning", messages=[{"role": "user", "content": "x"}]
        )


def test_streams_carry_the_headers_too(env: Env) -> None:
    _, key = env.create_key("tpm", limits=Limits(tpm=100_000))
    r, frames = stream_frames(env.base_url, key, "x", max_tokens=50)
    assert frames[-1] == "data: [DONE]"
    assert r.headers["x-ratelimit-limit-tokens"] == "100000"
    assert int(r.headers["x-ratelimit-remaining-tokens"]) == 100_000 - 50 - 5  # max_tokens + prompt estimate


def test_token_budget_is_insufficient_quota(env: Env) -> None:
    _, key = env.create_key("budget", limits=Limits(budget_total=20))
    client = env.client(key)
    used = 0
    with pytest.raises(openai.RateLimitError) as info:
        for _ in range(20):  # until what is left no longer covers a prompt and its answer
            r = client.chat.completions.create(
                model="grok-4.20-non-reasoning", messages=[{"role": "user", "content": "spend"}]
            )
            assert r.usage is not None
            used += r.usage.total_tokens
    assert info.value.body["code"] == "insufficient_quota"  # type: ignore[index]
    assert 0 < used <= 20 + 5  # answers are capped to what is left: no more than estimate error over


def test_usage_is_recorded_per_key_and_model(env: Env) -> None:
    record, key = env.create_key("counted")
    client = env.client(key)
    served = {"prompt": 0, "completion": 0, "reasoning": 0}
    for model in ("grok-4.20-non-reasoning", "grok-4.20-non-reasoning", "grok-3-mini"):
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "count this"}])
        assert r.usage is not None and r.usage.completion_tokens_details is not None
        served["prompt"] += r.usage.prompt_tokens
        served["completion"] += r.usage.completion_tokens
        served["reasoning"] += r.usage.completion_tokens_details.reasoning_tokens or 0
    chunks = list(
        client.chat.completions.create(
            model="grok-4.20-non-reasoning",
            messages=[{"role": "user", "content": "stream this"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage is not None
    served["prompt"] += chunks[-1].usage.prompt_tokens
    served["completion"] += chunks[-1].usage.completion_tokens
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(
            model="grok-4.20-non-reasoning", messages=[{"role": "user", "content": "[sim fault=500]"}]
        )
    flush(env)
    rows = {r["model"]: r for r in usage_rows(env.base_url, record.id)}
    assert rows["grok-4.20-non-reasoning"]["requests"] == 4
    assert rows["grok-4.20-non-reasoning"]["errors"] == 1
    assert rows["grok-3-mini"]["requests"] == 1
    assert sum(r["prompt_tokens"] for r in rows.values()) == served["prompt"]  # type: ignore[misc]
    assert sum(r["completion_tokens"] for r in rows.values()) == served["completion"]  # type: ignore[misc]
    assert rows["grok-3-mini"]["reasoning_tokens"] == served["reasoning"]
    assert not any(r["estimated"] for r in rows.values())


def test_abandoned_stream_is_charged_for_what_was_delivered(env: Env) -> None:
    record, key = env.create_key("abandoner")
    received = ""
    with httpx.stream(
        "POST",
        env.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "grok-4.20-non-reasoning",
            "stream": True,
            "messages": [{"role": "user", "content": "long one [sim tokens=400 rate=100]"}],
        },
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                received += json.loads(line[6:])["choices"][0]["delta"].get("content", "")
            if len(received) > 40:
                break  # the client goes away mid-stream
    deadline = time.monotonic() + 5
    rows: list[dict[str, object]] = []
    while time.monotonic() < deadline and not rows:
        time.sleep(0.1)
        flush(env)
        rows = usage_rows(env.base_url, record.id)
    assert len(rows) == 1
    row = rows[0]
    assert row["requests"] == 1
    assert row["estimated"] is True
    # charged for roughly what was delivered (1 token per 4 chars), far less than the 400 asked
    assert 1 <= row["completion_tokens"] < 100  # type: ignore[operator]


def test_admin_api_needs_the_admin_key(env: Env, key: str) -> None:
    url = env.base_url + "/admin/usage"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 401  # a client key
    ok = httpx.get(url, headers={"x-api-key": ADMIN_KEY})
    assert ok.status_code == 200
    assert ok.json()["object"] == "list"
    record, secret = env.create_key("listed")
    listed = httpx.get(env.base_url + "/admin/keys", headers={"x-api-key": ADMIN_KEY})
    assert listed.status_code == 200
    keys = {k["id"]: k for k in listed.json()["data"]}
    assert keys[record.id]["name"] == "listed"  # the key is listed...
    assert all("key_hash" not in k and "key" not in k for k in keys.values())  # ...never its secret
    assert secret not in listed.text and record.key_hash not in listed.text


def test_admin_revoke(env: Env) -> None:
    record, key = env.create_key("admin-revoked")
    assert post_chat(env.base_url, key).status_code == 200
    r = httpx.post(f"{env.base_url}/admin/keys/{record.id}/revoke", headers={"x-api-key": ADMIN_KEY})
    assert r.status_code == 200
    assert r.json()["status"] == "revoked"
    assert post_chat(env.base_url, key).status_code == 401  # at once on this instance
    missing = httpx.post(f"{env.base_url}/admin/keys/key_nope/revoke", headers={"x-api-key": ADMIN_KEY})
    assert missing.status_code == 404


def metric(text: str, name: str) -> float:
    (value,) = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    return value


def test_metrics_and_ready(env: Env, key: str) -> None:
    ok, tokens = 'grok_api_chat_requests_total{outcome="ok"}', 'grok_api_tokens_total{kind="total"}'
    before = httpx.get(env.base_url + "/metrics").text
    r = post_chat(env.base_url, key)
    assert r.status_code == 200
    deadline = time.monotonic() + 10  # the request is settled just after its answer was sent
    while metric(text := httpx.get(env.base_url + "/metrics").text, ok) == metric(before, ok):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert metric(text, ok) == metric(before, ok) + 1  # this request was counted...
    assert metric(text, tokens) == metric(before, tokens) + r.json()["usage"]["total_tokens"]
    assert ADMIN_KEY not in text and key not in text  # ...with no secret in the text
    assert httpx.get(env.base_url + "/ready").json()["checks"]["limits"] == "in process"


def test_cli_update_and_usage(env: Env) -> None:
    record, key = env.create_key("cli-usage")
    assert post_chat(env.base_url, key).status_code == 200
    flush(env)

    def keys(*args: str) -> str:
        return cli_ok("keys", *args, data_dir=env.settings.data_dir)

    rows = json.loads(keys("usage", "--key", record.id, "--json"))
    assert [(r["key_name"], r["model"], r["requests"]) for r in rows] == [
        ("cli-usage", "grok-4.20-non-reasoning", 1)
    ]
    assert "cli-usage" in keys("usage", "--since", "2020-01-01")
    updated = json.loads(keys("update", record.id, "--rpm", "1", "--daily-tokens", "500", "--json"))
    assert updated["limits"]["rpm"] == 1
    assert updated["limits"]["budget_day"] == 500
    time.sleep(env.settings.key_cache_ttl + 0.1)
    assert post_chat(env.base_url, key).status_code == 200
    assert post_chat(env.base_url, key).status_code == 429
    cleared = json.loads(keys("update", record.id, "--rpm", "0", "--json"))
    assert cleared["limits"]["rpm"] is None


def test_workers_without_redis_are_flagged_in_ready(env: Env) -> None:
    settings = gateway_settings(env.settings.data_dir, env.sim, workers=3)
    with ServedApp(settings) as served:
        state = httpx.get(served.base_url + "/ready").json()["checks"]["limits"]
    assert "3 workers multiply every per-key limit" in state
