"""The Messages encoders directly: block bookkeeping the simulator does not reach (parallel tool
calls, thinking turned off, an empty answer, usage), and the translation of requests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from grok_api.api.messages_request import to_chat
from grok_api.errors import InvalidRequest, UpstreamError
from grok_api.stream_messages import MessageAggregator, MessageStreamEncoder, error_type
from grok_api.upstreams.base import Event, Finish, ReasoningDelta, TextDelta, ToolCallDelta, Usage


def frames(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for frame in data.decode().split("\n\n"):
        if frame:
            event, payload = frame.split("\n", 1)
            out.append((event.removeprefix("event: "), json.loads(payload.removeprefix("data: "))))
    return out


def stream(batches: list[list[Event]], thinking: bool = True) -> list[tuple[str, dict[str, Any]]]:
    enc = MessageStreamEncoder("grok-4.3", thinking=thinking, prompt_estimate=7)
    data = b"".join(enc.encode(b) for b in batches) + enc.finish()
    return frames(data)


PARALLEL: list[list[Event]] = [
    [TextDelta("Checking "), TextDelta("both.")],
    [ToolCallDelta(0, id="call_a", name="weather", arguments='{"city":')],
    [ToolCallDelta(0, arguments='"Paris"}'), ToolCallDelta(1, id="call_b", name="weather", arguments="")],
    [ToolCallDelta(1, arguments='{"city":"Oslo"}')],
    [Finish("tool_calls"), Usage(prompt_tokens=20, completion_tokens=9, cached_tokens=5)],
]


def test_parallel_tool_calls_stream_as_blocks_with_their_json() -> None:
    events = stream(PARALLEL)
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert [b["type"] for b in starts] == ["text", "tool_use", "tool_use"]
    assert [b.get("id") for b in starts[1:]] == ["call_a", "call_b"]
    text = [d["delta"]["text"] for n, d in events if n == "content_block_delta" and d["index"] == 0]
    assert text == ["Checking both."]  # one delta for the batch's run of text
    for index, expected in ((1, {"city": "Paris"}), (2, {"city": "Oslo"})):
        parts = [
            d["delta"]["partial_json"]
            for n, d in events
            if n == "content_block_delta" and d["index"] == index
        ]
        assert json.loads("".join(parts)) == expected
    stops = [d["index"] for n, d in events if n == "content_block_stop"]
    assert stops == [0, 1, 2]
    delta = next(d for n, d in events if n == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert delta["usage"] == {"input_tokens": 15, "output_tokens": 9, "cache_read_input_tokens": 5}
    assert [n for n, _ in events][-1] == "message_stop"


def test_the_aggregate_agrees_with_the_stream() -> None:
    agg = MessageAggregator("grok-4.3", thinking=True, prompt_estimate=7)
    for batch in PARALLEL:
        agg.encode(batch)
    body = agg.result()
    assert [b["type"] for b in body["content"]] == ["text", "tool_use", "tool_use"]
    assert body["content"][1]["input"] == {"city": "Paris"} and body["content"][2]["input"] == {
        "city": "Oslo"
    }
    assert body["stop_reason"] == "tool_use" and body["usage"]["output_tokens"] == 9


def test_thinking_is_a_block_only_when_asked_for() -> None:
    batches: list[list[Event]] = [
        [ReasoningDelta("hmm "), ReasoningDelta("ok")],
        [TextDelta("Yes.")],
        [Finish()],
    ]
    shown = [d["content_block"]["type"] for n, d in stream(batches) if n == "content_block_start"]
    assert shown == ["thinking", "text"]
    hidden = stream(batches, thinking=False)
    assert [d["content_block"]["type"] for n, d in hidden if n == "content_block_start"] == ["text"]
    assert all(d["delta"]["type"] == "text_delta" for n, d in hidden if n == "content_block_delta")


def test_an_empty_answer_is_still_a_whole_message() -> None:
    names = [n for n, _ in stream([[Finish("length")]])]
    assert names == ["message_start", "message_delta", "message_stop"]
    enc = MessageStreamEncoder("grok-4.3", thinking=False, prompt_estimate=3)
    assert [n for n, _ in frames(enc.finish())] == ["message_start", "message_delta", "message_stop"]


def test_error_event_and_types() -> None:
    name, data = frames(MessageStreamEncoder.error(UpstreamError("boom")))[0]
    assert name == "error" and data == {"type": "error", "error": {"type": "api_error", "message": "boom"}}
    assert [error_type(s) for s in (400, 401, 403, 404, 413, 429, 500, 502, 503, 529)] == [
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "api_error",
        "overloaded_error",
        "overloaded_error",
    ]


def test_translation_orders_tool_results_before_the_users_words() -> None:
    chat = to_chat(
        {
            "model": "grok-4.3",
            "max_tokens": 5,
            "stop_sequences": ["END"],
            "metadata": {"user_id": "u1"},
            "messages": [
                {"role": "user", "content": "go"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "...", "signature": "s"},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                        {"type": "tool_use", "id": "t2", "name": "f", "input": {"a": 2}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t1",
                            "content": [{"type": "text", "text": "one"}],
                        },
                        {"type": "tool_result", "tool_use_id": "t2", "content": "two", "is_error": True},
                        {"type": "text", "text": "and now?"},
                    ],
                },
            ],
        }
    )
    assert chat["stop"] == ["END"] and chat["user"] == "u1" and chat["stream"] is False
    assert chat["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
            {"id": "t2", "type": "function", "function": {"name": "f", "arguments": '{"a":2}'}},
        ],
    }
    assert chat["messages"][2:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "one"},
        {"role": "tool", "tool_call_id": "t2", "content": "Error: two"},
        {"role": "user", "content": "and now?"},
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"system": [{"type": "image"}]}, "system.0"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"tools": [{"name": "f"}]}, "tools.0.input_schema"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_translation_refuses_bad_fields_by_name(body: dict[str, Any], param: str) -> None:
    base = {"model": "grok-4.3", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(InvalidRequest) as info:
        to_chat({**base, **body})
    assert info.value.param == param


def test_a_ping_before_the_first_token_opens_the_message() -> None:
    enc = MessageStreamEncoder("grok-4.3", thinking=False, prompt_estimate=3)
    first = frames(enc.keepalive)
    assert [n for n, _ in first] == ["message_start", "ping"]
    assert [n for n, _ in frames(enc.keepalive)] == ["ping"]
    rest = frames(enc.encode([TextDelta("hi"), Finish()]) + enc.finish())
    assert "message_start" not in [n for n, _ in rest]
