"""Bounds on what a client may send and hold (issue 10, item 8), over raw sockets:
oversized headers get a 431, slow headers or bodies a 408, connections past the cap a 503."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from .helpers import Env, ServedApp, gateway_settings, key_for, post_chat


@pytest.fixture
def bounded(env: Env, tmp_path: Path) -> Iterator[ServedApp]:
    settings = gateway_settings(
        tmp_path,
        env.sim,
        max_header_bytes=16 * 1024,
        request_header_timeout=1.0,
        request_body_timeout=1.0,
        max_connections=8,
    )
    with ServedApp(settings) as served:
        yield served


def connect(served: ServedApp) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", served.port), timeout=30)
    return s


def answer(s: socket.socket) -> tuple[int, dict[str, object] | None]:
    """The status of the one response on ``s`` (read until the server closes), and its JSON body."""
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body) if body.startswith(b"{") else None


def test_oversized_headers_are_431(bounded: ServedApp) -> None:
    with connect(bounded) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000)
        status, body = answer(s)
    assert status == 431
    assert body is not None and body["error"]["code"] == "headers_too_large"
    key = key_for(bounded.settings)
    assert post_chat(bounded.base_url, key).status_code == 200


def test_headers_that_do_not_arrive_get_408(bounded: ServedApp) -> None:
    with connect(bounded) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        status, body = answer(s)
    assert status == 408
    assert body is not None and body["error"]["code"] == "request_timeout"


def test_a_body_that_stops_gets_408(bounded: ServedApp) -> None:
    key = key_for(bounded.settings)
    with connect(bounded) as s:
        s.sendall(
            f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":'.encode()
        )
        status, _ = answer(s)
    assert status == 408


def test_an_idle_connection_is_closed(bounded: ServedApp) -> None:
    with connect(bounded) as s:
        assert s.recv(1) == b""  # closed by the server, with nothing sent


def test_connections_past_the_cap_get_503(bounded: ServedApp) -> None:
    with ExitStack() as stack:
        held = [stack.enter_context(connect(bounded)) for _ in range(8)]
        for s in held:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 200")  # each is open and was served
        extra = stack.enter_context(connect(bounded))
        status, _ = answer(extra)
        assert status == 503
    key = key_for(bounded.settings)
    assert post_chat(bounded.base_url, key).status_code == 200
