"""xAI's SSE → Events, directly: recorded streams cut at every byte boundary decode to the same
Events through ``XAIUpstream.stream`` (its real decode loop over ``read_lines`` and
``ChunkDecoder``); hand-written streams cover SSE's other shapes, malformed and truncated input,
errors in-band and before the body, and the non-streamed completion."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from grok_api.errors import GatewayError, InvalidRequest, ModelNotFound, RateLimited, UpstreamError
from grok_api.errors import UpstreamUnavailable as Unavailable
from grok_api.logs import REQUEST_ID
from grok_api.upstreams.base import (
    ChatRequest,
    Event,
    Finish,
    Image,
    ReasoningDelta,
    ResponseId,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from grok_api.upstreams.http import HTTPOptions, read_lines
from grok_api.upstreams.xai import ChunkDecoder, XAIUpstream, events_from_completion, usage_from

from .recordings import connector_refused, reads, recorded, splits

T, R = TextDelta, ReasoningDelta
ANSWER = [T(w) for w in ["[turn ", "1] ", "You ", "said: ", "héllo ", "wörld ", "— ", "世界 ", "🎉"]]
THOUGHT = [R(w) for w in ["Thinking ", "about: ", "héllo ", "wörld ", "— ", "世界 ", "🎉 "]]

RECORDED: dict[str, list[Event]] = {
    "xai_text.sse": [*ANSWER, Finish("stop"), Usage(prompt_tokens=8, completion_tokens=9)],
    "xai_reasoning.sse": [  # xAI counts reasoning outside completion_tokens; folded in (9 + 7)
        *THOUGHT,
        *ANSWER,
        Finish("stop"),
        Usage(prompt_tokens=8, completion_tokens=16, reasoning_tokens=7),
    ],
    "xai_tool.sse": [
        ToolCallDelta(0, "call_01bb32b25696", "lookup", '{"input":"héllo wörld — 世界 🎉 [sim tool=1]"}'),
        Finish("tool_calls"),
        Usage(prompt_tokens=10, completion_tokens=7),
    ],
}


class Replay:
    """Stands in for aiohttp's session and response: answers ``status`` and hands the body over
    in exactly the reads given, so the cuts are ours, not the kernel's."""

    def __init__(self, reads: list[bytes], status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.reads, self.status, self.headers, self.reason = reads, status, headers or {}, "Reason"
        self.sent: dict[str, Any] = {}

    def post(self, url: str, **kw: Any) -> Replay:
        self.sent = {"url": url, **kw}
        return self

    def get(self, url: str, **kw: Any) -> Replay:
        return self.post(url, **kw)

    async def __aenter__(self) -> Replay:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    @property
    def content(self) -> Replay:
        return self

    def iter_any(self) -> AsyncIterator[bytes]:
        return reads(self.reads)

    async def read(self, limit: int = -1) -> bytes:
        return b"".join(self.reads)[: limit if limit >= 0 else None]


async def run(
    chunks: list[bytes], *, stream: bool = True, status: int = 200, headers: dict[str, str] | None = None
) -> tuple[list[Event], GatewayError | None, Replay]:
    """Every Event the upstream yields for a body arriving as ``chunks``, and what it raised."""
    upstream = XAIUpstream(base_url="http://xai.test/v1", api_key="xai-k")
    await upstream.aclose()  # the real pool is not used: the replay answers instead
    replay = Replay(chunks, status, headers)
    upstream._session = replay  # type: ignore[assignment]
    request = ChatRequest(
        "m", "grok-3", [{"role": "user", "content": "x"}], stream, {"model": "m", "stream": stream}
    )
    events, error = await collect(upstream, request)
    return events, error, replay


async def collect(up: XAIUpstream, request: ChatRequest) -> tuple[list[Event], GatewayError | None]:
    """The Events ``up`` yields for ``request``, and what it raised."""
    events: list[Event] = []
    try:
        async for batch in up.stream(request):
            assert batch, "a batch is never empty"
            events += batch
    except GatewayError as exc:
        return events, exc
    return events, None


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_recorded_streams_decode_alike_however_cut(name: str) -> None:
    data = recorded(name)
    for how, chunks in splits(data):
        events, error, _ = await run(chunks)
        assert (events, error) == (RECORDED[name], None), how


async def test_the_request_asks_for_a_stream_with_usage() -> None:
    _, _, replay = await run([recorded("xai_text.sse")])
    sent = orjson.loads(replay.sent["data"])
    assert (sent["model"], sent["stream"], sent["stream_options"]) == (
        "grok-3",
        True,
        {"include_usage": True},
    )
    assert replay.sent["url"] == "http://xai.test/v1/chat/completions"
    assert replay.sent["headers"]["Authorization"] == "Bearer xai-k"


def frame(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def delta(d: dict[str, Any], finish: str | None = None) -> bytes:
    return frame({"choices": [{"index": 0, "delta": d, "finish_reason": finish}]})


DONE = b"data: [DONE]\n\n"
HELLO = [T("Hel"), T("lo")]
USAGE = frame({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})

# body -> (Events, error class or None, words the error's message must hold)
STREAMS: dict[str, tuple[bytes, list[Event], type[GatewayError] | None, str]] = {
    "crlf, comments and other fields": (
        b": ping\r\nevent: message\r\nid: 1\r\nretry: 10\r\n"
        + delta({"content": "Hel"}).replace(b"\n", b"\r\n")
        + b"data:"
        + orjson.dumps({"choices": [{"delta": {"content": "lo"}}]})
        + b"\r\n\r\ndata:\r\ndata: \r\n\r\n"
        + DONE.replace(b"\n", b"\r\n"),
        [*HELLO, Finish("stop")],
        None,
        "",
    ),
    "done without a newline at the end": (
        delta({"content": "Hel"}) + delta({"content": "lo"}) + b"data: [DONE]",
        [*HELLO, Finish("stop")],
        None,
        "",
    ),
    "nothing after done is read": (
        delta({"content": "Hel"}) + delta({"content": "lo"}) + DONE + b"data: {oops\n\n",
        [*HELLO, Finish("stop")],
        None,
        "",
    ),
    "finish, usage, done": (
        delta({"role": "assistant", "content": "Hel"})
        + delta({"content": "lo"})
        + delta({}, "length")
        + USAGE
        + DONE,
        [*HELLO, Finish("length"), Usage(3, 2)],
        None,
        "",
    ),
    "a second finish is ignored": (
        delta({"content": "Hel"}, "stop") + delta({"content": "lo"}, "length") + DONE,
        [T("Hel"), Finish("stop"), T("lo")],
        None,
        "",
    ),
    "usage and text in one chunk": (
        frame({"choices": [{"delta": {"content": "Hel"}}], "usage": {"prompt_tokens": 1}}) + DONE,
        [T("Hel"), Usage(1, 0), Finish("stop")],
        None,
        "",
    ),
    "reasoning and content in one delta": (
        delta({"reasoning_content": "hm", "content": "Hel"}) + DONE,
        [R("hm"), T("Hel"), Finish("stop")],
        None,
        "",
    ),
    "a tool call in pieces": (
        delta({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}]})
        + delta({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]})
        + delta(
            {
                "tool_calls": [
                    {"index": 0, "function": {"arguments": "1}"}},
                    {"index": 1, "id": "c2", "function": {"name": "g"}},
                ]
            }
        )
        + delta({}, "tool_calls")
        + DONE,
        [
            ToolCallDelta(0, "c1", "f", ""),
            ToolCallDelta(0, None, None, '{"a":'),
            ToolCallDelta(0, None, None, "1}"),
            ToolCallDelta(1, "c2", "g", ""),
            Finish("tool_calls"),
        ],
        None,
        "",
    ),
    "empty deltas and choices": (
        frame({"choices": []}) + delta({}) + delta({"content": ""}) + delta({"content": "Hel"}) + DONE,
        [T("Hel"), Finish("stop")],
        None,
        "",
    ),
    "truncated mid-line": (
        delta({"content": "Hel"}) + delta({"content": "lo"})[:-9],
        [T("Hel")],
        UpstreamError,
        "malformed",
    ),
    "truncated between frames": (
        delta({"content": "Hel"}) + delta({"content": "lo"}),
        [*HELLO],
        UpstreamError,
        "before it was complete",
    ),
    "empty body": (b"", [], UpstreamError, "before it was complete"),
    "malformed line": (
        delta({"content": "Hel"}) + b"data: {this is not json\n\n" + DONE,
        [T("Hel")],
        UpstreamError,
        "malformed stream line",
    ),
    "not utf-8": (
        delta({"content": "Hel"}) + b'data: {"choices":[{"delta":{"content":"\xff\xfe"}}]}\n\n' + DONE,
        [T("Hel")],
        UpstreamError,
        "malformed",
    ),
    "unexpected shape": (
        delta({"content": "Hel"}) + frame({"choices": "oops"}) + DONE,
        [T("Hel")],
        UpstreamError,
        "unexpected shape",
    ),
    "a list for a chunk": (frame([1, 2]) + DONE, [], UpstreamError, "unexpected shape"),
    "error in-band": (
        delta({"content": "Hel"}) + frame({"error": {"message": "overloaded", "code": "x"}}) + DONE,
        [T("Hel")],
        UpstreamError,
        "xai failed (502): overloaded",
    ),
    "error in-band, as a string": (
        frame({"code": "Internal", "error": "boom"}) + DONE,
        [],
        UpstreamError,
        "xai failed (502): boom",
    ),
}


