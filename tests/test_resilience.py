"""Retries before the first byte, Retry-After, credential and base-URL failover, circuit
breakers, keep-alives and in-band stream errors — each through a gateway of its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from grok_api.resilience import Breaker
from grok_api.simulator import SimulatorConfig, SimulatorThread

from .helpers import (
    UPSTREAM_KEY,
    Env,
    ServedApp,
    free_port,
    gateway_settings,
    key_for,
    post_chat,
    stream_frames,
)


@contextmanager
def gateway(env: Env, tmp_path: Path, **overrides: Any) -> Iterator[tuple[str, str]]:
    """A served gateway with ``overrides``, and a key for it: (base URL, key)."""
    values: dict[str, Any] = {
        "upstream_retries": 2,
        "upstream_backoff_base": 0.05,
        "upstream_backoff_max": 2.0,
    }
    values |= overrides
    settings = gateway_settings(tmp_path, env.sim, **values)
    with ServedApp(settings) as served:
        yield served.base_url, key_for(settings)


def sim_count(env: Env, prompt: str) -> int:
    return sum(1 for u, _, b in list(env.sim.requests) if u == "xai" and prompt in str(b.get("messages")))


def test_a_500_then_success_is_retried_and_served(env: Env, tmp_path: Path) -> None:
    with gateway(env, tmp_path) as (url, key):
        prompt = f"flaky {time.time()} [sim fault=500 times=1]"
        r = post_chat(url, key, prompt)
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"].startswith("[turn 1] You said: flaky")
        assert sim_count(env, prompt) == 2


def test_retries_give_up_after_the_policy(env: Env, tmp_path: Path) -> None:
    with gateway(env, tmp_path) as (url, key):
        prompt = f"always {time.time()} [sim fault=503]"
        r = post_chat(url, key, prompt)
        assert r.status_code == 503
        assert sim_count(env, prompt) == 3  # one try and two retries


def test_a_short_retry_after_is_honoured(env: Env, tmp_path: Path) -> None:
    with gateway(env, tmp_path) as (url, key):
        prompt = f"busy {time.time()} [sim fault=429 retry_after=1 times=1]"
        started = time.monotonic()
        r = post_chat(url, key, prompt)
        assert r.status_code == 200
        assert time.monotonic() - started >= 1.0  # waited as the upstream asked


def test_a_long_retry_after_is_passed_on(env: Env, tmp_path: Path) -> None:
    with gateway(env, tmp_path) as (url, key):
        started = time.monotonic()
        r = post_chat(url, key, f"busy {time.time()} [sim fault=429 retry_after=30]")
        assert r.status_code == 429
        assert r.headers["retry-after"] == "30"
        assert time.monotonic() - started < 2


def test_a_stream_is_never_replayed_once_it_began(env: Env, tmp_path: Path) -> None:
    with gateway(env, tmp_path) as (url, key):
        prompt = f"a b c d e {time.time()} [sim fault=cut after=2]"
        _, frames = stream_frames(url, key, prompt)
        assert frames[-2].startswith('data: {"error":')
        assert sim_count(env, prompt) == 1


def test_credentials_fail_over(env: Env, tmp_path: Path) -> None:
    with gateway(env, tmp_path, xai_api_key=f"xai-revoked-one,{UPSTREAM_KEY}") as (url, key):
        r = post_chat(url, key, "with the second key")
        assert r.status_code == 200
        targets = httpx.get(url + "/ready").json()["checks"]["upstreams"]["xai"]
        assert [t["target"].split(" ")[-1] for t in targets] == ["1)", "2)"]
        assert "xai-revoked-one" not in str(targets)
        assert targets[0]["consecutive_failures"] == 1


def test_breaker_opens_and_recovers(env: Env, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet
    primary = f"http://127.0.0.1:{port}/v1"
    settings = {
        "xai_base_url": f"{primary},{env.sim.base_url}/v1",
        "breaker_threshold": 2,
        "breaker_reset": 1.0,
    }
    with gateway(env, tmp_path, **settings) as (url, key):

        def primary_state() -> str:
            return str(httpx.get(url + "/ready").json()["checks"]["upstreams"]["xai"][0]["state"])

        for _ in range(2):  # the primary refuses; each request fails over to the simulator
            assert post_chat(url, key, "failover").status_code == 200
        assert primary_state() == "open"
        assert post_chat(url, key, "skips the primary").status_code == 200
        with SimulatorThread(SimulatorConfig(xai_api_key=UPSTREAM_KEY), port=port) as recovered:
            time.sleep(1.1)
            assert post_chat(url, key, "probe").status_code == 200  # the half-open probe
            assert primary_state() == "closed"
            assert recovered.stats["xai_requests"] == 1
        metrics = httpx.get(url + "/metrics").text
        assert "grok_api_upstream_circuit_open" in metrics


def test_breaker_states() -> None:
    now = [0.0]
    b = Breaker(threshold=3, reset_after=10, clock=lambda: now[0])
    for _ in range(2):
        b.failure()
    assert b.allow()
    b.failure()
    assert b.state == "open"
    assert not b.allow()
    now[0] = 10.0
    assert b.allow()  # one probe
    assert not b.allow()  # and only one
    b.failure()
    assert b.state == "open"
    now[0] = 20.0
    assert b.allow()
    b.success()
    assert b.state == "closed"
    assert b.describe() == {"state": "closed", "consecutive_failures": 0, "times_opened": 2}


def test_keep_alive_while_waiting_for_the_first_token(env: Env, tmp_path: Path) -> None:
    with gateway(env, tmp_path, sse_keepalive=0.3) as (url, key):
        r, frames = stream_frames(url, key, "slow [sim latency=1.2]")
        assert r.status_code == 200
        first_data = next(i for i, f in enumerate(frames) if f.startswith("data:"))
        assert first_data >= 2
        assert all(f == ": keep-alive" for f in frames[:first_data])
        assert frames[-1] == "data: [DONE]"


def test_a_first_byte_timeout_after_keep_alives_is_an_error_event(env: Env, tmp_path: Path) -> None:
    with gateway(env, tmp_path, sse_keepalive=0.3, upstream_first_byte_timeout=1.0) as (url, key):
        r, frames = stream_frames(url, key, "x [sim fault=hang]")
        assert r.status_code == 200
        assert frames[0] == ": keep-alive"
        assert '"code":"upstream_timeout"' in frames[-2]
        assert frames[-1] == "data: [DONE]"
        assert "grok_api_stream_errors_total 1.0" in httpx.get(url + "/metrics").text


@pytest.mark.parametrize("stream", [False, True])
def test_total_timeout(env: Env, tmp_path: Path, stream: bool) -> None:
    with gateway(env, tmp_path, upstream_total_timeout=1.0) as (url, key):
        _, frames = stream_frames(url, key, "long [sim tokens=60 rate=20]", stream=stream)
        assert "upstream_timeout" in "".join(frames)
