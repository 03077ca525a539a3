"""A full run with known secrets, every path exercised: the logs (at DEBUG), the answers and
/metrics contain none of them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from grok_api.logs import JSONFormatter
from grok_api.store import Limits

from .helpers import (
    ADMIN_KEY,
    UPSTREAM_KEY,
    WEB_SSO,
    Env,
    ServedApp,
    chat_body,
    create_key,
    post,
    web_settings,
)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JSONFormatter())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs() -> Iterator[Collect]:
    handler = Collect()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


# (prompt fault, model, streamed) -> what the request must do: (status, code or outcome).
# Outcomes: "answer" (a full answer), "cut" (a 200 stream ending in an error event), else the error code.
XAI_FAULTS: dict[str, tuple[tuple[int, str], tuple[int, str]]] = {  # fault: (non-streamed, streamed)
    "400": ((400, "invalid_request"), (400, "invalid_request")),
    "401": ((502, "upstream_auth_failed"), (502, "upstream_auth_failed")),
    "429": ((429, "rate_limit_exceeded"), (429, "rate_limit_exceeded")),
    "500": ((502, "upstream_error"), (502, "upstream_error")),
    "503": ((503, "upstream_unavailable"), (503, "upstream_unavailable")),
    "cut": ((200, "answer"), (200, "cut")),  # stream faults: a non-streamed answer is whole
    "malformed": ((200, "answer"), (200, "cut")),
}
WEB_FAULTS = {  # grok.com over its WebSocket gateway (the default) and over REST
    "ws": {
        "antibot": (502, "web_session_refused"),
        "expired": (502, "web_session_expired"),
        "usage_limit": (429, "web_usage_limit"),
        "stream_error": (502, "upstream_error"),
    },
    "rest": {
        "antibot": (502, "web_session_refused"),
        "cloudflare": (502, "web_session_refused"),
        "expired": (502, "web_session_expired"),
        "usage_limit": (429, "web_usage_limit"),
        "stream_error": (502, "upstream_error"),
    },
}


def outcome(r: httpx.Response, stream: bool) -> tuple[int, str]:
    """What a chat request did, in the terms of the tables above; the failure's message is logged."""
    if r.status_code != 200:
        return r.status_code, str(r.json()["error"]["code"])
    if not stream:
        content = r.json()["choices"][0]["message"]["content"]
        return 200, "answer" if content.startswith("[turn 1] You said:") else content
    frames = [f for f in r.text.split("\n\n") if f]
    assert frames[-1] == "data: [DONE]", frames
    if frames[-2].startswith('data: {"error":'):
        return 200, "cut"
    return 200, "answer" if '"finish_reason":"stop"' in frames[-2] else frames[-2]


def error_message(r: httpx.Response) -> str:
    """The error a failed request carried, as a client saw it (a body or a stream's error event)."""
    text = r.text if r.status_code != 200 else r.text.split("\n\n")[-3].removeprefix("data: ")
    return str(json.loads(text)["error"]["message"])


def test_no_secret_reaches_logs_answers_or_metrics(env: Env, tmp_path: Path, logs: Collect) -> None:
    wrong_upstream = "xai-wrong-secret-0000111122223333"
    settings = web_settings(
        tmp_path, env.sim, xai_api_key=f"{wrong_upstream},{UPSTREAM_KEY}", upstream_retries=1
    )
    seen: list[str] = []
    outcomes: list[tuple[int, str]] = []
    failures: list[str] = []  # messages of the 5xx answers and cut streams: each must have been logged
    record, key = create_key(settings, limits=Limits(rpm=1000))

    def chat(
        url: str,
        content: str,
        expect: tuple[int, str],
        model: str = "grok-4.20-non-reasoning",
        stream: bool = False,
    ) -> None:
        r = post(url, key, json=chat_body(content, model, stream=stream))
        seen.append(r.text + str(r.headers))
        assert outcome(r, stream) == expect, (content, model, stream, r.text[-300:])
        outcomes.append(expect)
        if r.status_code >= 500 or expect[1] == "cut":
            failures.append(error_message(r))

    with ServedApp(settings.model_copy(update={"web_protocol": "rest"})) as rest:
        for fault, expect in WEB_FAULTS["rest"].items():
            chat(rest.base_url, f"x [sim fault={fault}]", expect, model="web/grok-4")
        chat(rest.base_url, "hello", (200, "answer"), model="web/grok-4")
    with ServedApp(settings) as served:
        url = served.base_url
        chat(url, "hello", (200, "answer"))
        chat(url, "hello", (200, "answer"), stream=True)
        for fault, (plain, streamed) in XAI_FAULTS.items():
            chat(url, f"x [sim fault={fault}]", plain)
            chat(url, f"x [sim fault={fault}]", streamed, stream=True)
        for fault, expect in WEB_FAULTS["ws"].items():
            chat(url, f"x [sim fault={fault}]", expect, model="web/grok-4")
        chat(url, "hello", (200, "answer"), model="web/grok-4")
        for wrong in ("gk-wrong", f"{key}x"):
            r = post(served.base_url, wrong, json=chat_body())
            seen.append(r.text + str(r.headers))
            assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"

        def get(path: str, status: int, headers: dict[str, str]) -> httpx.Response:
            r = httpx.get(served.base_url + path, headers=headers)
            seen.append(r.text + str(r.headers))
            assert r.status_code == status, (path, r.text)
            return r

        admin = {"x-api-key": ADMIN_KEY}
        assert record.id in [k["id"] for k in get("/admin/keys", 200, admin).json()["data"]]
        get("/admin/keys", 401, {"x-api-key": "nope"})
        usage = get("/admin/usage", 200, admin).json()["data"]
        assert sum(row["requests"] for row in usage if row["key_id"] == record.id) == len(outcomes)
        assert 'grok_api_chat_requests_total{outcome="ok"}' in get("/metrics", 200, {}).text
        ready = get("/ready", 200, {}).json()["checks"]["upstreams"]
        assert ready["xai"][0]["consecutive_failures"] > 0  # the wrong upstream key was really sent
        assert "grok-4.3" in [
            m["id"] for m in get("/v1/models", 200, {"Authorization": f"Bearer {key}"}).json()["data"]
        ]
    logged = "\n".join(logs.lines)
    assert len(failures) == sum(1 for status, what in outcomes if status >= 500 or what == "cut") >= 10
    for message in failures:
        assert message in logged  # the failures above were logged...
    everything = logged + "\n".join(seen)
    for secret in (UPSTREAM_KEY, wrong_upstream, WEB_SSO, "cf-test-clearance", ADMIN_KEY, key):
        assert secret not in everything  # ...without a single secret
