"""The failed-authentication throttle (issue 10, item 5): guessers meet 429s, valid keys never do,
and X-Forwarded-For is believed only from the proxies the operator lists."""

from __future__ import annotations

from pathlib import Path

import httpx

from .helpers import ADMIN_KEY, Env, ServedApp, gateway_settings, key_for, post_chat
from .test_http_errors import assert_openai_error

URL = "/v1/chat/completions"
BODY = {"model": "grok-4.20-non-reasoning", "messages": [{"role": "user", "content": "x"}]}


def guess(base_url: str, i: int, forwarded: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer gk-guess-{i}"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    return httpx.post(base_url + URL, headers=headers, json=BODY)


def test_guessers_are_throttled_but_valid_keys_are_served(env: Env, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, env.sim, auth_failures_per_minute=30)
    with ServedApp(settings) as served:
        good = key_for(settings)
        statuses = [guess(served.base_url, i).status_code for i in range(45)]
        assert statuses[:30] == [401] * 30
        assert statuses[30:] == [429] * 15
        r = guess(served.base_url, 99)
        assert assert_openai_error(r, 429)["code"] == "too_many_auth_failures"
        assert int(r.headers["retry-after"]) >= 1
        # the same address, a key that verifies: served, not throttled
        assert post_chat(served.base_url, good).status_code == 200
        assert httpx.get(
            served.base_url + "/v1/models", headers={"Authorization": f"Bearer {good}"}
        ).is_success
        # the admin API has its own throttle: client-key guessers do not lock the admin out
        assert httpx.get(served.base_url + "/admin/keys", headers={"x-api-key": ADMIN_KEY}).status_code == 200
        wrong = [
            httpx.get(served.base_url + "/admin/keys", headers={"x-api-key": "w" * 32}).status_code
            for _ in range(31)
        ]
        assert wrong[:30] == [401] * 30 and wrong[30] == 429
        assert httpx.get(served.base_url + "/admin/keys", headers={"x-api-key": ADMIN_KEY}).status_code == 200
        assert post_chat(served.base_url, good).status_code == 200


def test_a_new_forwarded_address_per_guess_does_not_dodge_it(env: Env, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, env.sim, auth_failures_per_minute=30)
    with ServedApp(settings) as served:
        statuses = [guess(served.base_url, i, forwarded=f"203.0.113.{i}").status_code for i in range(45)]
    assert statuses[30:] == [429] * 15


def test_forwarded_addresses_count_when_the_proxy_is_listed(env: Env, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, env.sim, auth_failures_per_minute=30, trusted_proxies="127.0.0.1")
    with ServedApp(settings) as served:
        spread = [guess(served.base_url, i, forwarded=f"203.0.113.{i}").status_code for i in range(45)]
        assert spread == [401] * 45  # each guess from a different client behind the proxy
        one = [guess(served.base_url, i, forwarded="198.51.100.7").status_code for i in range(31)]
        assert one[30] == 429
        assert guess(served.base_url, 0, forwarded="198.51.100.8").status_code == 401  # others unaffected
