"""xAI's Responses event stream decoded into Events, from lines shaped as xAI sends them (as in
public recordings of xAI's API), and those Events encoded back as OpenAI's published events."""

from __future__ import annotations

from typing import Any

import orjson

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
