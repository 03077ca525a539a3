"""Hand-written malformed input: each is a clear 4xx, OpenAI-shaped, and the gateway keeps serving.
Also the brute-force throttle and CORS."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from .helpers import (
    CHAT,
    Env,
    ServedApp,
    assert_openai_error,
    chat_body,
    gateway_settings,
    key_for,
    post,
    post_chat,
)


@pytest.mark.parametrize(
    "kind", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]
)
def test_wrong_content_type_is_415(env: Env, key: str, kind: str) -> None:
    r = post(
        env.base_url,
        key,
        content=b'{"model":"grok-4.20-non-reasoning","messages":[]}',
        headers={"Content-Type": kind},
    )
    err = assert_openai_error(r, 415)
    assert "application/json" in err["message"]  # type: ignore[operator]


def test_json_content_types_are_accepted(env: Env, key: str) -> None:
    body = b'{"model":"grok-4.20-non-reasoning","messages":[{"role":"user","content":"x"}]}'
    for kind in ("application/json", "application/json; charset=utf-8"):
        assert post(env.base_url, key, content=body, headers={"Content-Type": kind}).status_code == 200


def test_deep_nesting_is_400(env: Env, key: str) -> None:
    deep = (
        b'{"model":"grok-4.20-non-reasoning","messages":[{"role":"user","content":"x"}],"x":'
        + b"[" * 200
        + b"]" * 200
        + b"}"
    )
    assert assert_openai_error(post(env.base_url, key, content=deep), 400)["code"] == "too_deep"
    deeper = b"[" * 5000 + b"]" * 5000  # past the JSON parser's own limit
    assert_openai_error(post(env.base_url, key, content=deeper), 400)


def test_too_many_messages_is_400(env: Env, key: str) -> None:
    messages = [{"role": "user", "content": "x"}] * 2049
    r = post(env.base_url, key, json={"model": "grok-4.20-non-reasoning", "messages": messages})
    assert assert_openai_error(r, 400)["code"] == "too_many_messages"


def test_content_too_long_is_400(env: Env, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, env.sim, max_content_chars=1000)
    with ServedApp(settings) as served:
        r = post_chat(served.base_url, key_for(settings), "x" * 1001)
        assert assert_openai_error(r, 400)["code"] == "content_too_long"


def test_huge_headers_are_harmless(env: Env, key: str) -> None:
    r = post(env.base_url, key, json=chat_body("big"), headers={"X-Big": "a" * 200_000})
    assert r.status_code in (200, 400, 431)  # answered, either way: not a 5xx, not a hang
    assert post_chat(env.base_url, key).status_code == 200


def test_huge_headers_are_refused(env: Env, key: str) -> None:
    # a valid request but for one 200 kB header: only the header can make it a 4xx
    r = post(env.base_url, key, json=chat_body("big"), headers={"X-Big": "a" * 200_000})
    assert r.status_code in (400, 431)


def test_truncated_body_is_harmless(env: Env, key: str) -> None:
    host, port = env.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(
            f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":'.encode()
        )
    assert post_chat(env.base_url, key).status_code == 200


def test_garbage_request_line_is_harmless(env: Env, key: str) -> None:
    host, port = env.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
        assert s.recv(1024).startswith(b"HTTP/1.1 400 ")  # refused, as HTTP
    assert post_chat(env.base_url, key).status_code == 200


def test_failed_authentication_is_throttled_per_address(env: Env, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, env.sim, auth_failures_per_minute=5)
    with ServedApp(settings) as served:
        good = key_for(settings)
        for _ in range(5):
            assert post_chat(served.base_url, "gk-guess").status_code == 401
        r = post_chat(served.base_url, "gk-guess")
        err = assert_openai_error(r, 429)
        assert err["code"] == "too_many_auth_failures"
        assert int(r.headers["retry-after"]) >= 1
        assert post_chat(served.base_url, good).status_code == 200  # a key that verifies is never throttled


def test_cors_is_off_unless_configured(env: Env, tmp_path: Path) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    r = httpx.options(env.base_url + CHAT, headers=preflight)
    assert "access-control-allow-origin" not in r.headers
    settings = gateway_settings(tmp_path, env.sim, cors_origins="https://app.example")
    with ServedApp(settings) as served:
        ok = httpx.options(served.base_url + CHAT, headers={**preflight, "Origin": "https://app.example"})
        assert ok.headers["access-control-allow-origin"] == "https://app.example"
        r = httpx.post(
            served.base_url + CHAT,
            headers={"Origin": "https://app.example", "Authorization": f"Bearer {key_for(settings)}"},
            json={"model": "grok-4.20-non-reasoning", "messages": [{"role": "user", "content": "x"}]},
        )
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-ratelimit-remaining-tokens" in r.headers["access-control-expose-headers"]
        delete = {**preflight, "Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"}
        ok = httpx.options(served.base_url + "/v1/responses/resp_1", headers=delete)
        assert ok.status_code == 200 and "DELETE" in ok.headers["access-control-allow-methods"]
        bad = httpx.options(served.base_url + CHAT, headers=preflight)
        assert "access-control-allow-origin" not in bad.headers
