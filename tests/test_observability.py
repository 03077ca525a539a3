"""Request ids (header → every log line → answer → upstream), the access log, the latency
histograms and gauges, and OpenTelemetry spans — through a real gateway on the simulator."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from grok_api import logs, tracing
from grok_api.store import Limits

from .helpers import (
    ADMIN_KEY,
    UPSTREAM_KEY,
    Env,
    ServedApp,
    gateway_settings,
    key_for,
    post_chat,
    served_env,
    stream_begun,
    stream_frames,
)
from .servers import WebServer


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (set once: OpenTelemetry allows no other), exporting into
    memory while this module runs."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()  # later modules' spans (FastAPI traces its own routes too) are not kept


@pytest.fixture(scope="module")
def gw(env: Env, spans: InMemorySpanExporter, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A gateway with the access log and tracing on."""
    settings = gateway_settings(
        tmp_path_factory.mktemp("obs"), env.sim, access_log=True, tracing="on", log_format="json"
    )
    with served_env(settings, env.sim) as e:
        yield e


class Lines:
    """The gateway's log lines as JSON objects, from a handler like the one ``serve`` installs."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()
        self.handler = logs.handler_for("json", self.buffer)
        self.mark = 0

    def since_mark(self) -> list[dict[str, Any]]:
        """The gateway's own lines since the last call (not the test's clients' or the key store's)."""
        text = self.buffer.getvalue()[self.mark :]
        self.mark += len(text)
        parsed = (json.loads(line) for line in text.splitlines() if line)
        return [line for line in parsed if line["logger"].startswith("grok_api")]


@pytest.fixture
def lines() -> Iterator[Lines]:
    captured = Lines()
    root = logging.getLogger()
    level = root.level
    root.addHandler(captured.handler)
    root.setLevel(logging.INFO)
    try:
        yield captured
    finally:
        root.removeHandler(captured.handler)
        root.setLevel(level)


def settled(gw: Env, lines: Lines, rid: str) -> list[dict[str, Any]]:
    """The log lines written until the request's access line is out (it is the last one)."""
    deadline = time.monotonic() + 10
    out: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        out += lines.since_mark()
        if any(line["logger"] == logs.ACCESS_LOGGER and line["request_id"] == rid for line in out):
            return out
        time.sleep(0.01)
    raise AssertionError(f"no access line for {rid}: {out}")


def test_a_client_request_id_is_on_the_answer_and_every_log_line(gw: Env, lines: Lines) -> None:
    key = key_for(gw.settings)
    lines.since_mark()
    rid = "client-id-" + secrets.token_hex(4)
    r = httpx.post(
        gw.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}", "x-request-id": rid},
        json={
            "model": "grok-4.20-non-reasoning",
            "messages": [{"role": "user", "content": "x [sim fault=500]"}],
        },
    )
    assert r.status_code == 502
    assert r.headers["x-request-id"] == rid
    written = settled(gw, lines, rid)
    assert len(written) >= 2  # the failure's warning and the access line
    assert {line["request_id"] for line in written} == {rid}
    assert any(line["level"] == "warning" for line in written)


def test_a_stream_cut_mid_way_logs_and_answers_with_its_id(gw: Env, lines: Lines) -> None:
    key = key_for(gw.settings)
    lines.since_mark()
    rid = "stream-" + secrets.token_hex(4)
    with httpx.stream(
        "POST",
        gw.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}", "x-request-id": rid},
        json={
            "model": "grok-4.20-non-reasoning",
            "stream": True,
            "messages": [{"role": "user", "content": "x [sim fault=malformed]"}],
        },
        timeout=30,
    ) as r:
        body = r.read().decode()
    assert r.status_code == 200 and r.headers["x-request-id"] == rid
    assert '"error"' in body
    written = settled(gw, lines, rid)
    assert any("stream cut" in line["msg"] for line in written)
    assert {line["request_id"] for line in written} == {rid}
    access = next(line for line in written if line["logger"] == logs.ACCESS_LOGGER)
    assert access["status"] == 200 and access["outcome"].startswith("upstream_error:")
    assert access["stream"] is True and access["bytes_out"] == len(body.encode())


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("a" * 128, True),
        ("a" * 129, False),
        ("bad\tid", False),
        ("na\u00efve", False),
        ("", False),
        ("ok-ID_1.2:3", True),
    ],
)
def test_only_sane_request_ids_are_kept(gw: Env, given: str, kept: bool) -> None:
    r = httpx.get(gw.base_url + "/v1/models", headers={"x-request-id": given.encode()})
    assert r.status_code == 401  # no key: errors carry the id as well
    assert (r.headers["x-request-id"] == given) is kept
    assert r.headers["x-request-id"].startswith("req_") is not kept