@pytest.mark.parametrize("name", sorted(STREAMS))
async def test_hand_written_streams(name: str) -> None:
    body, expected, error, words = STREAMS[name]
    for how, chunks in splits(body) if body else [("empty", [])]:
        events, raised, _ = await run(chunks)
        assert events == expected, how
        assert (None if raised is None else type(raised)) is error, how  # the exact class
        if raised is not None:
            assert words in raised.message and raised.status == 502, (how, raised.message)


async def test_read_lines_keeps_the_last_line_without_its_newline() -> None:
    batches = [b async for b in read_lines(reads([b"a\nb", b"c\n\nd", b"e"]))]
    assert batches == [[b"a"], [b"bc", b""], [b"de"]]
    assert [b async for b in read_lines(reads([b"no newline", b" at all"]))] == [[b"no newline at all"]]
    assert [b async for b in read_lines(reads([]))] == []


def test_decoder_state_after_feeding() -> None:
    d = ChunkDecoder("xai")
    assert d.feed([b'data: {"choices":[{"delta":{"content":"a"}}]}']) == [T("a")]
    assert (d.done, d.finished, d.error) == (False, False, None)
    assert d.feed([b"data: [DONE]"]) == [Finish("stop")]
    assert (d.done, d.finished) == (True, True)
    bad = ChunkDecoder("up")
    assert bad.feed([b'data: {"choices":[{"delta":{"content":"a"}}]}', b"data: {nope"]) == [T("a")]
    assert isinstance(bad.error, UpstreamError) and bad.error.message.startswith(
        "up sent a malformed stream line"
    )


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        ({}, Usage()),
        ({"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}, Usage(5, 7)),
        (  # reasoning outside completion (xAI): folded in
            {
                "prompt_tokens": 5,
                "completion_tokens": 7,
                "total_tokens": 15,
                "completion_tokens_details": {"reasoning_tokens": 3},
            },
            Usage(5, 10, 3),
        ),
        (  # reasoning already inside completion (OpenAI): kept as is
            {
                "prompt_tokens": 5,
                "completion_tokens": 7,
                "total_tokens": 12,
                "completion_tokens_details": {"reasoning_tokens": 3},
            },
            Usage(5, 7, 3),
        ),
        (
            {"prompt_tokens": 9, "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens": None},
            Usage(9, 0, 0, 4),
        ),
    ],
)
def test_usage_means_what_openai_means(usage: dict[str, Any], expected: Usage) -> None:
    assert usage_from(usage) == expected


