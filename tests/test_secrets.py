"""A full run with known secrets, every path exercised: the logs (at DEBUG), the answers and
/metrics contain none of them."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from grok_api.logs import JSONFormatter

from .helpers import (
    ADMIN_KEY,
    UPSTREAM_KEY,
    WEB_AGENT,
    WEB_COOKIES,
    WEB_SSO,
    Env,
    ServedApp,
    gateway_settings,
    key_for,
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


def test_no_secret_reaches_logs_answers_or_metrics(env: Env, tmp_path: Path, logs: Collect) -> None:
    wrong_upstream = "xai-wrong-secret-0000111122223333"
    settings = gateway_settings(
        tmp_path,
        env.sim,
        xai_api_key=f"{wrong_upstream},{UPSTREAM_KEY}",
        web_cookies=WEB_COOKIES,
        web_user_agent=WEB_AGENT,
        web_base_url=env.sim.base_url,
        upstream_retries=1,
    )
    seen: list[str] = []
    with ServedApp(settings) as served:
        key = key_for(settings, rpm=1000)
        auth = {"Authorization": f"Bearer {key}"}

        def chat(
            content: str,
            model: str = "grok-4.20-non-reasoning",
            stream: bool = False,
            headers: dict[str, str] = auth,
        ) -> None:
            r = httpx.post(
                served.base_url + "/v1/chat/completions",
                headers=headers,
                json={"model": model, "stream": stream, "messages": [{"role": "user", "content": content}]},
            )
            seen.append(r.text + str(r.headers))

        chat("hello")
        chat("hello", stream=True)
        for fault in ("400", "401", "429", "500", "503", "cut", "malformed"):
            chat(f"x [sim fault={fault}]")
            chat(f"x [sim fault={fault}]", stream=True)
        for fault in ("antibot", "cloudflare", "expired", "usage_limit", "stream_error"):
            chat(f"x [sim fault={fault}]", model="web/grok-4")
        chat("hello", model="web/grok-4")
        chat("x", headers={"Authorization": "Bearer gk-wrong"})
        chat("x", headers={"Authorization": f"Bearer {key}x"})
        for path, headers in (
            ("/admin/keys", {"x-api-key": ADMIN_KEY}),
            ("/admin/keys", {"x-api-key": "nope"}),
            ("/admin/usage", {"x-api-key": ADMIN_KEY}),
            ("/metrics", {}),
            ("/ready", {}),
            ("/v1/models", auth),
        ):
            r = httpx.get(served.base_url + path, headers=headers)
            seen.append(r.text + str(r.headers))
    logged = "\n".join(logs.lines)
    assert "upstream" in logged or "grok.com" in logged  # the failures above were logged...
    everything = logged + "\n".join(seen)
    for secret in (UPSTREAM_KEY, wrong_upstream, WEB_SSO, "cf-test-clearance", ADMIN_KEY, key):
        assert secret not in everything  # ...without a single secret
