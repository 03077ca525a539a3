"""``POST /v1/messages`` through the official ``anthropic`` SDK, against both upstreams of the
simulator: xAI's API (the default) and grok.com (``web/…``)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import jsonschema
import pytest

from grok_api.store import Limits

from .helpers import ADMIN_KEY, Env, ServedApp, web_settings

XAI_MODEL = "grok-4.3"
WEB_MODEL = "web/grok-4"
BOTH = pytest.mark.parametrize("model", [XAI_MODEL, WEB_MODEL])


@pytest.fixture(scope="module")
def gw(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A gateway with both upstreams and a short keep-alive (so that pings show)."""
    settings = web_settings(
        tmp_path_factory.mktemp("messages"), env.sim, sse_keepalive=0.2, max_body_bytes=64 * 1024
    )
    with ServedApp(settings) as served:
        yield Env(app=served, sim=env.sim, settings=settings)


@pytest.fixture
def key(gw: Env) -> str:
    return gw.create_key("messages")[1]


@pytest.fixture
def claude(gw: Env, key: str) -> Iterator[anthropic.Anthropic]:
    c = anthropic.Anthropic(api_key=key, base_url=gw.base_url, max_retries=0)
    yield c
    c.close()


def sent(gw: Env, since: int) -> list[dict[str, Any]]:
    return [body for _, _, body in gw.sim.since(since)]


def raw_events(gw: Env, key: str, body: dict[str, Any]) -> tuple[httpx.Response, list[tuple[str, Any]]]:
    """A streamed request over plain HTTP: its SSE frames as (event name, data)."""
    import json

    with httpx.stream(
        "POST",
        gw.base_url + "/v1/messages",
        headers={"x-api-key": key},
        json={**body, "stream": True},
        timeout=30,
    ) as r:
        text = r.read().decode()
    frames = []
    for frame in text.split("\n\n"):
        if not frame.strip():
            continue
        fields = dict(line.split(": ", 1) for line in frame.split("\n"))
        frames.append((fields["event"], json.loads(fields["data"])))
    return r, frames


@BOTH
def test_plain_message(claude: anthropic.Anthropic, model: str) -> None:
    msg = claude.messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": "hello"}])
    assert msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
    assert msg.model == model
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == "[turn 1] You said: hello"  # type: ignore[union-attr]
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0


@BOTH
def test_stream_text_agrees_with_the_final_message(claude: anthropic.Anthropic, model: str) -> None:
    with claude.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "stream me"}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) >= 1
    assert "".join(pieces) == "[turn 1] You said: stream me"
    assert final.content[0].text == "".join(pieces)  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


@BOTH
def test_stream_event_order(gw: Env, key: str, model: str) -> None:
    r, frames = raw_events(
        gw, key, {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    names = [name for name, _ in frames if name != "ping"]
    assert names[0] == "message_start" and names[1] == "content_block_start"
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[2:-3]) == {"content_block_delta"}
    assert all(name == data["type"] for name, data in frames)
    delta = dict(frames)["message_delta"]
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"]["output_tokens"] > 0


@BOTH
def test_system_and_multi_turn(gw: Env, claude: anthropic.Anthropic, model: str) -> None:
    start = gw.sim.recorded
    history: list[Any] = [{"role": "user", "content": "first"}]
    first = claude.messages.create(model=model, max_tokens=100, system="Be brief.", messages=history)
    answer = first.content[0].text  # type: ignore[union-attr]
    assert answer == "[turn 1] You said: first"
    history += [{"role": "assistant", "content": answer}, {"role": "user", "content": "second"}]
    second = claude.messages.create(
        model=model, max_tokens=100, system=[{"type": "text", "text": "Be brief."}], messages=history
    )
    assert second.content[0].text == "[turn 2] You said: second"  # type: ignore[union-attr]
    bodies = sent(gw, start)
    if model == XAI_MODEL:
        assert bodies[-1]["messages"][0] == {"role": "system", "content": "Be brief."}
        assert bodies[-1]["max_tokens"] == 100
    else:  # grok.com continued its own conversation with only the new message
        event = bodies[-1]["event"]
        assert event["item"]["x_grok"]["input_chunks"] == [{"text": {"text": "second"}}]
        assert event["parent_response_id"]


TOOLS: list[Any] = [
    {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "units": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["city", "units"],
        },
    }
]