COMPLETION = {
    "choices": [
        {
            "message": {
                "content": "hi",
                "reasoning_content": "hm",
                "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{}"}}],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (COMPLETION, [R("hm"), T("hi"), ToolCallDelta(0, "c", "f", "{}"), Usage(2, 1), Finish("tool_calls")]),
        ({"choices": [{"message": {"content": "hi"}, "finish_reason": None}]}, [T("hi"), Finish("stop")]),
        ({"choices": [{"message": {"content": ""}}]}, [Finish("stop")]),
        ({"choices": []}, [Finish("stop")]),
    ],
)
def test_non_streamed_completion(body: dict[str, Any], expected: list[Event]) -> None:
    assert events_from_completion(body) == expected


@pytest.mark.parametrize("body", [None, [], {"choices": None}, {"object": "chat.completion"}])
def test_completion_without_choices_is_an_upstream_error(body: object) -> None:
    with pytest.raises(UpstreamError, match="without choices"):
        events_from_completion(body)


async def test_non_streamed_through_the_upstream() -> None:
    events, error, replay = await run(
        [orjson.dumps(COMPLETION)[:20], orjson.dumps(COMPLETION)[20:]], stream=False
    )
    assert (events[-1], error) == (Finish("tool_calls"), None)
    assert (
        "stream" not in orjson.loads(replay.sent["data"]) or not orjson.loads(replay.sent["data"])["stream"]
    )
    _, error, _ = await run([b"<html>"], stream=False)
    assert isinstance(error, UpstreamError) and "malformed response" in error.message


