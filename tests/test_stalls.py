"""One request cannot freeze the gateway (issue 10, items 7 and 12): bodies of millions of tiny
values are refused before parsing, a key past its rate is refused before its body is parsed,
and clients that leave before their body is read are not errors."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
import time
from pathlib import Path

import httpx
import pytest

from grok_api.api.schemas import _depth
from grok_api.jsonbounds import deeper_than, too_many_values, too_many_values_async

from .helpers import Env, ServedApp, gateway_settings, key_for, post_chat
from .test_http_errors import assert_openai_error

URL = "/v1/chat/completions"


def body_with(extra: bytes) -> bytes:
    return (
        b'{"model":"grok-4.20-non-reasoning","messages":[{"role":"user","content":"hi"}],"x":' + extra + b"}"
    )


def empty_arrays(n: int) -> bytes:
    return b"[" + b",".join([b"[]"] * n) + b"]"


def post_raw(base_url: str, key: str, raw: bytes) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return httpx.post(base_url + URL, content=raw, headers=headers, timeout=60)


def test_millions_of_values_are_refused_before_parsing(env: Env, key: str) -> None:
    for extra in (empty_arrays(3_000_000), b"[" + b",".join([b'""'] * 2_500_000) + b"]"):
        r = post_raw(env.base_url, key, body_with(extra))
        assert assert_openai_error(r, 400)["code"] == "too_many_values"
    assert post_chat(env.base_url, key).status_code == 200


def test_many_values_within_the_bound_are_served(env: Env, key: str) -> None:
    r = post_raw(env.base_url, key, body_with(empty_arrays(40_000)))  # 80,000 commas and brackets
    assert r.status_code == 200, r.text
    prose = "a, [b], {c}, " * 200_000  # commas and brackets inside a string are one value
    r = post_raw(
        env.base_url,
        key,
        json.dumps(
            {"model": "grok-4.20-non-reasoning", "messages": [{"role": "user", "content": prose}]}
        ).encode(),
    )
    assert r.status_code == 200, r.text[:300]


def test_a_key_past_its_rate_is_refused_before_its_body_is_parsed(env: Env, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, env.sim)
    with ServedApp(settings) as served:
        key = key_for(settings, rpm=1)
        assert post_chat(served.base_url, key).status_code == 200
        assert post_chat(served.base_url, key).status_code == 429
        # the body is not even looked at: the key's refusal comes before parsing (which would
        # have found neither the huge body nor the broken one acceptable)
        for raw in (body_with(empty_arrays(3_000_000)), b'{"model": not json'):
            r = post_raw(served.base_url, key, raw)
            err = assert_openai_error(r, 429)
            assert err["code"] == "rate_limit_requests"
            assert int(r.headers["retry-after"]) >= 1
        other = key_for(settings, rpm=1)
        assert post_chat(served.base_url, other).status_code == 200  # other keys are not affected


def test_byte_measures_match_the_parsed_document() -> None:
    rng = random.Random(7)

    def doc(depth: int) -> object:
        if depth > 7 or rng.random() < 0.3:
            return rng.choice([1, 'a[{"', "x\\\\", None, "]},", ""])
        if rng.random() < 0.5:
            return [doc(depth + 1) for _ in range(rng.randint(0, 3))]
        return {f'k{i}"[,': doc(depth + 1) for i in range(rng.randint(0, 3))}

    for _ in range(2000):
        d = doc(0)
        raw = json.dumps(d).encode()
        for limit in (1, 2, 3, 5, 8):
            assert deeper_than(raw, limit) == (_depth(d) > limit), raw
    assert not too_many_values(json.dumps({"t": "," * 10_000}).encode(), 100)
    assert too_many_values(json.dumps([[]] * 200).encode(), 100)
    assert too_many_values(json.dumps([""] * 200).encode(), 100)
    # past a megabyte the check runs in slices, letting the loop through: the same answers
    for big in (
        json.dumps({"t": ", [x] {y} \\" * 200_000}).encode(),
        json.dumps([[]] * 600_000).encode(),
        json.dumps(["a"] * 400_000).encode(),
        json.dumps({"t": "x" * 2_000_000, "v": list(range(300_000))}).encode(),
    ):
        assert len(big) > 1 << 20
        for limit in (1_000, 100_000, 1_000_000):
            assert asyncio.run(too_many_values_async(big, limit)) == too_many_values(big, limit)


def test_a_client_that_leaves_before_its_body_is_not_an_error(
    env: Env, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="grok_api")
    with socket.create_connection(("127.0.0.1", env.app.port)) as s:
        s.sendall(
            f"POST {URL} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":'.encode()
        )
    deadline = time.monotonic() + 30
    while not any("left before" in r.getMessage() for r in caplog.records):
        assert time.monotonic() < deadline, [r.getMessage() for r in caplog.records]
        time.sleep(0.05)
    gone = [r for r in caplog.records if "left before" in r.getMessage()]
    assert all(r.levelno == logging.DEBUG and r.exc_info is None for r in gone)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
