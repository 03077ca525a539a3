"""Errors outside the chat logic are OpenAI-shaped too: routes, methods, sizes, bodies."""

from __future__ import annotations

import httpx
import pytest

from .helpers import Env, assert_openai_error


def test_unknown_route_is_404(env: Env) -> None:
    err = assert_openai_error(httpx.get(env.base_url + "/v1/nothing-here"), 404)
    assert "/v1/nothing-here" in err["message"]  # type: ignore[operator]


def test_wrong_method_is_405(env: Env, key: str) -> None:
    assert_openai_error(httpx.get(env.base_url + "/v1/chat/completions", headers={"x-api-key": key}), 405)
    assert_openai_error(httpx.delete(env.base_url + "/v1/models"), 405)


def test_body_over_the_limit_is_413(env: Env, key: str) -> None:
    big = (
        b'{"model":"grok-4.20-non-reasoning","messages":[{"role":"user","content":"'
        + b"x" * (11 * 1024 * 1024)
        + b'"}]}'
    )
    r = httpx.post(env.base_url + "/v1/chat/completions", headers={"x-api-key": key}, content=big)
    assert assert_openai_error(r, 413)["code"] == "request_too_large"


def test_chunked_body_over_the_limit_is_413(env: Env, key: str) -> None:
    def chunks() -> object:
        for _ in range(12):
            yield b"x" * (1024 * 1024)

    r = httpx.post(env.base_url + "/v1/chat/completions", headers={"x-api-key": key}, content=chunks())  # type: ignore[arg-type]
    assert_openai_error(r, 413)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"", "invalid_json"),
        (b'{"model": "grok-4.20-non-reasoning", "messages": [', "invalid_json"),
        (b"[1, 2, 3]", "invalid_body"),
        (b'"just a string"', "invalid_body"),
        (b"\xff\xfe not utf-8", "invalid_json"),
    ],
)
def test_malformed_bodies_are_400(env: Env, key: str, content: bytes, code: str) -> None:
    r = httpx.post(env.base_url + "/v1/chat/completions", headers={"x-api-key": key}, content=content)
    assert assert_openai_error(r, 400)["code"] == code


def test_health_and_ready(env: Env) -> None:
    assert httpx.get(env.base_url + "/health").json() == {"status": "ok"}
    ready = httpx.get(env.base_url + "/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"
    assert [t["state"] for t in ready.json()["checks"]["upstreams"]["xai"]] == ["closed"]


def test_openapi_schema_describes_the_chat_body(env: Env) -> None:
    spec = httpx.get(env.base_url + "/openapi.json").json()
    body = spec["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]
    assert "messages" in body["schema"]["properties"]