AUTH = "xai refused the gateway's upstream credentials (XAI_API_KEY); the operator must set a valid key"
SLOW = "xai is rate limiting requests: slow down"
# status, body, headers -> error class, code, the exact message, retry_after (seconds)
REFUSALS: list[tuple[int, bytes, dict[str, str], type[GatewayError], str, str, float | None]] = [
    (
        400,
        b'{"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***ey."}',
        {},
        UpstreamError,
        "upstream_auth_failed",
        AUTH,
        None,
    ),
    (401, b'{"error":"no"}', {}, UpstreamError, "upstream_auth_failed", AUTH, None),
    (403, b"", {}, UpstreamError, "upstream_auth_failed", AUTH, None),
    (
        400,
        b'{"error":{"message":"bad temperature"}}',
        {},
        InvalidRequest,
        "invalid_request",
        "bad temperature",
        None,
    ),
    (400, b'{"error":{"code":"x"}}', {}, InvalidRequest, "invalid_request", "{'code': 'x'}", None),
    (422, b'{"message":"unprocessable"}', {}, InvalidRequest, "invalid_request", "unprocessable", None),
    (
        422,
        b'{"error":"","detail":"d"}',
        {},
        InvalidRequest,
        "invalid_request",
        "{'error': '', 'detail': 'd'}",
        None,
    ),
    (
        404,
        b'{"code":"Some requested entity was not found","error":"The model grok-9 does not exist."}',
        {},
        ModelNotFound,
        "model_not_found",
        "The model grok-9 does not exist.",
        None,
    ),
    (413, b'{"error":"too big"}', {}, InvalidRequest, "request_too_large", "too big", None),
    (429, b'{"error":"slow down"}', {"Retry-After": "7"}, RateLimited, "rate_limit_exceeded", SLOW, 7.0),
    (
        429,
        b'{"error":"slow down"}',
        {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
        RateLimited,
        "rate_limit_exceeded",
        SLOW,
        1.0,
    ),
    (429, b'{"error":"slow down"}', {}, RateLimited, "rate_limit_exceeded", SLOW, 1.0),
    (429, b'{"error":"slow down"}', {"Retry-After": "-5"}, RateLimited, "rate_limit_exceeded", SLOW, 0.0),
    (429, b'{"error":"slow down"}', {"Retry-After": "0"}, RateLimited, "rate_limit_exceeded", SLOW, 0.0),
    (429, b'{"error":"slow down"}', {"Retry-After": "2.5"}, RateLimited, "rate_limit_exceeded", SLOW, 2.5),
    (
        500,
        b"Internal Server Error",
        {},
        UpstreamError,
        "upstream_error",
        "xai failed (500): Internal Server Error",
        None,
    ),
    (
        500,
        b"\xff\xfe broken",
        {},
        UpstreamError,
        "upstream_error",
        "xai failed (500): \ufffd\ufffd broken",
        None,
    ),
    (
        500,
        b"  x" * 300,
        {},
        UpstreamError,
        "upstream_error",
        "xai failed (500): " + ("  x" * 300).strip()[:500],
        None,
    ),
    (502, b"", {}, UpstreamError, "upstream_error", "xai failed (502): Reason", None),
    (
        503,
        b'{"error":{"code":"x"}}',
        {},
        Unavailable,
        "upstream_unavailable",
        "xai is unavailable (503): {'code': 'x'}",
        None,
    ),
    (500, b'"just a string"', {}, UpstreamError, "upstream_error", "xai failed (500): just a string", None),
    (
        500,
        b'["x"' + b', "y"' * 200 + b"]",
        {},
        UpstreamError,
        "upstream_error",
        "xai failed (500): " + str(["x", *["y"] * 200])[:500],
        None,
    ),
]


@pytest.mark.parametrize(("status", "body", "headers", "error", "code", "message", "retry"), REFUSALS)
async def test_refusals_before_the_body(
    status: int,
    body: bytes,
    headers: dict[str, str],
    error: type[GatewayError],
    code: str,
    message: str,
    retry: float | None,
) -> None:
    events, raised, _ = await run([body], status=status, headers=headers)
    assert events == [] and type(raised) is error
    assert raised is not None and (raised.code, raised.message) == (code, message)
    assert getattr(raised, "retry_after", None) == retry
    if retry is not None:
        assert raised.headers["Retry-After"] == str(max(1, int(retry + 0.999)))
    assert "xai-k" not in raised.message


async def test_what_is_sent() -> None:
    upstream = XAIUpstream(
        base_url="http://xai.test/v1/", api_key="xai-k", http=HTTPOptions(proxy="http://proxy.test:3128")
    )
    await upstream.aclose()
    replay = Replay([recorded("xai_text.sse")])
    upstream._session = replay  # type: ignore[assignment]
    body = {"model": "alias", "messages": [], "stream_options": {"include_usage": False}, "temperature": 0.5}
    [e async for b in upstream.stream(ChatRequest("alias", "grok-3", [], True, body)) for e in b]
    sent = orjson.loads(replay.sent.pop("data"))
    assert sent == {
        "model": "grok-3",
        "messages": [],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
    }
    assert body["model"] == "alias" and "stream" not in body  # the client's body is not changed
    assert replay.sent == {
        "url": "http://xai.test/v1/chat/completions",
        "headers": {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": "Bearer xai-k",
        },
        "proxy": "http://proxy.test:3128",
    }
    replay.reads = [orjson.dumps(COMPLETION)]
    plain = {"model": "m", "stream": False, "stream_options": {"include_usage": True}}
    [e async for b in upstream.stream(ChatRequest("m", "grok-3", [], False, plain)) for e in b]
    assert orjson.loads(replay.sent["data"]) == {"model": "grok-3", "stream": False}
    keyless = XAIUpstream(base_url="http://xai.test/v1", api_key=None)
    await keyless.aclose()
    assert keyless._headers == {"Content-Type": "application/json", "Accept": "application/json"}
    assert (keyless.name, keyless.base_url, keyless._proxy) == ("xai", "http://xai.test/v1", None)


async def test_malformed_lines_are_quoted_at_most_80_bytes() -> None:
    junk = b"{" + b"j" * 200
    _, raised, _ = await run([b"data: " + junk + b"\n\n"])
    assert (
        raised is not None and raised.message == f"xai sent a malformed stream line: {(b' ' + junk)[:80]!r}"
    )
    _, raised, _ = await run([junk], stream=False)
    assert raised is not None and raised.message == f"xai sent a malformed response: {junk[:80]!r}"


def test_a_lone_reasoning_token_without_a_total_is_not_folded() -> None:
    assert usage_from({"completion_tokens_details": {"reasoning_tokens": 1}}) == Usage(0, 0, 1)


def test_only_the_first_choice_and_every_tool_call_of_a_completion() -> None:
    body = {
        "choices": [
            {
                "message": {
                    "tool_calls": [
                        {"id": "a", "function": {"name": "f"}},
                        {"id": "b", "function": {"name": "g", "arguments": "{}"}},
                    ]
                }
            },
            {"message": {"content": "second choice"}, "finish_reason": "length"},
        ]
    }
    assert events_from_completion(body) == [
        ToolCallDelta(0, "a", "f", ""),
        ToolCallDelta(1, "b", "g", "{}"),
        Finish("stop"),
    ]
    with pytest.raises(UpstreamError, match=r"^xAI sent a response without choices$"):
        events_from_completion({})


async def test_models_list() -> None:
    upstream = XAIUpstream(base_url="http://xai.test/v1/", api_key=None, name="other")
    await upstream.aclose()
    upstream._session = Replay([b'{"data":[{"id":"grok-4","created":5},{"id":3},"x",{"id":"grok-3"}]}'])  # type: ignore[assignment]
    models = await upstream.models()
    assert [(m.id, m.owned_by, m.created) for m in models] == [("grok-4", "other", 5), ("grok-3", "other", 0)]
    upstream._session = Replay([b'{"error":"down"}'], status=503)  # type: ignore[assignment]
    with pytest.raises(Unavailable, match="other is unavailable"):
        await upstream.models()


class Broken(Replay):
    """A replay whose connection fails: at connect time, or after ``reads`` were delivered."""

    def __init__(self, error: BaseException, reads: list[bytes] | None = None) -> None:
        super().__init__(reads or [])
        self.error, self.connected = error, reads is not None

    async def __aenter__(self) -> Replay:
        if not self.connected:
            raise self.error
        return self

    async def _fail_after(self) -> AsyncIterator[bytes]:
        for chunk in self.reads:
            yield chunk
        raise self.error

    def iter_any(self) -> AsyncIterator[bytes]:
        return self._fail_after()


def upstream_with(session: Replay, name: str = "xai", base_url: str = "http://xai.test/v1") -> XAIUpstream:
    upstream = XAIUpstream(
        base_url=base_url, api_key="xai-k", http=HTTPOptions(proxy="http://p.test:1"), name=name
    )
    upstream._session = session  # type: ignore[assignment]
    return upstream


async def test_transport_failures_name_the_upstream() -> None:
    up = upstream_with(Broken(connector_refused()), name="other")
    await up._client.aclose()
    with pytest.raises(Unavailable, match=r"^other is unreachable: \[Errno 111\] Connection refused$"):
        await up.models()
    with pytest.raises(Unavailable, match=r"^other is unreachable"):
        [b async for b in up.stream(ChatRequest("m", "m", [], True, {}))]
    cut = upstream_with(
        Broken(aiohttp.ClientPayloadError("x"), [b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'])
    )
    await cut._client.aclose()
    got: list[Event] = []
    with pytest.raises(UpstreamError, match=r"^xai ended the answer early$"):
        async for batch in cut.stream(ChatRequest("m", "m", [], True, {})):
            got += batch
    assert got == [TextDelta("a")]


async def test_models_request_and_shapes() -> None:
    replay = Replay([b"{}"])
    up = upstream_with(replay, base_url="http://xai.test/X/")
    await up._client.aclose()
    assert await up.models() == []
    assert replay.sent == {
        "url": "http://xai.test/X/models",
        "headers": {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": "Bearer xai-k",
        },
        "proxy": "http://p.test:1",
    }
    replay.status, replay.reads = 400, [b'{"error":"bad"}']
    with pytest.raises(InvalidRequest, match=r"^bad$"):
        await up.models()


async def images(reads: list[bytes], status: int = 200) -> tuple[list[Event], GatewayError | None, Replay]:
    replay = Replay(reads, status)
    up = upstream_with(replay, name="img")
    await up._client.aclose()
    request = ChatRequest(
        "alias", "grok-imagine-image", [], False, {"model": "alias", "prompt": "a cat", "n": 2}, kind="image"
    )
    try:
        return [e async for b in up.stream(request) for e in b], None, replay
    except GatewayError as exc:
        return [], exc, replay


async def test_image_generation() -> None:
    body = {
        "data": [
            {"url": "https://imgen.x.ai/1.jpg", "revised_prompt": "a small cat"},
            {"b64_json": "data:image/png;base64,iVBORw0K", "url": ""},
            {"b64_json": "iVBORw0K", "revised_prompt": None},
        ]
    }
    events, error, replay = await images([orjson.dumps(body)])
    assert error is None and events == [
        Image(url="https://imgen.x.ai/1.jpg", b64_json=None, revised_prompt="a small cat"),
        Image(url="", b64_json="iVBORw0K", revised_prompt=""),
        Image(url=None, b64_json="iVBORw0K", revised_prompt=""),
        Finish("stop"),
    ]
    assert orjson.loads(replay.sent.pop("data")) == {"model": "grok-imagine-image", "prompt": "a cat", "n": 2}
    assert replay.sent == {
        "url": "http://xai.test/v1/images/generations",
        "headers": {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": "Bearer xai-k",
        },
        "proxy": "http://p.test:1",
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{}", "img sent an image response without images"),
        (b'{"data": []}', "img sent an image response without images"),
        (b'{"data": "x"}', "img sent an image response without images"),
        (b"[1]", "img sent an image response without images"),
        (b'{"data": [{"revised_prompt": "x"}]}', "img sent an image without a url or b64_json"),
        (b'{"data": ["x"]}', "img sent an image without a url or b64_json"),
        (
            b'{"data": [{"url": "u"}, {"url": "", "b64_json": ""}]}',
            "img sent an image without a url or b64_json",
        ),
        (b"<html>", "img sent a malformed response: b'<html>'"),
    ],
)
async def test_image_responses_without_images(body: bytes, message: str) -> None:
    events, error, _ = await images([body])
    assert events == [] and type(error) is UpstreamError and error.message == message


async def test_image_refusals() -> None:
    _, error, _ = await images([b'{"error":"bad prompt"}'], status=400)
    assert type(error) is InvalidRequest and error.message == "bad prompt"
    _, error, _ = await images([b'{"error":"busy"}'], status=503)
    assert type(error) is Unavailable and error.message == "img is unavailable (503): busy"


async def test_live_search_is_retired() -> None:
    _, raised, _ = await run([b'{"code":"Gone","error":"Live search is deprecated."}'], status=410)
    assert type(raised) is InvalidRequest
    assert (raised.param, raised.code, raised.status) == ("search_parameters", "live_search_retired", 400)
    assert raised.message == (
        "xai no longer offers Live Search ('search_parameters'): use the Responses API "
        "(POST /v1/responses) with the 'web_search' / 'x_search' tools instead. (Live search is deprecated.)"
    )


# -- xAI's Responses stream through the same loop, and one way of posting for every call ---------


def responses_frame(event: dict[str, Any]) -> bytes:
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


RESPONSES_BODY = b"".join(
    [
        responses_frame({"type": "response.created", "response": {"id": "resp_1", "output": []}}),
        responses_frame(
            {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "delta": "hm\n"}
        ),
        *(
            responses_frame(
                {
                    "type": "response.output_text.delta",
                    "item_id": 'msg_1","delta":"x',
                    "delta": d,
                    "logprobs": [],
                }
            )
            for d in ['"Hel', "lo\\", " wörld", " 🎉\u2028"]
        ),
        b'event: response.output_text.delta\r\ndata: {"delta":"\\u4e16\\ud83c\\udf89","type":"response.output_text.delta"}\r\n\r\n',
        responses_frame(
            {"type": "response.completed", "response": {"usage": {"input_tokens": 2, "output_tokens": 5}}}
        ),
    ]
)
RESPONSES_EVENTS = [
    ResponseId("resp_1"),
    R("hm\n"),
    *map(T, ['"Hel', "lo\\", " wörld", " 🎉\u2028", "世🎉"]),
    Usage(prompt_tokens=2, completion_tokens=5),
    Finish("stop"),
]


def responses_request(stream: bool = True) -> ChatRequest:
    body = {"model": "alias", "input": "hi", "stream": stream}
    return ChatRequest("alias", "grok-4", [{"role": "user", "content": "hi"}], stream, body, kind="responses")


async def test_a_responses_stream_decodes_alike_however_cut() -> None:
    up = upstream_with(Replay([]))
    await up._client.aclose()
    for how, chunks in splits(RESPONSES_BODY):
        up._session = Replay(chunks)  # type: ignore[assignment]
        assert await collect(up, responses_request()) == (RESPONSES_EVENTS, None), how
    up._session = replay = Replay([RESPONSES_BODY[:-40]])  # type: ignore[assignment]
    events, error = await collect(up, responses_request(stream=False))  # always streamed from xAI
    assert events == RESPONSES_EVENTS[:-2]
    assert isinstance(error, UpstreamError) and "malformed stream line" in error.message
    assert replay.sent["url"] == "http://xai.test/v1/responses"
    assert orjson.loads(replay.sent["data"]) == {"model": "grok-4", "input": "hi", "stream": True}


KINDS = {  # what is asked, the path it is posted to, a body that answers it
    "chat stream": (lambda: ChatRequest("m", "grok-3", [], True, {"model": "m"}), "/chat/completions", DONE),
    "chat": (
        lambda: ChatRequest("m", "grok-3", [], False, {"model": "m"}),
        "/chat/completions",
        b'{"choices":[]}',
    ),
    "responses": (responses_request, "/responses", RESPONSES_BODY),
    "image": (
        lambda: ChatRequest("m", "grok-imagine-image", [], False, {"prompt": "a cat"}, kind="image"),
        "/images/generations",
        b'{"data":[{"url":"u"}]}',
    ),
    "image edit": (
        lambda: ChatRequest("m", "grok-imagine-image", [], False, {"image": {"url": "u"}}, kind="image_edit"),
        "/images/edits",
        b'{"data":[{"b64_json":"iVBORw0K"}]}',
    ),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_every_call_is_posted_the_same_way(kind: str) -> None:
    make, path, answer = KINDS[kind]
    request = make()
    request.body["padding"] = "x" * (1 << 20)  # past aiohttp's limit for a body in one piece
    up = upstream_with(replay := Replay([answer]))
    await up._client.aclose()
    token = REQUEST_ID.set("req_kind")
    try:
        _, error = await collect(up, request)
    finally:
        REQUEST_ID.reset(token)
    assert error is None
    data = replay.sent.pop("data")
    assert (
        isinstance(data, io.BytesIO) and orjson.loads(data.getvalue())["padding"] == request.body["padding"]
    )
    assert replay.sent == {
        "url": "http://xai.test/v1" + path,
        "headers": {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": "Bearer xai-k",
            "x-request-id": "req_kind",
        },
        "proxy": "http://p.test:1",
    }


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_every_call_maps_refusals_the_same_way(kind: str) -> None:
    make = KINDS[kind][0]
    for status, body, headers, error, code, _, retry in REFUSALS:
        up = upstream_with(Replay([body], status, headers))
        await up._client.aclose()
        events, raised = await collect(up, make())
        assert events == [] and type(raised) is error, (status, body)
        assert raised is not None and raised.code == code
        assert getattr(raised, "retry_after", None) == retry
