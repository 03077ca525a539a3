"""Events → chat completion chunks (SSE), directly: exact bytes for known batches, frames the
official SDK's SSE parser and chunk model accept, the same answer however the upstream's reads
were cut, and the aggregated completion agreeing with the stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from openai._streaming import SSEDecoder  # the SDK's own SSE parser
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from grok_api import stream
from grok_api.errors import RateLimited, UpstreamError
from grok_api.stream import DONE, KEEPALIVE, Aggregator, ChunkEncoder, sse_error, usage_object
from grok_api.upstreams.base import Event, Finish, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from grok_api.upstreams.http import read_lines
from grok_api.upstreams.xai import ChunkDecoder

from .recordings import reads, recorded, splits

T, R = TextDelta, ReasoningDelta
NOW = 1_700_000_000
HEAD = b'data: {"id":"chatcmpl-t","object":"chat.completion.chunk","created":1700000000,"model":"grok-3"'
TAIL = b',"logprobs":null,"finish_reason":null}]}\n\n'


def chunk(delta: bytes) -> bytes:
    return HEAD + b',"choices":[{"index":0,"delta":' + delta + TAIL


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream.time, "time", lambda: NOW + 0.9)


def encoder(include_usage: bool = True) -> ChunkEncoder:
    return ChunkEncoder("grok-3", include_usage=include_usage, cid="chatcmpl-t")


# batches -> the exact bytes each batch is encoded as
GOLDEN: list[tuple[list[Event], bytes]] = [
    ([T("Hel"), T("lo")], chunk(b'{"role":"assistant","content":""}') + chunk(b'{"content":"Hello"}')),
    (
        [R("hm"), R(" ok"), T("a"), R("b")],
        chunk(b'{"reasoning_content":"hm ok"}')
        + chunk(b'{"content":"a"}')
        + chunk(b'{"reasoning_content":"b"}'),
    ),
    ([], b""),
    (
        [T('quote " and \\ and \n and é 🎉')],
        chunk(b'{"content":"quote \\" and \\\\ and \\n and \xc3\xa9 \xf0\x9f\x8e\x89"}'),
    ),
    (
        [
            ToolCallDelta(0, "c1", "f", '{"a"'),
            ToolCallDelta(0, None, None, ":1}"),
            ToolCallDelta(1, "c2", "g"),
        ],
        chunk(
            b'{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{\\"a\\""}}]}'
        )
        + chunk(b'{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}')
        + chunk(
            b'{"tool_calls":[{"index":1,"id":"c2","type":"function","function":{"name":"g","arguments":""}}]}'
        ),
    ),
    ([T("x"), Usage(3, 4, 1, 2), T("y")], chunk(b'{"content":"x"}') + chunk(b'{"content":"y"}')),
    (
        [Finish("length")],
        HEAD + b',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"length"}]}\n\n',
    ),
]
USAGE_FRAME = (
    HEAD + b',"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7,'
    b'"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}\n\n'
)


def test_exact_bytes_for_known_batches() -> None:
    enc = encoder()
    assert (enc.id, enc.created, enc.stream, enc.keepalive) == (
        "chatcmpl-t",
        NOW,
        True,
        b": keep-alive\n\n",
    )
    assert enc.keepalive == KEEPALIVE
    for batch, expected in GOLDEN:
        assert enc.encode(batch) == expected, batch
    assert enc.usage == Usage(3, 4, 1, 2)
    assert enc.finish() == USAGE_FRAME + DONE == USAGE_FRAME + b"data: [DONE]\n\n"


def test_the_first_batch_always_opens_with_the_role() -> None:
    assert encoder().encode([]) == chunk(b'{"role":"assistant","content":""}')
    assert encoder().encode([Finish("stop")]).startswith(chunk(b'{"role":"assistant","content":""}') + HEAD)


def test_usage_is_sent_only_when_asked_for_and_known() -> None:
    asked, unasked, unknown = encoder(), encoder(include_usage=False), encoder()
    for enc in (asked, unasked):
        enc.encode([T("a"), Usage(1, 1), Usage(3, 4, 1, 2), Finish("stop")])  # the last usage wins
    assert asked.finish() == USAGE_FRAME + DONE
    assert unasked.finish() == DONE
    unknown.encode([T("a")])
    assert unknown.finish() == DONE


def test_an_error_mid_stream_is_an_error_event_then_done() -> None:
    err = UpstreamError("xai ended the answer early")
    expected = (
        b'data: {"error":{"message":"xai ended the answer early","type":"upstream_error","param":null,"code":"upstream_error"}}\n\n'
        + DONE
    )
    assert encoder().error(err) == sse_error(err) == expected
    events = list(SSEDecoder().iter_bytes(iter([expected])))
    assert orjson.loads(events[0].data)["error"]["code"] == "upstream_error" and events[1].data == "[DONE]"


async def decoded_batches(chunks: list[bytes]) -> list[list[Event]]:
    """The batches the xAI decoder makes of a body arriving as ``chunks`` (one per read)."""
    decoder, out = ChunkDecoder("xai"), []
    async for lines in read_lines(reads(chunks)):
        events = decoder.feed(lines)
        if events:
            out.append(events)
    assert decoder.done and decoder.error is None
    return out


def sdk_view(body: bytes) -> dict[str, Any]:
    """The answer as a client using the official SDK sees it: every frame a valid chunk."""
    text, reasoning, tools, finish, usage, ended = "", "", {}, None, None, False
    frames = body.split(b"\n\n")
    assert frames.pop() == b"" and all(f.startswith(b"data: ") and b"\n" not in f for f in frames)
    for sse in SSEDecoder().iter_bytes(iter([body])):
        assert not ended, "nothing after [DONE]"
        if sse.data == "[DONE]":
            ended = True
            continue
        c = ChatCompletionChunk.model_validate(orjson.loads(sse.data))
        assert (c.id, c.model, c.created) == ("chatcmpl-t", "grok-3", NOW)
        if c.usage is not None:
            usage = c.usage.model_dump(exclude_none=True)
        for choice in c.choices:
            text += choice.delta.content or ""
            reasoning += getattr(choice.delta, "reasoning_content", None) or ""
            for call in choice.delta.tool_calls or []:
                entry = tools.setdefault(
                    call.index, {"id": call.id, "name": call.function.name, "arguments": ""}
                )
                entry["arguments"] += call.function.arguments or ""
            finish = choice.finish_reason or finish
    assert ended
    return {"text": text, "reasoning": reasoning, "tools": tools, "finish": finish, "usage": usage}


EXPECTED_VIEW = {
    "xai_text.sse": ("[turn 1] You said: héllo wörld — 世界 🎉", "", "stop", 17),
    "xai_reasoning.sse": (
        "[turn 1] You said: héllo wörld — 世界 🎉",
        "Thinking about: héllo wörld — 世界 🎉 ",
        "stop",
        24,
    ),
    "xai_tool.sse": ("", "", "tool_calls", 17),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_VIEW))
async def test_recorded_streams_reach_the_client_alike_however_cut(name: str) -> None:
    text, reasoning, finish, total = EXPECTED_VIEW[name]
    views, per_event = [], set()
    for _how, chunks in splits(recorded(name)):
        batches = await decoded_batches(chunks)
        enc = encoder()
        body = b"".join(enc.encode(b) for b in batches) + enc.finish()
        views.append(sdk_view(body))
        one_each = encoder()  # the same Events, one a batch: the same bytes whatever the cuts
        flat = [e for b in batches for e in b]
        per_event.add(b"".join(one_each.encode([e]) for e in flat) + one_each.finish())
    assert len(per_event) == 1
    view = views[0]
    assert all(v == view for v in views)
    assert (view["text"], view["reasoning"], view["finish"], view["usage"]["total_tokens"]) == (
        text,
        reasoning,
        finish,
        total,
    )
    if name == "xai_tool.sse":
        assert view["tools"] == {
            0: {
                "id": "call_01bb32b25696",
                "name": "lookup",
                "arguments": '{"input":"héllo wörld — 世界 🎉 [sim tool=1]"}',
            }
        }


def aggregate(batches: Sequence[Sequence[Event]]) -> dict[str, Any]:
    agg = Aggregator("grok-3")
    for b in batches:
        assert agg.encode(b) == b""
    result = agg.result()
    assert orjson.loads(agg.finish()) | {"id": result["id"]} == result
    ChatCompletion.model_validate(result)
    assert result["id"].startswith("chatcmpl-") and len(result["id"]) == 33 and result["created"] == NOW
    return result


@pytest.mark.parametrize("name", sorted(EXPECTED_VIEW))
async def test_the_aggregated_answer_agrees_with_the_stream(name: str) -> None:
    batches = await decoded_batches([recorded(name)])
    enc = encoder()
    view = sdk_view(b"".join(enc.encode(b) for b in batches) + enc.finish())
    result = aggregate(batches)
    choice = result["choices"][0]
    message = choice["message"]
    assert (message["content"] or "", message.get("reasoning_content", "")) == (
        view["text"],
        view["reasoning"],
    )
    assert choice["finish_reason"] == view["finish"] and result["usage"] == view["usage"]
    assert [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls", [])
    ] == [(t["id"], t["name"], t["arguments"]) for t in view["tools"].values()]
    assert (message["role"], message["refusal"], choice["index"], choice["logprobs"]) == (
        "assistant",
        None,
        0,
        None,
    )


def test_aggregator_shapes() -> None:
    only_tools = aggregate(
        [
            [
                ToolCallDelta(1, "b", "g", "{}"),
                ToolCallDelta(0, "a", "f", '{"x"'),
                ToolCallDelta(0, None, None, ":1}"),
            ]
        ]
    )
    message = only_tools["choices"][0]["message"]
    assert message["content"] is None and "reasoning_content" not in message and "usage" not in only_tools
    assert message["tool_calls"] == [
        {"id": "a", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}},
        {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
    ]
    late = aggregate([[ToolCallDelta(0, None, None, "{"), ToolCallDelta(0, "id", "name", "}")]])
    assert late["choices"][0]["message"]["tool_calls"] == [
        {"id": "id", "type": "function", "function": {"name": "name", "arguments": "{}"}}
    ]
    empty = aggregate([])
    assert empty["choices"][0]["message"]["content"] == "" and empty["choices"][0]["finish_reason"] == "stop"
    both = aggregate([[T("a"), ToolCallDelta(0, "c", "f"), Finish("tool_calls"), Finish("length")]])
    assert both["choices"][0]["message"]["content"] == "a" and both["choices"][0]["finish_reason"] == "length"
    assert both["object"] == "chat.completion" and both["model"] == "grok-3"
    err = RateLimited("slow", retry_after=3)
    assert (
        Aggregator("m").error(err) == err.json_bytes()
        and not Aggregator.stream
        and Aggregator.keepalive == b""
    )


def test_usage_object() -> None:
    assert usage_object(Usage(3, 4, 1, 2)) == {
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 1},
    }


def test_completion_ids_are_random_and_openai_shaped() -> None:
    ids = {stream.completion_id() for _ in range(50)}
    assert len(ids) == 50 and all(i.startswith("chatcmpl-") and len(i) == 33 for i in ids)
    assert ChunkEncoder("m", include_usage=False).id.startswith("chatcmpl-")
