"""What an outside review of the merged surfaces found, each pinned by a test.

Every request is real HTTP to a served gateway (or to the simulator itself), as the
third-party client that found it sent it.
"""

from __future__ import annotations

import httpx

from .conftest import UPSTREAM_KEY, Env


def test_a_user_turn_with_no_blocks_is_a_400_not_an_upstream_error(env: Env, key: str) -> None:
    """Anthropic refuses ``"content": []``; the gateway sent xAI an empty message list (502)."""
    mark = env.sim.recorded
    for content in ([], [{"type": "thinking", "thinking": "x", "signature": "s"}]):
        r = httpx.post(
            env.base_url + "/v1/messages",
            headers={"x-api-key": key},
            json={"model": "grok-4.3", "max_tokens": 10, "messages": [{"role": "user", "content": content}]},
        )
        assert r.status_code == 400, r.text
        assert r.json()["type"] == "error"
        assert r.json()["error"]["type"] == "invalid_request_error"
        assert "messages.0.content" in r.json()["error"]["message"]
    assert env.sim.recorded == mark  # nothing went upstream


def test_the_simulator_answers_an_empty_message_list_with_a_400(env: Env) -> None:
    """As xAI does, instead of failing with a 500 and a traceback in the demo's log."""
    r = httpx.post(
        env.sim.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {UPSTREAM_KEY}"},
        json={"model": "grok-4.3", "messages": []},
    )
    assert r.status_code == 400, r.text
    assert "messages" in r.json()["error"]