def test_generated_ids_differ_and_errors_carry_them(gw: Env) -> None:
    bad = [post_chat(gw.base_url, "gk-not-a-key") for _ in range(2)]
    assert [r.status_code for r in bad] == [401, 401]
    ids = [r.headers["x-request-id"] for r in bad]
    assert ids[0] != ids[1] and all(i.startswith("req_") for i in ids)


def test_access_lines_carry_the_fields_and_no_secret(gw: Env, lines: Lines) -> None:
    record, key = gw.create_key("access-log-key")
    r = post_chat(gw.base_url, key, "hello there")
    assert r.status_code == 200
    rid = r.headers["x-request-id"]
    written = settled(gw, lines, rid)
    access = next(
        line for line in written if line["logger"] == logs.ACCESS_LOGGER and line["request_id"] == rid
    )
    usage = r.json()["usage"]
    assert access["request_id"] == rid
    assert access["method"] == "POST" and access["path"] == "/v1/chat/completions"
    assert access["status"] == 200 and access["outcome"] == "ok" and access["surface"] == "chat"
    assert access["key_id"] == record.id and access["key_name"] == "access-log-key"
    assert access["model"] == "grok-4.20-non-reasoning" and access["upstream"] == "xai"
    assert access["target"] == gw.settings.xai_base_url  # which target: its URL, no credential
    assert access["prompt_tokens"] == usage["prompt_tokens"]
    assert access["completion_tokens"] == usage["completion_tokens"]
    assert access["estimated"] is False and access["reasoning_tokens"] == 0 and access["cached_tokens"] == 0
    assert access["bytes_out"] == len(r.content)
    assert 0 < access["ttfb_ms"] <= access["latency_ms"] and 0 < access["upstream_ms"] <= access["latency_ms"]
    assert access["time"].endswith("Z")
    refused = post_chat(gw.base_url, key, "x [sim fault=429 retry_after=30]")
    assert refused.status_code == 429
    limited = settled(gw, lines, refused.headers["x-request-id"])[-1]
    assert limited["outcome"] == "upstream_error:rate_limit_exceeded"
    text = json.dumps([*written, limited])
    for secret in (key, UPSTREAM_KEY, ADMIN_KEY, record.key_hash):
        assert secret not in text


def test_an_access_line_for_other_routes_too(gw: Env, lines: Lines) -> None:
    r = httpx.get(gw.base_url + "/admin/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert r.status_code == 200
    access = settled(gw, lines, r.headers["x-request-id"])[-1]
    assert access["path"] == "/admin/keys" and access["status"] == 200 and access["surface"] == "other"
    assert ADMIN_KEY not in json.dumps(access)


def scrape(gw: Env) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(gw.base_url + "/metrics").text
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **match: str) -> float:
    return sum(
        v
        for (n, labels), v in samples.items()
        if n == name and all(dict(labels).get(k) == want for k, want in match.items())
    )


