"""grok.com's NDJSON → Events, directly: recorded answers cut at every byte boundary decode to
the same Events through ``read_lines`` and ``WebDecoder``; the three thinking displays, the two
line shapes, images, refusals in-band, malformed and truncated answers, and the error mapping."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from grok_api.errors import GatewayError, InvalidRequest, RateLimited, UpstreamError
from grok_api.upstreams.base import Citation, Event, Finish, ReasoningDelta, TextDelta, Usage
from grok_api.upstreams.http import read_lines
from grok_api.upstreams.web_answer import REFRESH, Display, absolute_link, cloudflare_error, error_from
from grok_api.upstreams.web_decode import WebDecoder

from .recordings import reads, recorded, splits

T, R = TextDelta, ReasoningDelta
ASSETS = "https://assets.grok.test"
WORDS = ["héllo ", "wörld ", "— ", "世界 "]
THOUGHT = [R(w) for w in ["Thinking ", "about: ", *WORDS, "🎉 "]]


def answer(turn: int) -> list[Event]:
    return [T(w) for w in ["[turn ", f"{turn}] ", "You ", "said: ", *WORDS, "🎉"]]


IMAGES = (
    f"\n\n![image]({ASSETS}/users/sim/generated/4498f1ab/image.jpg)"
    f"\n\n![image]({ASSETS}/users/sim/generated/ee1a9060/image.jpg)"
)


class Decoded:
    """What a decoder made of one answer: its Events (or the error it raised) and its state."""

    def __init__(self, events: list[Event], error: GatewayError | None, decoder: WebDecoder) -> None:
        self.events, self.error = events, error
        self.state = (decoder.conversation_id, decoder.response_id, decoder.answer_text())


async def decode(chunks: list[bytes], display: str = "reasoning", sent_chars: int = 20) -> Decoded:
    decoder = WebDecoder(display, ASSETS, sent_chars=sent_chars)
    events: list[Event] = []
    try:
        async for lines in read_lines(reads(chunks)):
            events += decoder.feed(lines)
        events += decoder.finish()
    except GatewayError as exc:
        return Decoded(events, exc, decoder)
    return Decoded(events, None, decoder)


# file -> (Events, conversation id, response id) with thinking shown as reasoning
RECORDED: dict[str, tuple[list[Event], str | None, str]] = {
    "web_new.ndjson": (  # /conversations/new: fields under result.response; thinking and two images
        [
            *THOUGHT,
            *answer(1),
            T(IMAGES),
            # completion: ⌈(answer 37 + images 150 + thinking 35 characters) / 4⌉; prompt 20 / 4
            Usage(prompt_tokens=5, completion_tokens=56, reasoning_tokens=9, estimated=True),
            Finish("stop"),
        ],
        "68f62055-0e13-4882-9248-717cfd3bfb38",
        "4fd8736d-6fad-4cd3-b0c2-64ced4dea8ee",
    ),
    "web_followup.ndjson": (  # /responses: fields directly under result
        [*answer(2), Usage(prompt_tokens=5, completion_tokens=10, estimated=True), Finish("stop")],
        None,
        "5a517d47-1097-49e6-a085-e453516321b5",
    ),
}


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_recorded_answers_decode_alike_however_cut(name: str) -> None:
    events, conversation, response = RECORDED[name]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    for how, chunks in splits(recorded(name)):
        got = await decode(chunks)
        assert (got.events, got.error) == (events, None), how
        assert got.state == (conversation, response, text), how


async def test_thinking_inline_and_hidden() -> None:
    data = recorded("web_new.ndjson")
    inline = await decode([data], "inline")
    thought = "".join(r.text for r in THOUGHT)
    assert inline.events[:3] == [T("<think>\nThinking "), T("about: "), T("héllo ")]
    text = "".join(e.text for e in inline.events if isinstance(e, TextDelta))
    assert text == f"<think>\n{thought}\n</think>\n\n[turn 1] You said: héllo wörld — 世界 🎉{IMAGES}"
    assert inline.state[2] == f"[turn 1] You said: héllo wörld — 世界 🎉{IMAGES}"  # memory keeps no thinking
    hidden = await decode([data], "hidden")
    assert hidden.events[:-3] == answer(1)
    assert hidden.events[-2:] == inline.events[-2:]  # the thinking is charged however it is shown
    assert isinstance(hidden.events[-2], Usage) and hidden.events[-2].reasoning_tokens == 9


def line(obj: object) -> bytes:
    return orjson.dumps(obj) + b"\n"


def new(response: dict[str, Any]) -> bytes:
    return line({"result": {"response": response}})


def token(text: str, **kw: Any) -> bytes:
    return line({"result": {"token": text, "isThinking": False, "messageTag": "final", **kw}})


END = line({"result": {"modelResponse": {"responseId": "r2", "message": "ok"}}})
USAGE_1 = Usage(prompt_tokens=5, completion_tokens=1, estimated=True)

# body -> (Events, error class or None, words in its message); thinking shown inline
STREAMS: dict[str, tuple[bytes, list[Event], type[GatewayError] | None, str]] = {
    "blank lines, crlf and non-objects are skipped": (
        b"\n\r\n"
        + token("ok").replace(b"\n", b"\r\n")
        + b'[1,2]\n"text"\n42\n{"result":[]}\n{"other":1}\n'
        + END,
        [T("ok"), USAGE_1, Finish("stop")],
        None,
        "",
    ),
    "interface furniture is skipped": (
        token("card", messageTag="tool_usage_card")
        + token("hdr", messageTag="header")
        + token("ok")
        + token("", messageTag="final")
        + END,
        [T("ok"), USAGE_1, Finish("stop")],
        None,
        "",
    ),
    "untagged tokens are the answer": (
        line({"result": {"token": "ok"}}) + END,
        [T("ok"), USAGE_1, Finish("stop")],
        None,
        "",
    ),
    "an answer that ends while thinking closes the think tag": (
        token("hm", isThinking=True) + END,
        [T("<think>\nhm"), T("\n</think>\n\n"), Usage(5, 1, 1, estimated=True), Finish("stop")],
        None,
        "",
    ),
    "thinking, answer, thinking again": (
        token("a", isThinking=True) + token("b") + token("c", isThinking=True) + token("d") + END,
        [
            T("<think>\na"),
            T("\n</think>\n\n"),
            T("b"),
            T("<think>\nc"),
            T("\n</think>\n\n"),
            T("d"),
            Usage(5, 1, 1, estimated=True),
            Finish("stop"),
        ],
        None,
        "",
    ),
    "an absolute image url is kept": (
        line(
            {
                "result": {
                    "modelResponse": {
                        "responseId": "r",
                        "generatedImageUrls": [
                            "https://x.test/i.png",
                            "",
                            "/a/b.jpg",
                            "http://y.test/X.png",
                            "Xa/c.png",
                        ],
                    }
                }
            }
        ),
        [
            T(
                f"\n\n![image](https://x.test/i.png)\n\n![image]({ASSETS}/a/b.jpg)"
                f"\n\n![image](http://y.test/X.png)\n\n![image]({ASSETS}/Xa/c.png)"
            ),
            Usage(5, 38, estimated=True),
            Finish("stop"),
        ],
        None,
        "",
    ),
    "cut before the model's response": (token("ok"), [T("ok")], UpstreamError, "before it was complete"),
    "cut mid-line": (token("ok") + END[:-10], [T("ok")], UpstreamError, "malformed line"),
    "empty answer": (b"", [], UpstreamError, "before it was complete"),
    "malformed line": (token("ok") + b"{not json\n" + END, [T("ok")], UpstreamError, "malformed line"),
    "not utf-8": (
        token("ok") + b'{"result":{"token":"\xff"}}\n' + END,
        [T("ok")],
        UpstreamError,
        "malformed line",
    ),
    "error at the top": (
        token("ok") + line({"error": {"code": 13, "message": "boom"}}),
        [T("ok")],
        UpstreamError,
        "grok.com failed (502): boom",
    ),
    "error in the response": (
        new({"error": {"code": 8, "message": "limit"}}),
        [],
        RateLimited,
        "usage limit reached: limit",
    ),
    "error under result": (
        line({"result": {"error": {"code": 16, "message": "bye"}}}),
        [],
        UpstreamError,
        "signed out",
    ),
}


@pytest.mark.parametrize("name", sorted(STREAMS))
async def test_hand_written_answers(name: str) -> None:
    body, expected, error, words = STREAMS[name]
    for how, chunks in splits(body) if body else [("empty", [])]:
        got = await decode(chunks, "inline")
        assert got.events == expected, how
        assert (None if got.error is None else type(got.error)) is error, how
        if got.error is not None:
            assert words in got.error.message, (how, got.error.message)


async def test_conversation_id_and_response_id_are_read_from_both_shapes() -> None:
    body = line({"result": {"conversation": {"conversationId": "c1"}}}) + new(
        {"modelResponse": {"responseId": "r1"}}
    )
    got = await decode([body])
    assert got.state == ("c1", "r1", "") and got.error is None
    none = await decode(
        [line({"result": {"conversation": {"conversationId": ""}}}) + new({"modelResponse": {}})]
    )
    assert none.state == (None, None, "")


@pytest.mark.parametrize(
    ("status", "err", "retry", "error", "code", "words", "retry_after"),
    [
        (
            429,
            {"message": "slow"},
            "120",
            RateLimited,
            "web_usage_limit",
            "grok.com usage limit reached: slow",
            "120",
        ),
        (429, {}, None, RateLimited, "web_usage_limit", "no message", "60"),
        (429, {"message": "x"}, "soon", RateLimited, "web_usage_limit", "x", "60"),
        (200, {"code": 8, "message": "x"}, None, RateLimited, "web_usage_limit", "x", "60"),
        (
            403,
            {"message": "nope"},
            None,
            UpstreamError,
            "web_session_refused",
            "refused the session (nope)",
            None,
        ),
        (
            400,
            {"code": 7, "message": "x"},
            None,
            UpstreamError,
            "web_session_refused",
            "refused the session",
            None,
        ),
        (
            502,
            {"message": "Request rejected by Anti-Bot rules."},
            None,
            UpstreamError,
            "web_session_refused",
            "refused",
            None,
        ),
        (401, {"message": "who"}, None, UpstreamError, "web_session_expired", "signed out (who)", None),
        (500, {"code": 16}, None, UpstreamError, "web_session_expired", "signed out", None),
        (
            400,
            {"code": 3, "message": "bad"},
            None,
            InvalidRequest,
            "invalid_request",
            "grok.com refused the request: bad",
            None,
        ),
        (499, {}, None, InvalidRequest, "invalid_request", "no message", None),
        (
            500,
            {"code": 13, "message": "oops"},
            None,
            UpstreamError,
            "upstream_error",
            "grok.com failed (500): oops",
            None,
        ),
        (503, {}, None, UpstreamError, "upstream_error", "grok.com failed (503)", None),
    ],
)
def test_error_mapping(
    status: int,
    err: dict[str, Any],
    retry: str | None,
    error: type[GatewayError],
    code: str,
    words: str,
    retry_after: str | None,
) -> None:
    got = error_from(status, err, retry)
    assert type(got) is error and got.code == code and words in got.message, got.message
    assert got.headers.get("Retry-After") == retry_after
    assert (REFRESH in got.message) == code.startswith("web_session")


async def test_exact_messages() -> None:
    junk = b"{" + b"j" * 200
    got = await decode([junk + b"\n"])
    assert got.error is not None and got.error.message == f"grok.com sent a malformed line: {junk[:80]!r}"
    cut = await decode([token("ok")])
    assert cut.error is not None and cut.error.message == "grok.com ended the answer before it was complete"
    failed = await decode([new({"error": {"code": 13, "message": "boom"}})])
    assert failed.error is not None and failed.error.message == "grok.com failed (502): boom"
    assert error_from(429, {}).message == "grok.com usage limit reached: no message"


async def test_search_results_become_numbered_sources() -> None:
    results = [
        {"url": "https://a.test/1", "title": "One"},
        {"url": "https://a.test/1", "title": "Again"},
        {"url": "http://b.test/2", "title": "  "},
        {"url": "ftp://c.test/3", "title": "not a web page"},
        {"url": "https://" + "d" * 4090, "title": "too long"},
        "not a result",
    ]
    body = (
        token("Hi")
        + line({"result": {"webSearchResults": {"results": results[:3]}}})
        + line({"result": {"webSearchResults": [*results[3:], {"url": "https://e.test/4"}]}})
        + END
    )
    decoder = WebDecoder(Display(sources="list"), ASSETS, sent_chars=4)
    events = [e async for lines in read_lines(reads([body])) for e in decoder.feed(lines)] + decoder.finish()
    assert events[:4] == [
        T("Hi"),
        Citation("https://a.test/1", "One"),
        Citation("http://b.test/2", "http://b.test/2"),
        Citation("https://e.test/4", "https://e.test/4"),
    ]
    assert events[4] == T(
        "\n\nSources:\n1. [One](https://a.test/1)\n2. [http://b.test/2](http://b.test/2)"
        "\n3. [https://e.test/4](https://e.test/4)"
    )


@pytest.mark.parametrize(
    ("err", "error", "code", "message"),
    [
        ({"error": "plain words"}, UpstreamError, "upstream_error", "grok.com failed (500): plain words"),
        ({"code": "8", "message": "m"}, RateLimited, "web_usage_limit", "grok.com usage limit reached: m"),
        (
            {"code": "RESOURCE_EXHAUSTED", "message": "m"},
            RateLimited,
            "web_usage_limit",
            "grok.com usage limit reached: m",
        ),
        ({"code": "INTERNAL", "message": "m"}, UpstreamError, "upstream_error", "grok.com failed (500): m"),
        ({"code": ["7"], "message": "m"}, UpstreamError, "upstream_error", "grok.com failed (500): m"),
        (
            {"code": "7", "message": "m"},
            UpstreamError,
            "web_session_refused",
            f"grok.com refused the session (m). {REFRESH}",
        ),
    ],
)
def test_error_codes_and_fallbacks(
    err: dict[str, Any], error: type[GatewayError], code: str, message: str
) -> None:
    got = error_from(500, err)
    assert (type(got), got.code, got.message) == (error, code, message)


def test_the_cloudflare_page() -> None:
    got = cloudflare_error(403)
    assert (type(got), got.code, got.status) == (UpstreamError, "web_session_refused", 502)
    assert got.message == (
        "grok.com answered with a Cloudflare challenge (HTTP 403): the session's cf_clearance cookie is "
        f"missing, expired or was issued to another browser. {REFRESH}"
    )


def test_image_links_against_an_assets_url_with_a_slash() -> None:
    link = absolute_link("https://assets.test//")
    assert link("/a/b.png") == "https://assets.test/a/b.png" and link("c.png") == "https://assets.test/c.png"
    assert link("https://x.test/i.png") == "https://x.test/i.png"


async def test_sources_listed_after_images_and_the_longest_url() -> None:
    longest, too_long = "https://x.test/" + "a" * (4096 - 15), "https://x.test/" + "a" * (4097 - 15)
    decoder = WebDecoder(Display(sources="list"), ASSETS, sent_chars=0)
    body = line(
        {"result": {"webSearchResults": [{"url": longest, "title": "L"}, {"url": too_long, "title": "T"}]}}
    )
    body += line({"result": {"modelResponse": {"responseId": "r", "generatedImageUrls": ["i.png", "i.png"]}}})
    events = [e async for lines in read_lines(reads([body])) for e in decoder.feed(lines)] + decoder.finish()
    assert events[0] == Citation(longest, "L") and len(events) == 4  # one source, one tail, usage, finish
    assert events[1] == T(f"\n\n![image]({ASSETS}/i.png)\n\nSources:\n1. [L]({longest})")


async def test_a_link_function_instead_of_an_assets_url() -> None:
    decoder = WebDecoder("hidden", lambda u: f"https://proxy.test/{u}", sent_chars=0)
    decoder.feed([line({"result": {"modelResponse": {"responseId": "r", "generatedImageUrls": ["i.png"]}}})])
    assert decoder.finish()[0] == T("\n\n![image](https://proxy.test/i.png)")
