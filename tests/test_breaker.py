"""The circuit breaker chooses among targets and never refuses service (issue 10, item 4):
one failure per request, client-caused answers are not ill health, a 429 is a cool-down that
honours Retry-After, and with every target open requests still go through (panic mode)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from grok_api.errors import InvalidRequest, UpstreamError
from grok_api.upstreams.xai import _error_from_body

from .helpers import Env, ServedApp, gateway_settings, key_for, post_chat


def xai_state(url: str) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(url + "/ready").json()["checks"]["upstreams"]["xai"][0]
    return state


def sim_count(env: Env, prompt: str) -> int:
    return sum(1 for u, _, b in list(env.sim.requests) if u == "xai" and prompt in str(b["messages"]))


def single_target(env: Env, tmp_path: Path, **overrides: Any) -> ServedApp:
    values: dict[str, Any] = {
        "upstream_retries": 2,
        "upstream_backoff_base": 0.01,
        "upstream_backoff_max": 0.05,
        "breaker_threshold": 2,
        "breaker_reset": 300.0,  # no recovery by time within the test: only panic mode serves
        "upstream_cooldown_max": 60.0,
    }
    return ServedApp(gateway_settings(tmp_path, env.sim, **(values | overrides)))


def test_a_single_target_keeps_serving_through_failures(env: Env, tmp_path: Path) -> None:
    with single_target(env, tmp_path) as served:
        url, key = served.base_url, key_for(served.settings)
        tag = time.time()
        failing = f"fails {tag} [sim fault=500]"
        assert post_chat(url, key, failing).status_code == 502
        assert sim_count(env, failing) == 3  # one request, three attempts…
        assert xai_state(url)["consecutive_failures"] == 1  # …one failure
        assert post_chat(url, key, failing).status_code == 502
        assert xai_state(url)["state"] == "open"
        # every target open: ordinary requests still go through, and close the breaker
        assert post_chat(url, key, f"ordinary {tag}").status_code == 200
        assert xai_state(url)["state"] == "closed"
        for i in range(6):  # the upstream refuses the client's requests: not ill health
            assert post_chat(url, key, f"bad {tag} {i} [sim fault=400]").status_code == 400
        assert xai_state(url) | {"target": ""} == {
            "target": "",
            "state": "closed",
            "consecutive_failures": 0,
            "times_opened": 1,
        }
        for i in range(3):
            assert post_chat(url, key, f"fails again {tag} {i} [sim fault=503]").status_code == 503
            assert post_chat(url, key, f"in between {tag} {i}").status_code == 200
        assert post_chat(url, key, f"after {tag}").status_code == 200


def test_a_429_is_a_cool_down_not_ill_health(env: Env, tmp_path: Path) -> None:
    with single_target(env, tmp_path) as served:
        url, key = served.base_url, key_for(served.settings)
        busy = f"busy {time.time()} [sim fault=429 retry_after=30]"
        r = post_chat(url, key, busy)
        assert r.status_code == 429 and r.headers["retry-after"] == "30"
        assert sim_count(env, busy) == 1  # 30 s is longer than the backoff allows: passed on at once
        state = xai_state(url)
        assert state["state"] == "closed" and state["consecutive_failures"] == 0
        # the same model rests for its Retry-After: answered here, with the time left
        before = len(env.sim.requests)
        again = post_chat(url, key, "while it rests")
        assert again.status_code == 429
        assert 1 <= int(again.headers["retry-after"]) <= 30
        assert len(env.sim.requests) == before
        # another model is not rate limited
        assert post_chat(url, key, "another model", model="grok-4.3").status_code == 200


def test_credentials_are_matched_exactly() -> None:
    generic = "Client specified an invalid argument"
    ours = _error_from_body(400, {"code": generic, "error": "Incorrect API key provided: xa***ey."}, "xai")
    assert isinstance(ours, UpstreamError) and ours.code == "upstream_auth_failed"
    theirs = _error_from_body(400, {"code": generic, "error": "Your prompt mentions an API key: no."}, "xai")
    assert isinstance(theirs, InvalidRequest)


def test_two_targets_fail_over_with_one_failure_per_request(env: Env, tmp_path: Path) -> None:
    sim_url = env.sim.base_url + "/v1"
    settings = gateway_settings(
        tmp_path,
        env.sim,
        xai_base_url=f"http://127.0.0.1:9/v1,{sim_url}",
        upstream_retries=2,
        upstream_backoff_base=0.01,
        breaker_threshold=3,
        breaker_reset=300.0,
    )
    with ServedApp(settings) as served:
        key = key_for(settings)
        for i in range(2):
            assert post_chat(served.base_url, key, f"fail over {i}").status_code == 200
            assert xai_state(served.base_url)["consecutive_failures"] == i + 1