def test_tool_use_then_tool_result(gw: Env, claude: anthropic.Anthropic) -> None:
    ask = {"role": "user", "content": "weather in Paris [sim tool=1]"}
    msg = claude.messages.create(
        model=XAI_MODEL, max_tokens=100, tools=TOOLS, tool_choice={"type": "any"}, messages=[ask]
    )
    assert msg.stop_reason == "tool_use"
    call = next(b for b in msg.content if b.type == "tool_use")
    assert call.name == "get_weather" and call.input["city"] == "weather in Paris"  # the prompt, no directive
    jsonschema.validate(call.input, TOOLS[0]["input_schema"])
    start = gw.sim.recorded
    reply = claude.messages.create(
        model=XAI_MODEL,
        max_tokens=100,
        tools=TOOLS,
        messages=[
            ask,
            {"role": "assistant", "content": [b.model_dump() for b in msg.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21°C"}],
            },
        ],
    )
    assert reply.stop_reason == "end_turn"
    upstream = sent(gw, start)[-1]
    assistant, tool = upstream["messages"][1], upstream["messages"][2]
    assert assistant["tool_calls"][0]["id"] == call.id
    assert assistant["tool_calls"][0]["function"]["name"] == "get_weather"
    assert tool == {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21°C"}


def test_tool_choice_is_translated(gw: Env, claude: anthropic.Anthropic) -> None:
    start = gw.sim.recorded
    claude.messages.create(
        model=XAI_MODEL,
        max_tokens=10,
        tools=TOOLS,
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": "x"}],
    )
    body = sent(gw, start)[-1]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False
    assert body["tools"][0]["function"]["parameters"] == TOOLS[0]["input_schema"]


def test_streamed_tool_use_sends_input_json_deltas(gw: Env, key: str, claude: anthropic.Anthropic) -> None:
    body = {
        "model": XAI_MODEL,
        "max_tokens": 100,
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "call it [sim tool=1]"}],
    }
    _, frames = raw_events(gw, key, body)
    starts = [d["content_block"] for n, d in frames if n == "content_block_start"]
    assert starts[-1]["type"] == "tool_use" and starts[-1]["name"] == "get_weather"
    deltas = [d["delta"] for n, d in frames if n == "content_block_delta"]
    partial = "".join(d["partial_json"] for d in deltas if d["type"] == "input_json_delta")
    jsonschema.validate(json.loads(partial), TOOLS[0]["input_schema"])
    with claude.messages.stream(**body) as stream:  # type: ignore[arg-type]
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[-1].input == json.loads(partial)  # type: ignore[union-attr]


def test_parallel_tool_calls(gw: Env, claude: anthropic.Anthropic) -> None:
    tools = [*TOOLS, {"name": "get_time", "input_schema": {"type": "object"}}]
    ask: Any = [{"role": "user", "content": "weather and time [sim tool=2]"}]
    msg = claude.messages.create(model=XAI_MODEL, max_tokens=100, tools=tools, messages=ask)
    calls = [b for b in msg.content if b.type == "tool_use"]
    assert [c.name for c in calls] == ["get_weather", "get_time"] and msg.stop_reason == "tool_use"
    jsonschema.validate(calls[0].input, TOOLS[0]["input_schema"])
    assert calls[1].input == {}  # get_time's schema has no properties
    with claude.messages.stream(model=XAI_MODEL, max_tokens=100, tools=tools, messages=ask) as stream:
        final = stream.get_final_message()
    assert [(b.name, b.input) for b in final.content if b.type == "tool_use"] == [
        (c.name, c.input) for c in calls
    ]
    start = gw.sim.recorded
    results = [
        {"type": "tool_result", "tool_use_id": c.id, "content": f"result {i}"} for i, c in enumerate(calls)
    ]
    claude.messages.create(
        model=XAI_MODEL,
        max_tokens=100,
        tools=tools,
        messages=[
            *ask,
            {"role": "assistant", "content": [c.model_dump() for c in calls]},
            {"role": "user", "content": results},
        ],
    )
    sent_messages = sent(gw, start)[-1]["messages"]
    assert [m["role"] for m in sent_messages] == ["user", "assistant", "tool", "tool"]
    assert [m["tool_call_id"] for m in sent_messages[2:]] == [c.id for c in calls]


def test_tools_on_grok_com_are_refused_in_anthropic_shape(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(
            model=WEB_MODEL, max_tokens=10, tools=TOOLS, messages=[{"role": "user", "content": "x"}]
        )
    assert info.value.status_code == 400
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "tools" in info.value.body["error"]["message"]  # type: ignore[index]


PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n-not-really").decode()
IMAGE_BLOCK: Any = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}


