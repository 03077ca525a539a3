"""Every simulator fault mode, through the gateway, maps to the status the issue names."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from .helpers import Env, ServedApp, ask, gateway_settings, post_chat, stream_frames


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("400", openai.BadRequestError, 400),
        ("401", openai.APIStatusError, 502),
        ("403", openai.APIStatusError, 502),
        ("429", openai.RateLimitError, 429),
        ("500", openai.APIStatusError, 502),
        ("503", openai.APIStatusError, 503),
    ],
)
def test_upstream_http_faults(
    client: openai.OpenAI, fault: str, error: type[Exception], stream: bool, status: int
) -> None:
    with pytest.raises(error) as info:
        result = ask(client, f"hi [sim fault={fault}]", stream=stream)
        list(result) if stream else None  # type: ignore[call-overload]
    exc = info.value
    assert isinstance(exc, openai.APIStatusError)
    assert exc.status_code == status
    body = exc.body
    assert isinstance(body, dict) and set(body) >= {"message", "type", "param", "code"}


def test_upstream_credentials_refused_never_leak_the_key(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        ask(client, "hi [sim fault=401]")
    assert info.value.status_code == 502
    assert "credentials" in info.value.message
    assert info.value.body["code"] == "upstream_auth_failed"  # type: ignore[index]


def test_wrong_upstream_key_is_a_502_without_the_key(env: Env) -> None:
    settings = gateway_settings(env.settings.data_dir, env.sim, xai_api_key="xai-wrong-secret-value")
    with ServedApp(settings) as served:
        _, key = env.create_key("wrong-upstream")
        r = post_chat(served.base_url, key)
    assert r.status_code == 502
    assert "XAI_API_KEY" in r.json()["error"]["message"]
    assert "wrong-secret" not in r.text and "xa***ue" not in r.text


def test_rate_limit_passes_retry_after(env: Env, key: str) -> None:
    r = httpx.post(
        env.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "grok-4.20-non-reasoning",
            "messages": [{"role": "user", "content": "x [sim fault=429 retry_after=7]"}],
        },
    )
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7"
    assert r.json()["error"]["type"] == "rate_limit_error"


def test_unknown_model_is_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        ask(client, "x", model="grok-does-not-exist")
    assert info.value.body["code"] == "model_not_found"  # type: ignore[index]


@pytest.mark.parametrize("stream", [False, True])
def test_hang_is_504_within_the_read_timeout(client: openai.OpenAI, env: Env, stream: bool) -> None:
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        ask(client, "x [sim fault=hang]", stream=stream)
    assert info.value.status_code == 504
    assert time.monotonic() - started < env.settings.upstream_read_timeout + 2


@pytest.mark.parametrize(("fault", "text"), [("cut", "cut"), ("stall", "stall"), ("malformed", "malformed")])
def test_mid_stream_fault_ends_with_error_event_and_done(env: Env, key: str, fault: str, text: str) -> None:
    r, frames = stream_frames(env.base_url, key, f"one two three four five [sim fault={fault} after=3]")
    assert r.status_code == 200
    assert frames[-1] == "data: [DONE]"
    assert frames[-2].startswith('data: {"error":')
    text = "".join(
        json.loads(f[6:])["choices"][0]["delta"].get("content", "")
        for f in frames[:-2]
        if '"choices":[{' in f
    )
    assert text == "[turn 1] You "  # the three tokens delivered before the fault are kept


def test_mid_stream_fault_surfaces_in_the_sdk(client: openai.OpenAI) -> None:
    stream = ask(client, "a b c d e f [sim fault=cut after=2]", stream=True)
    with pytest.raises(openai.APIError):
        list(stream)  # type: ignore[call-overload]


def test_unreachable_upstream_is_503(env: Env) -> None:
    settings = gateway_settings(env.settings.data_dir, env.sim, xai_base_url="http://127.0.0.1:9/v1")
    with ServedApp(settings) as served:
        _, key = env.create_key("dead-upstream")
        r = post_chat(served.base_url, key)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "upstream_unavailable"
        # and the gateway itself stays up
        assert httpx.get(served.base_url + "/health").status_code == 200


def test_gateway_keeps_serving_after_faults(client: openai.OpenAI) -> None:
    for fault in ("500", "cut", "malformed"):
        with pytest.raises(openai.APIError):  # each fault really happened...
            list(ask(client, f"x [sim fault={fault}]", stream=True))  # type: ignore[call-overload]
    r = ask(client, "still here")
    assert r.choices[0].message.content == "[turn 1] You said: still here"  # type: ignore[attr-defined]