def test_histogram_counts_move_by_exactly_the_requests_served(gw: Env) -> None:
    key = key_for(gw.settings)
    before = scrape(gw)
    ok = [post_chat(gw.base_url, key, f"n{i}") for i in range(3)]
    streamed, _ = stream_frames(gw.base_url, key, "s")
    failed = post_chat(gw.base_url, key, "x [sim fault=500]")
    refused = post_chat(gw.base_url, "gk-wrong", "x")
    assert [r.status_code for r in ok] == [200] * 3 and streamed.status_code == 200
    assert (failed.status_code, refused.status_code) == (502, 401)
    after = scrape(gw)

    def moved(name: str, **match: str) -> float:
        return total(after, name, surface="chat", **match) - total(before, name, surface="chat", **match)

    assert moved("grok_api_request_duration_seconds_count") == 6
    assert (
        moved(
            "grok_api_request_duration_seconds_count",
            status="2xx",
            model="grok-4.20-non-reasoning",
            upstream="xai",
        )
        == 4
    )
    assert moved("grok_api_request_duration_seconds_count", status="5xx") == 1
    assert moved("grok_api_request_duration_seconds_count", status="4xx", upstream="none") == 1
    assert moved("grok_api_time_to_first_token_seconds_count") == 4  # only answers have a first token
    assert moved("grok_api_overhead_seconds_count") == 6
    assert moved("grok_api_overhead_seconds_bucket", le="+Inf") == 6
    # the overhead's buckets resolve a tenth of a millisecond
    assert any(n == "grok_api_overhead_seconds_bucket" and dict(lb)["le"] == "0.0001" for n, lb in after)
    assert total(after, "grok_api_requests_in_flight") == 0
    assert total(after, "grok_api_streams_in_flight") == 0


def test_in_flight_gauges_count_a_running_stream(gw: Env) -> None:
    with stream_begun(gw.base_url, key_for(gw.settings), "x [sim tokens=400 rate=40]"):
        seen = scrape(gw)
        assert total(seen, "grok_api_requests_in_flight") >= 1
        assert total(seen, "grok_api_streams_in_flight") >= 1
    deadline = time.monotonic() + 10
    while total(scrape(gw), "grok_api_streams_in_flight") != 0:
        assert time.monotonic() < deadline, "the stream was never counted out"
        time.sleep(0.05)


def by_name(found: list[ReadableSpan], trace_id: int) -> dict[str, ReadableSpan]:
    return {s.name: s for s in found if s.context is not None and s.context.trace_id == trace_id}


def test_spans_continue_the_callers_trace(gw: Env, spans: InMemorySpanExporter) -> None:
    key = key_for(gw.settings)
    trace_id, parent_id = secrets.randbits(128), secrets.randbits(64)
    header = f"00-{trace_id:032x}-{parent_id:016x}-01"
    r = httpx.post(
        gw.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}", "traceparent": header},
        json={"model": "grok-4.20-non-reasoning", "messages": [{"role": "user", "content": "traced"}]},
    )
    assert r.status_code == 200
    deadline = time.monotonic() + 10
    while "POST /v1/chat/completions" not in by_name(list(spans.get_finished_spans()), trace_id):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    found = by_name(list(spans.get_finished_spans()), trace_id)
    root = found["POST /v1/chat/completions"]
    assert root.parent is not None and root.parent.span_id == parent_id and root.parent.is_remote
    assert root.kind == trace.SpanKind.SERVER
    assert root.attributes is not None and root.attributes["grok_api.request_id"] == r.headers["x-request-id"]
    assert root.attributes["http.response.status_code"] == 200
    assert root.context is not None
    for name in ("authenticate", "limiter", "upstream", "encode"):
        child = found[name]
        assert child.parent is not None and child.parent.span_id == root.context.span_id, name
    upstream = found["upstream"]
    assert [e.name for e in upstream.events] == ["first_byte"]
    assert upstream.attributes is not None and upstream.attributes["grok_api.time_to_first_byte_ms"] > 0


def test_a_request_without_traceparent_starts_a_trace(gw: Env, spans: InMemorySpanExporter) -> None:
    r = post_chat(gw.base_url, "gk-wrong")
    assert r.status_code == 401
    deadline = time.monotonic() + 10
    while True:
        mine = [
            s
            for s in spans.get_finished_spans()
            if s.attributes and s.attributes.get("grok_api.request_id") == r.headers["x-request-id"]
        ]
        if mine or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(mine) == 1 and mine[0].parent is None
    assert mine[0].attributes is not None and mine[0].attributes["http.response.status_code"] == 401