def test_image_input_goes_to_xai_as_a_data_url(gw: Env, claude: anthropic.Anthropic) -> None:
    start = gw.sim.recorded
    msg = claude.messages.create(
        model=XAI_MODEL,
        max_tokens=10,
        messages=[{"role": "user", "content": [IMAGE_BLOCK, {"type": "text", "text": "what is it"}]}],
    )
    assert msg.content[0].text == "[turn 1] You said: what is it"  # type: ignore[union-attr]
    parts = sent(gw, start)[-1]["messages"][0]["content"]
    assert parts[0] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}}


def test_image_input_goes_to_grok_com_as_an_upload(gw: Env, claude: anthropic.Anthropic) -> None:
    start = gw.sim.recorded
    msg = claude.messages.create(
        model=WEB_MODEL,
        max_tokens=10,
        messages=[{"role": "user", "content": [IMAGE_BLOCK, {"type": "text", "text": "what is it"}]}],
    )
    assert msg.content[0].text == "[turn 1] You said: what is it [attached: 1]"  # type: ignore[union-attr]
    uploads = [b for _, path, b in gw.sim.since(start) if path == "/http/upload-file-v2/direct"]
    assert len(uploads) == 1 and uploads[0]["type"] == "image/png"


def test_a_bad_image_source_is_a_400_in_anthropic_shape(claude: anthropic.Anthropic) -> None:
    bad: Any = {"type": "image", "source": {"type": "file", "file_id": "f1"}}
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(model=WEB_MODEL, max_tokens=10, messages=[{"role": "user", "content": [bad]}])
    assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "source" in info.value.body["error"]["message"]  # type: ignore[index]


@BOTH
def test_thinking_blocks(claude: anthropic.Anthropic, model: str) -> None:
    ask: Any = [{"role": "user", "content": "why [sim think=1]"}]
    msg = claude.messages.create(
        model=model, max_tokens=200, thinking={"type": "enabled", "budget_tokens": 1024}, messages=ask
    )
    assert [b.type for b in msg.content] == ["thinking", "text"]
    assert msg.content[0].thinking.startswith("Thinking about")  # type: ignore[union-attr]
    with claude.messages.stream(
        model=model, max_tokens=200, thinking={"type": "enabled", "budget_tokens": 1024}, messages=ask
    ) as stream:
        kinds = {e.delta.type for e in stream if e.type == "content_block_delta"}
        final = stream.get_final_message()
    assert kinds == {"thinking_delta", "text_delta"}
    assert final.content[0].thinking == msg.content[0].thinking  # type: ignore[union-attr]
    plain = claude.messages.create(model=model, max_tokens=200, messages=ask)
    assert [b.type for b in plain.content] == ["text"]  # thinking is shown only when asked for


@BOTH
def test_wrong_key_is_an_authentication_error(gw: Env, model: str) -> None:
    with (
        anthropic.Anthropic(api_key="gk-wrong", base_url=gw.base_url, max_retries=0) as bad,
        pytest.raises(anthropic.AuthenticationError) as info,
    ):
        bad.messages.create(model=model, max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert info.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Incorrect API key provided."},
    }


def test_bearer_key_and_anthropic_headers_are_accepted(gw: Env, key: str) -> None:
    r = httpx.post(
        gw.base_url + "/v1/messages",
        headers={"Authorization": f"Bearer {key}", "anthropic-version": "2023-06-01", "anthropic-beta": "x"},
        json={"model": XAI_MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 200 and r.json()["type"] == "message"


@BOTH
def test_missing_max_tokens_is_a_400_invalid_request_error(gw: Env, key: str, model: str) -> None:
    r = httpx.post(
        gw.base_url + "/v1/messages",
        headers={"x-api-key": key},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 400
    assert r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"top_k": 5}, "top_k"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "server tool"),
        ({"messages": [{"role": "system", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]}, "document"),
        ({"thinking": {"type": "sometimes"}}, "thinking"),
    ],
)
def test_what_cannot_be_sent_is_refused(gw: Env, key: str, body: dict[str, Any], word: str) -> None:
    payload = {"model": XAI_MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}], **body}
    r = httpx.post(gw.base_url + "/v1/messages", headers={"x-api-key": key}, json=payload)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["type"] == "invalid_request_error" and word in r.json()["error"]["message"]


