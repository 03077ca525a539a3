"""What an outside review of the merged surfaces found, each pinned by a test.

Every request is real HTTP to a served gateway (or to the simulator itself), as the
third-party client that found it sent it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from grok_api.conversations import Conversations, MemoryConversations
from grok_api.errors import UpstreamError
from grok_api.upstreams.web import WebOptions, WebUpstream

from .helpers import ADMIN_KEY, UPSTREAM_KEY, WEB_AGENT, WEB_COOKIES, Env, free_socket


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


def _keys_create(
    data_dir: Path, *extra: str, name: str = "n", **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GROK_API_", "XAI_"))}
    environ |= {"GROK_API_DATA_DIR": str(data_dir), **env}
    return subprocess.run(
        [sys.executable, "-m", "grok_api", "keys", "create", "--name", name, *extra],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_keys_create_says_when_a_running_demo_will_not_accept_the_key(tmp_path: Path) -> None:
    """README, literally: ``make run``, then ``grok-api keys create`` — and the demo answers that
    key with 401, since demo keys live in the demo's own store. The command now says so."""
    assert "running" not in _keys_create(tmp_path).stderr  # no demo: no note
    mine = _keys_create(tmp_path, GROK_API_DEMO="1")  # a key of one's own in the demo's store
    assert mine.returncode == 0 and "running" not in mine.stderr
    assert "running" not in _keys_create(tmp_path).stderr  # it stays when the demo stops: no note
    demo = _keys_create(tmp_path, "--json", name="demo", GROK_API_DEMO="1")  # the running demo's key
    assert demo.returncode == 0 and "running" not in demo.stderr
    made = _keys_create(tmp_path, "--json")
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["key"].startswith("gk-")  # the JSON stays clean
    assert "demo gateway (serve --demo) is running" in made.stderr
    assert "GROK_API_DEMO=1 grok-api keys create" in made.stderr
    real = _keys_create(tmp_path, XAI_API_KEY="xai-a-real-upstream-key")  # a real gateway's key
    assert real.returncode == 0 and "demo" not in real.stderr


def _admin_create(env: Env, body: dict[str, object]) -> httpx.Response:
    return httpx.post(
        env.base_url + "/admin/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, json=body
    )


def test_admin_key_create_treats_an_empty_model_list_as_every_model_like_edit_does(env: Env) -> None:
    """``PATCH`` took ``"models": []`` as every model, ``POST`` as none: a key that could do nothing."""
    r = _admin_create(env, {"name": "empty-list", "models": []})
    assert r.status_code == 200, r.text
    assert r.json()["models"] is None
    listed = httpx.get(env.base_url + "/v1/models", headers={"Authorization": f"Bearer {r.json()['key']}"})
    assert listed.status_code == 200 and len(listed.json()["data"]) > 0


def test_admin_key_create_bounds_what_it_stores(env: Env) -> None:
    """A blank name, 10,000 model ids of 1,000 characters (10 MB, stored and read back on every
    key lookup): 400s in OpenAI's shape."""
    for body, param in (
        ({"name": "   "}, "name"),
        ({"name": "many", "models": [f"m{i}" for i in range(1001)]}, "models"),
        ({"name": "long", "models": ["m" * 257]}, "models"),
    ):
        r = _admin_create(env, body)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["error"]["param"].startswith(param)
    assert _admin_create(env, {"name": "fine", "models": ["m" * 256] * 1000}).status_code == 200


def test_count_tokens_keeps_the_bounds_and_the_allowed_models_of_a_message(env: Env) -> None:
    """count_tokens parsed any body up to the size limit (millions of values, which every other
    surface refuses before parsing) and counted for models the key may not use."""
    _, key = env.create_key("counter", models=["grok-4.3"])
    url, headers = (
        env.base_url + "/v1/messages/count_tokens",
        {"x-api-key": key, "content-type": "application/json"},
    )
    many = (
        b'{"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}], "x": ['
        + b"0," * 200_000
        + b"0]}"
    )
    r = httpx.post(url, headers=headers, content=many)
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    other = {"model": "grok-4.5", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(url, headers=headers, json=other)
    assert r.status_code == 403 and r.json()["error"]["type"] == "permission_error", r.text
    r = httpx.post(url, headers=headers, json={**other, "model": "grok-4.3"})
    assert r.status_code == 200 and r.json()["input_tokens"] > 0


def test_grok_com_images_are_fetched_with_the_session_only_from_grok_coms_hosts(env: Env) -> None:
    """An absolute image link in a grok.com answer was fetched with the user's grok.com cookies
    whatever its host (``GROK_API_WEB_IMAGES=proxy``, ``b64_json``)."""
    listener = free_socket()
    listener.listen()
    foreign = f"http://localhost:{listener.getsockname()[1]}/steal.png"  # not grok.com's host

    async def go() -> bytes:
        upstream = WebUpstream(
            base_url=env.sim.base_url,
            cookies=WEB_COOKIES,
            user_agent=WEB_AGENT,
            conversations=Conversations(MemoryConversations(ttl=60)),
            options=WebOptions(images="proxy", assets_url=env.sim.base_url),
        )
        try:
            assert upstream.images is not None
            with pytest.raises(UpstreamError, match=r"outside grok\.com"):
                await upstream.images.get(upstream.images.link(foreign).rsplit("/", 1)[1])
            own = upstream.images.link(env.sim.base_url + "/users/sim/generated/x/image.jpg")
            found = await upstream.images.get(own.rsplit("/", 1)[1])
            assert found is not None
            return found[0]
        finally:
            await upstream.aclose()

    try:
        assert asyncio.run(go()).startswith(b"\xff\xd8")  # grok.com's own asset host still works
        listener.setblocking(False)
        with pytest.raises(BlockingIOError):
            listener.accept()  # nothing ever connected to the foreign host
    finally:
        listener.close()
