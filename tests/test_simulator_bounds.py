"""The simulator bounds its own work (issue 10, item 9): answer lengths are capped, and the
demo's simulator (inside the gateway) keeps no request bodies."""

from __future__ import annotations

from pathlib import Path

import httpx

from .helpers import UPSTREAM_KEY, Env, ServedApp, gateway_settings, key_for, post_chat


def test_answer_length_is_capped(env: Env) -> None:
    r = httpx.post(
        env.sim.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {UPSTREAM_KEY}"},
        json={
            "model": "grok-4.20-non-reasoning",
            "messages": [{"role": "user", "content": "x [sim tokens=500000]"}],
        },
        timeout=60,
    )
    assert r.status_code == 200
    assert r.json()["usage"]["completion_tokens"] == 100_000


def test_the_demo_simulator_keeps_no_request_bodies(env: Env, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, env.sim, demo=True)
    with ServedApp(settings) as served:
        assert post_chat(served.base_url, key_for(settings), "a private prompt").status_code == 200
        gateway = served.app.state.gateway
        sim_url = gateway.router.upstreams["xai"].targets[0].upstream.base_url.removesuffix("/v1")
        assert sim_url != env.sim.base_url  # the demo's own simulator
        assert httpx.get(sim_url + "/_sim/stats").json()["xai_requests"] == 1
        assert httpx.get(sim_url + "/_sim/requests").json() == []