@BOTH
def test_count_tokens(claude: anthropic.Anthropic, model: str) -> None:
    short = claude.messages.count_tokens(model=model, messages=[{"role": "user", "content": "hi"}])
    long = claude.messages.count_tokens(
        model=model, system="You are terse.", messages=[{"role": "user", "content": "hi " * 200}]
    )
    assert 0 < short.input_tokens < long.input_tokens


def test_count_tokens_refuses_a_bad_key_in_anthropic_shape(gw: Env) -> None:
    r = httpx.post(gw.base_url + "/v1/messages/count_tokens", headers={"x-api-key": "nope"}, json={})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


def test_upstream_failures_in_anthropic_shape(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIStatusError) as info:
        claude.messages.create(
            model=XAI_MODEL, max_tokens=10, messages=[{"role": "user", "content": "[sim fault=503]"}]
        )
    assert info.value.status_code == 503 and info.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
    with pytest.raises(anthropic.APIStatusError) as info:
        claude.messages.create(
            model=XAI_MODEL, max_tokens=10, messages=[{"role": "user", "content": "[sim fault=500]"}]
        )
    assert info.value.status_code == 502 and info.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as nf:
        claude.messages.create(
            model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        )
    assert nf.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_a_stream_cut_midway_ends_with_an_error_event(gw: Env, key: str) -> None:
    body = {
        "model": XAI_MODEL,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "[sim tokens=20 fault=cut after=5]"}],
    }
    r, frames = raw_events(gw, key, body)
    assert r.status_code == 200
    assert frames[-1][0] == "error" and frames[-1][1]["error"]["type"] == "api_error"
    assert any(n == "content_block_delta" for n, _ in frames)


def test_pings_while_the_upstream_is_silent(gw: Env, key: str) -> None:
    body = {
        "model": XAI_MODEL,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "slow [sim latency=1.5]"}],
    }
    _, frames = raw_events(gw, key, body)
    names = [n for n, _ in frames]
    assert names[0] == "message_start" and names[1] == "ping"  # the stream opens before the first token
    assert names.count("message_start") == 1
    assert names[-1] == "message_stop"


def test_rpm_refusal_and_usage_in_anthropic_shape(gw: Env) -> None:
    record, key = gw.create_key("messages-rpm", limits=Limits(rpm=1))
    with anthropic.Anthropic(api_key=key, base_url=gw.base_url, max_retries=0) as c:
        c.messages.create(model=XAI_MODEL, max_tokens=10, messages=[{"role": "user", "content": "one"}])
        with pytest.raises(anthropic.RateLimitError) as info:
            c.messages.create(model=XAI_MODEL, max_tokens=10, messages=[{"role": "user", "content": "two"}])
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(info.value.response.headers["retry-after"]) >= 1
    gw.app.call(gw.app.app.state.gateway.usage.flush())
    rows = httpx.get(
        gw.base_url + "/admin/usage",
        params={"key_id": record.id, "since": "1d"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    ).json()["data"]
    assert len(rows) == 1 and rows[0]["model"] == XAI_MODEL
    assert rows[0]["requests"] == 1 and rows[0]["errors"] == 0
    assert rows[0]["prompt_tokens"] > 0 and rows[0]["completion_tokens"] > 0


def test_too_large_and_not_allowed_in_anthropic_shape(gw: Env) -> None:
    _, key = gw.create_key("grok-4.3 only", models=[XAI_MODEL])
    with anthropic.Anthropic(api_key=key, base_url=gw.base_url, max_retries=0) as c:
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            c.messages.create(model=WEB_MODEL, max_tokens=10, messages=[{"role": "user", "content": "x"}])
        assert denied.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
        with pytest.raises(anthropic.APIStatusError) as big:
            c.messages.create(
                model=XAI_MODEL, max_tokens=10, messages=[{"role": "user", "content": "x" * 70_000}]
            )
    assert big.value.status_code == 413
    assert big.value.body["error"]["type"] == "request_too_large"  # type: ignore[index]


def test_wrong_routes_and_methods_under_messages_answer_in_anthropic_shape(gw: Env, key: str) -> None:
    r = httpx.get(gw.base_url + "/v1/messages", headers={"x-api-key": key})
    assert r.status_code == 405 and r.json()["type"] == "error"
    assert r.json()["error"]["type"] == "invalid_request_error"
    r = httpx.post(gw.base_url + "/v1/messages/batches", headers={"x-api-key": key}, json={})
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = httpx.get(gw.base_url + "/v1/nothing-here")
    assert r.status_code == 404 and set(r.json()) == {"error"}  # elsewhere: OpenAI's shape
