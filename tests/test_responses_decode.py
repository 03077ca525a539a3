"""xAI's Responses event stream decoded into Events, from lines shaped as xAI sends them (as in
public recordings of xAI's API), and those Events encoded back as OpenAI's published events."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from grok_api.api.responses_encode import ResponsesEncoder
from grok_api.errors import UpstreamError
from grok_api.upstreams.base import (
    Citation,
    Event,
    Finish,
    ReasoningDelta,
    ResponseId,
    ServerTool,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from grok_api.upstreams.xai_responses import ResponsesDecoder

from .responses_helpers import check_event

RID = "73b3c852-45b3-4443-e6f4-0327a9cfe526_us-east-1"


def lines(*events: dict[str, Any]) -> list[bytes]:
    out = []
    for n, e in enumerate(events):
        out.append(b"event: " + e["type"].encode())
        out.append(b"data: " + orjson.dumps({"sequence_number": n, **e}))
        out.append(b"")
    return out


def created() -> dict[str, Any]:
    return {
        "type": "response.created",
        "response": {"id": RID, "object": "response", "output": [], "status": "in_progress"},
    }


def completed(output: list[dict[str, Any]]) -> dict[str, Any]:
    usage = {
        "input_tokens": 680,
        "input_tokens_details": {"cached_tokens": 642},
        "output_tokens": 484,
        "output_tokens_details": {"reasoning_tokens": 264},
        "total_tokens": 1164,
        "num_sources_used": 0,
        "num_server_side_tools_used": 1,
    }
    return {
        "type": "response.completed",
        "response": {"id": RID, "status": "completed", "output": output, "usage": usage},
    }


def test_reasoning_text_citations_and_usage() -> None:
    rs, msg = "rs_" + RID, "msg_" + RID
    annotation = {"type": "url_citation", "url": "https://x.com/i/status/1", "start_index": 0, "end_index": 3}
    search = {
        "id": "ws_1",
        "type": "web_search_call",
        "status": "completed",
        "action": {"type": "search", "query": "", "sources": []},
    }
    message = {
        "content": [{"type": "output_text", "text": "xAI is", "logprobs": [], "annotations": [annotation]}],
        "id": msg,
        "role": "assistant",
        "type": "message",
        "status": "completed",
    }
    d = ResponsesDecoder("xai")
    events = d.feed(
        lines(
            created(),
            {
                "type": "response.output_item.added",
                "item": {"id": rs, "summary": [], "type": "reasoning", "status": "in_progress"},
                "output_index": 0,
            },
            {
                "type": "response.reasoning_summary_text.delta",
                "delta": "First",
                "item_id": rs,
                "output_index": 0,
                "summary_index": 0,
            },
            {
                "type": "response.output_item.added",
                "item": {**search, "status": "in_progress"},
                "output_index": 1,
            },
            {"type": "response.web_search_call.searching", "item_id": "ws_1", "output_index": 1},
            {"type": "response.output_item.done", "item": search, "output_index": 1},
            {
                "type": "response.output_text.delta",
                "content_index": 0,
                "delta": "xAI",
                "item_id": msg,
                "output_index": 2,
                "logprobs": [],
            },
            {
                "type": "response.output_text.delta",
                "content_index": 0,
                "delta": " is",
                "item_id": msg,
                "output_index": 2,
                "logprobs": [],
            },
            {
                "type": "response.output_text.done",
                "content_index": 0,
                "item_id": msg,
                "output_index": 2,
                "text": "xAI is",
                "annotations": [annotation],
            },
            completed([search, message]),
        )
    )
    assert d.error is None and d.done
    assert events == [
        ResponseId(RID),
        ReasoningDelta("First"),
        ServerTool(search),
        TextDelta("xAI"),
        TextDelta(" is"),
        Citation("https://x.com/i/status/1", ""),  # once, though xAI repeats it in the final output
        Usage(prompt_tokens=680, completion_tokens=484, reasoning_tokens=264, cached_tokens=642),
        Finish("stop"),
    ]


def test_a_function_call_arrives_whole_or_in_pieces() -> None:
    whole = {
        "call_id": "call_1",
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
        "type": "function_call",
        "id": "fc_1",
        "status": "completed",
    }
    d = ResponsesDecoder("xai")
    events = d.feed(
        lines(
            created(),
            {"type": "response.output_item.added", "item": whole, "output_index": 0},
            {"type": "response.output_item.done", "item": whole, "output_index": 0},
            {
                "type": "response.output_item.added",
                "item": {**whole, "id": "fc_2", "call_id": "call_2", "arguments": ""},
                "output_index": 1,
            },
            {
                "type": "response.function_call_arguments.delta",
                "item_id": "fc_2",
                "output_index": 1,
                "delta": '{"ci',
            },
            {
                "type": "response.output_item.done",
                "item": {**whole, "id": "fc_2", "call_id": "call_2"},
                "output_index": 1,
            },
            completed([]),
        )
    )
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert calls == [
        ToolCallDelta(0, id="call_1", name="get_weather"),
        ToolCallDelta(0, arguments='{"city":"Paris"}'),
        ToolCallDelta(1, id="call_2", name="get_weather"),
        ToolCallDelta(1, arguments='{"ci'),
        ToolCallDelta(1, arguments='ty":"Paris"}'),
    ]
    assert events[-1] == Finish("tool_calls")


def test_failures_are_raised_not_passed_on() -> None:
    d = ResponsesDecoder("xai")
    d.feed(
        lines(
            created(),
            {
                "type": "response.failed",
                "response": {
                    "id": RID,
                    "status": "failed",
                    "error": {"code": "server_error", "message": "boom"},
                },
            },
        )
    )
    assert isinstance(d.error, UpstreamError) and "boom" in d.error.message
    bad = ResponsesDecoder("xai")
    bad.feed([b"data: {not json"])
    assert isinstance(bad.error, UpstreamError)


def test_incomplete_becomes_finish_length_and_an_incomplete_response() -> None:
    d = ResponsesDecoder("xai")
    events = d.feed(
        lines(
            created(),
            {"type": "response.incomplete", "response": {"id": RID, "status": "incomplete", "output": []}},
        )
    )
    assert events[-1] == Finish("length")
    enc = ResponsesEncoder("grok-4", {}, stream=False)
    enc.encode([TextDelta("cut")])
    enc.encode(events)
    body = orjson.loads(enc.finish())
    assert body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}


def test_encoded_events_are_published_shapes_with_one_sequence() -> None:
    enc = ResponsesEncoder(
        "grok-4",
        {
            "tools": [],
            "tool_choice": "auto",
            "temperature": None,
            "top_p": None,
            "instructions": None,
            "metadata": {},
            "parallel_tool_calls": True,
        },
        stream=True,
    )
    batches: list[list[Event]] = [
        [ResponseId(RID), ReasoningDelta("hm"), ReasoningDelta(" ok")],
        [TextDelta("Hello"), Citation("https://x.ai", "xAI"), TextDelta(" world")],
        [ToolCallDelta(0, id="call_1", name="f"), ToolCallDelta(0, arguments="{}")],
        [Usage(3, 4), Finish("tool_calls")],
    ]
    raw = b"".join(enc.encode(b) for b in batches) + enc.finish()
    frames = [f for f in raw.decode().split("\n\n") if f]
    events = [orjson.loads(f.split("\ndata: ", 1)[1]) for f in frames]
    for n, (frame, event) in enumerate(zip(frames, events, strict=True)):
        assert frame.startswith(f"event: {event['type']}\n")
        assert event["sequence_number"] == n
        check_event(event)
    assert events[0]["response"]["id"] == RID
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][1]["content"][0]["text"] == "Hello world"
    assert final["output"][1]["content"][0]["annotations"][0]["url"] == "https://x.ai"
    assert final["usage"]["total_tokens"] == 7


# -- deltas read exactly as JSON says, whatever the bytes around them ---------------------------

TEXT, THINK = "response.output_text.delta", "response.reasoning_summary_text.delta"
DELTA_FIELDS = {"item_id": "msg_" + RID, "output_index": 0, "content_index": 0, "logprobs": []}
# characters JSON must escape, or may: quotes, backslashes, controls, DEL, 2-, 3- and 4-byte UTF-8
ALPHABET = '"\\/\b\f\n\r\t\x00\x1f\x7f aZ09:,{}[]é—世\u2028\U0001f389\U0010ffff'


def written(event: dict[str, Any], how: str) -> bytes:
    """One ``data:`` line of ``event`` as some JSON writer writes it."""
    if how == "orjson":  # compact, UTF-8 as is
        return b"data: " + orjson.dumps(event)
    if how == "ascii":  # \u escapes, surrogate pairs above the BMP, spaces after , and :
        return b"data: " + json.dumps(event).encode()
    return b"data:" + json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()  # no space


def shuffled(event: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    keys = list(event)
    rng.shuffle(keys)
    return {k: event[k] for k in keys}


def test_deltas_decode_to_the_very_string_sent() -> None:
    rng = random.Random(20261128)
    for n in range(600):
        text = "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 12)))
        kind, make = (TEXT, TextDelta) if n % 3 else (THINK, ReasoningDelta)
        event = shuffled({"type": kind, "sequence_number": n, "delta": text, **DELTA_FIELDS}, rng)
        how = ("orjson", "ascii", "tight")[n % 3]
        d = ResponsesDecoder("xai")
        line = written(event, how)
        assert (d.feed([b"event: " + kind.encode(), line, b""]), d.error) == ([make(text)], None), line


@pytest.mark.parametrize(
    ("line", "text"),
    [
        # the key "delta" and the type's name inside other strings, before the real ones
        (rb'data: {"item_id":"x\",\"delta\":\"evil","type":"response.output_text.delta","delta":"ok"}', "ok"),
        (rb'data: {"note":"\"type\":\"response.output_text.delta\"","type":"response.in_progress"}', None),
        (rb'data: {"type":"response.output_text.delta","extra":{"delta":"nested"},"delta":"top"}', "top"),
        (rb'data: {"delta":"first","sequence_number":7,"type":"response.output_text.delta"}', "first"),
        (
            rb'data: {"type":"response.output_text.delta","delta":"say \"hi\" \\o/ \\\\"}',
            'say "hi" \\o/ \\\\',
        ),
        (rb'data: {"type":"response.output_text.delta","delta":"ends in \\"}', "ends in \\"),
        (rb'data: {"type":"response.output_text.delta","delta":"\u00e9\u4e16\ud83c\udf89\/"}', "é世🎉/"),
        (rb'data: {"type":"response.output_text.delta","delta":"\u0022\u005c"}', '"\\'),
        (rb'data: {"type":"response.output_text.delta","delta":""}', ""),
        (b'data: {"type":"response.output_text.delta","delta":"crlf"}\r', "crlf"),
        (b'data: \t {"type" : "response.output_text.delta" , "delta" : "spaced"} ', "spaced"),
    ],
)
def test_adversarial_delta_lines(line: bytes, text: str | None) -> None:
    d = ResponsesDecoder("xai")
    # the ``event:`` line says a text delta every time: only the data's own type counts
    events = d.feed([b"event: response.output_text.delta", line, b""])
    assert (events, d.error) == ([TextDelta(text)] if text is not None else [], None)


@pytest.mark.parametrize(
    "delta",
    [
        rb"\ud800",  # a lone surrogate
        rb"\udc00\ud800",  # a pair in the wrong order
        rb"\u12",  # a short \u escape
        rb"\x41",  # no such escape
        b"tab\there",  # a control character unescaped
        b"\xff\xfe",  # not UTF-8
        b"\xed\xa0\x80",  # a surrogate written as UTF-8
        b'un"quoted',  # a quote that ends the string early
        b"no end\\",  # the closing quote escaped
    ],
)
def test_a_delta_json_refuses_stops_the_stream(delta: bytes) -> None:
    good = b'data: {"type":"response.output_text.delta","delta":"before"}'
    bad = b'data: {"type":"response.output_text.delta","delta":"' + delta + b'","sequence_number":1}'
    d = ResponsesDecoder("xai")
    assert d.feed([good, b"", bad, b"", good]) == [TextDelta("before")]
    assert isinstance(d.error, UpstreamError)
    assert d.error.message == f"xai sent a malformed stream line: {bad[5:85]!r}"


def test_a_delta_of_the_wrong_shape_is_an_unexpected_shape() -> None:
    for line in (b'data: {"type":"response.output_text.delta"}', b'data: ["response.output_text.delta"]'):
        d = ResponsesDecoder("up")
        assert d.feed([line]) == []
        assert isinstance(d.error, UpstreamError)
        assert d.error.message == "up sent a Responses event of an unexpected shape"