class CapturingUpstream(WebServer):
    """An xAI-like upstream that answers every chat completion and keeps the request headers."""

    def __init__(self) -> None:
        super().__init__()
        self.request_ids: list[str | None] = []

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/chat/completions", self.chat)

    async def chat(self, request: web.Request) -> web.Response:
        self.request_ids.append(request.headers.get("x-request-id"))
        return web.json_response(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "grok-4.20-non-reasoning",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )


def test_the_request_id_goes_upstream(env: Env, tmp_path_factory: pytest.TempPathFactory) -> None:
    with CapturingUpstream() as upstream:
        settings = gateway_settings(
            tmp_path_factory.mktemp("rid-upstream"), env.sim, xai_base_url=upstream.url + "/v1"
        )
        with ServedApp(settings) as served:
            key = key_for(settings)
            r = httpx.post(
                served.base_url + "/v1/chat/completions",
                headers={"Authorization": f"Bearer {key}", "x-request-id": "to-the-upstream"},
                json={"model": "grok-4.20-non-reasoning", "messages": [{"role": "user", "content": "hi"}]},
            )
            generated = post_chat(served.base_url, key)
    assert r.status_code == 200 and generated.status_code == 200
    assert upstream.request_ids == ["to-the-upstream", generated.headers["x-request-id"]]


def test_tracing_that_is_asked_for_but_not_installed_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # as if the extra were not installed (FastAPI brings opentelemetry-api; the SDK is the extra's)
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)
    with caplog.at_level(logging.WARNING):
        assert tracing.build("on") is None
    assert "pip install 'grok-api[tracing]'" in caplog.text


def test_tracing_off_loads_no_tracing_sdk(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from grok_api.app import create_app\n"
        "from grok_api.config import Settings\n"
        f"app = create_app(Settings(_env_file=None, data_dir={str(tmp_path)!r}))\n"
        "with TestClient(app) as c:\n"
        "    assert c.get('/health').status_code == 200\n"
        "    assert app.state.gateway.observer.tracing is None\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace', 'opentelemetry.exporter'))))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GROK_API_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean, check=True)
    assert out.stdout.strip() == "[]"


def test_tracing_auto_follows_the_standard_variables() -> None:
    assert tracing.wanted("auto", {}) is False
    assert tracing.wanted("auto", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) is True
    assert tracing.wanted("auto", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}) is True
    assert tracing.wanted("on", {"OTEL_SDK_DISABLED": "true"}) is False
    assert tracing.wanted("off", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) is False


class OTLPCollector(WebServer):
    """Receives OTLP/HTTP trace exports and keeps their bodies."""

    def __init__(self) -> None:
        super().__init__()
        self.exports: list[bytes] = []

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/traces", self.traces)

    async def traces(self, request: web.Request) -> web.Response:
        self.exports.append(await request.read())
        return web.Response(body=b"", content_type="application/x-protobuf")


def test_spans_are_exported_over_otlp_when_the_endpoint_is_set(tmp_path: Path) -> None:
    code = (
        "from fastapi.testclient import TestClient\n"
        "from grok_api.app import create_app\n"
        "from grok_api.config import Settings\n"
        f"app = create_app(Settings(_env_file=None, data_dir={str(tmp_path)!r}))\n"
        "with TestClient(app) as c:\n"
        "    assert app.state.gateway.observer.tracing is not None\n"
        "    r = c.post('/v1/chat/completions', json={'model': 'grok-4.3', 'messages': []},\n"
        "               headers={'x-request-id': 'exported-request'})\n"
        "    assert r.status_code == 401\n"
    )
    with OTLPCollector() as collector:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "GROK_API_"))}
        env |= {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
            "OTEL_SERVICE_NAME": "gw-test",
        }
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    sent = b"".join(collector.exports)
    assert b"exported-request" in sent and b"gw-test" in sent and b"POST /v1/chat/completions" in sent


def test_text_logs_show_the_request_id() -> None:
    buffer = io.StringIO()
    handler = logs.handler_for("text", buffer)
    record = logging.LogRecord("grok_api.x", logging.WARNING, "", 0, "something happened", None, None)
    token = logs.REQUEST_ID.set("req_text_1")
    try:
        handler.handle(record)
    finally:
        logs.REQUEST_ID.reset(token)
    handler.handle(logging.LogRecord("grok_api.x", logging.INFO, "", 0, "outside", None, None))
    first, second = buffer.getvalue().splitlines()
    assert "[req_text_1]: something happened" in first
    assert "[-]: outside" in second


def test_access_outcomes_for_a_key_limit_and_a_client_that_leaves(gw: Env, lines: Lines) -> None:
    key = key_for(gw.settings, rpm=1)
    lines.since_mark()
    assert post_chat(gw.base_url, key, "first").status_code == 200
    refused = post_chat(gw.base_url, key, "second")
    assert refused.status_code == 429
    limited = settled(gw, lines, refused.headers["x-request-id"])[-1]
    assert limited["outcome"] == "limited:rate_limit_requests" and limited["status"] == 429
    assert limited["upstream_ms"] == 0 and limited["ttfb_ms"] is None

    with stream_begun(gw.base_url, key_for(gw.settings), "x [sim tokens=400 rate=40]") as r:
        rid = r.headers["x-request-id"]
    gone = settled(gw, lines, rid)[-1]
    assert gone["outcome"] == "client_gone" and gone["stream"] is True and gone["estimated"] is True
    assert 0 < gone["completion_tokens"] < 400


def test_a_count_tokens_access_line_names_its_key_and_model(gw: Env, lines: Lines) -> None:
    """/v1/messages/count_tokens is served off the hot path; its line said ``key=- model=-``."""
    record, key = gw.create_key("counting-key")
    lines.since_mark()
    rid = "count-tokens-line"
    r = httpx.post(
        gw.base_url + "/v1/messages/count_tokens",
        headers={"x-api-key": key, "x-request-id": rid},
        json={"model": "grok-4.3", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 200 and r.json()["input_tokens"] > 0
    access = next(line for line in settled(gw, lines, rid) if line["logger"] == logs.ACCESS_LOGGER)
    assert access["path"] == "/v1/messages/count_tokens" and access["status"] == 200
    assert access["key_id"] == record.id and access["key_name"] == "counting-key"
    assert access["model"] == "grok-4.3"
    assert key not in json.dumps(access)


def test_stored_response_reads_and_deletes_name_their_key_and_model(gw: Env, lines: Lines) -> None:
    """GET and DELETE /v1/responses/{id} are served off the hot path: their lines said ``key=-``;
    a refusal of the key's rate names its limit."""
    record, key = gw.create_key("reading-key", limits=Limits(rpm=3))
    auth = {"Authorization": f"Bearer {key}"}
    made = httpx.post(
        gw.base_url + "/v1/responses", headers=auth, json={"model": "grok-4.3", "input": "keep"}
    )
    assert made.status_code == 200
    rid = made.json()["id"]
    outcomes = []
    for n, method in enumerate(["GET", "DELETE", "GET"]):
        lines.since_mark()
        request_id = f"stored-line-{n}-" + secrets.token_hex(4)
        r = httpx.request(
            method, f"{gw.base_url}/v1/responses/{rid}", headers={**auth, "x-request-id": request_id}
        )
        access = next(line for line in settled(gw, lines, request_id) if line["logger"] == logs.ACCESS_LOGGER)
        assert access["key_id"] == record.id and access["key_name"] == "reading-key"
        assert access["status"] == r.status_code and access["method"] == method
        outcomes.append((r.status_code, access["model"], access["outcome"]))
        assert key not in json.dumps(access)
    assert outcomes == [
        (200, "grok-4.3", "ok"),
        (200, None, "ok"),
        (429, None, "limited:rate_limit_requests"),
    ]
