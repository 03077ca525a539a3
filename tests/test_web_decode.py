"""The chat gateway's decoder on frames as public clients record them (shapes the simulator does
not send), and xAI's answer to Live Search, through the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web

from grok_api.errors import RateLimited, UpstreamError
from grok_api.upstreams.base import Citation, Finish, ReasoningDelta, TextDelta
from grok_api.upstreams.web_answer import Answer, Display, absolute_link
from grok_api.upstreams.web_ws_decode import ConversationGone, GatewayDecoder

from .helpers import Env, gateway_settings, served_env
from .servers import WebServer


def decoder(**display: str) -> GatewayDecoder:
    answer = Answer(Display(**display), absolute_link("https://assets.grok.com"), sent_chars=8)
    return GatewayDecoder(answer, "evt_init_1")


def frame(event: dict[str, Any], session: str = "c1") -> bytes:
    return orjson.dumps({"session_id": session, "event": event})


def test_sources_from_every_shape_are_citations_once_each() -> None:
    d = decoder(sources="none")
    events = []
    for ev in (
        {"type": "response.search.result", "result": {"url": "https://a.example/1", "title": "A"}},
        {"type": "response.search.result", "result": {"web_results": [{"url": "https://a.example/2"}]}},
        {
            "type": "response.grok.output",
            "output": {"tool_result": {"web_search_results": [{"url": "https://a.example/1"}]}},
        },
        {
            "type": "response.chunk",
            "chunk": {"tool_result": {"x_post": {"posts": [{"userhandle": "xai", "post_id": "7"}]}}},
        },
        {"type": "response.chunk", "chunk": {"render_citation": {"url": "javascript:alert(1)"}}},
    ):
        events += d.feed(frame(ev))
    assert events == [
        Citation("https://a.example/1", "A"),
        Citation("https://a.example/2", "https://a.example/2"),
        Citation("https://x.com/xai/status/7", "@xai"),
    ]


def test_realtime_style_text_events_and_unknown_ones() -> None:
    d = decoder()
    out = []
    for ev in (
        {"type": "session.created", "client_event_id": "evt_init_1"},
        {"type": "conversation.attached", "conversation": {"id": "c1"}},
        {"type": "conversation.commands.updated"},
        {"type": "response.output_item.added", "item": {}},
        {"type": "response.output_text.delta", "delta": "hm", "x_grok": {"is_thinking": True}},
        {"type": "response.output_text.delta", "delta": "Hello"},
        {"type": "response.output_text.done", "text": "Hello"},
        {
            "type": "response.chunk",
            "chunk": {"text": {"text": "(note)", "channel": "CHANNEL_ASSISTANT_NOTETAKER_HEADER"}},
        },
        {
            "type": "response.grok.output",
            "output": {
                "card_attachment": {
                    "jsonData": orjson.dumps(
                        {"image_chunk": {"imageUrl": "users/u/i.jpg", "progress": 100}}
                    ).decode()
                }
            },
        },
        {
            "type": "response.grok.output",
            "output": {
                "card_attachment": {
                    "jsonData": {
                        "image_chunk": {"imageUrl": "users/u/m.jpg", "progress": 100, "moderated": True}
                    }
                }
            },
        },
        {"type": "response.done", "response": {"id": "r9", "status": "completed"}},
    ):
        out += d.feed(frame(ev))
    out += d.feed(b"not json") + d.feed(b"[1, 2]")
    assert d.ready and d.done and (d.conversation_id, d.response_id) == ("c1", "r9")
    assert out == [ReasoningDelta("hm"), TextDelta("Hello")]
    tail = d.answer.finish()
    assert tail[0] == TextDelta(
        "\n\n![image](https://assets.grok.com/users/u/i.jpg)"
    )  # not the moderated one
    assert isinstance(tail[-1], Finish)


def test_a_session_created_for_another_event_is_not_ours() -> None:
    d = decoder()
    d.feed(frame({"type": "session.created", "client_event_id": "someone-else"}))
    d.feed(frame({"type": "conversation.attached", "conversation": {"id": "c1"}}))
    assert not d.ready


@pytest.mark.parametrize(
    ("event", "error", "code"),
    [
        (
            {"type": "error", "error": {"code": "conversation_not_found", "message": "no"}},
            ConversationGone,
            "upstream_error",
        ),
        (
            {"type": "error", "error": {"message": "You have hit your usage quota."}},
            RateLimited,
            "web_usage_limit",
        ),
        ({"type": "error", "error": {"code": 7, "message": "x"}}, UpstreamError, "web_session_refused"),
        ({"type": "error", "error": {"code": 16, "message": "x"}}, UpstreamError, "web_session_expired"),
        (
            {"type": "response.done", "response": {"id": "r", "status": "failed"}},
            UpstreamError,
            "upstream_error",
        ),
        ({"type": "session.ended"}, UpstreamError, "upstream_error"),
    ],
)
def test_failures(event: dict[str, Any], error: type[Exception], code: str) -> None:
    with pytest.raises(error) as info:
        decoder().feed(frame(event))
    assert getattr(info.value, "code", None) == code


class Gone(WebServer):
    """An xAI API stand-in that answers Live Search as xAI does now: 410 Gone."""

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/v1/chat/completions", self.chat)

    async def chat(self, request: web.Request) -> web.Response:
        return web.json_response({"code": "Gone", "error": "Live search is deprecated."}, status=410)


@pytest.fixture
def gone() -> Iterator[Gone]:
    with Gone() as g:
        yield g


def test_xai_live_search_410_is_a_clear_400(env: Env, tmp_path: Path, gone: Gone) -> None:
    settings = gateway_settings(tmp_path, env.sim, xai_base_url=gone.url + "/v1")
    with served_env(settings, env.sim) as gateway:
        client = gateway.new_client()
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(
                model="grok-4",
                messages=[{"role": "user", "content": "news"}],
                extra_body={"search_parameters": {"mode": "on"}},
            )
    body = info.value.body
    assert isinstance(body, dict)
    assert (body["code"], body["param"]) == ("live_search_retired", "search_parameters")
    assert "web_search" in body["message"] and "x_search" in body["message"]


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def test_render_tags_never_reach_the_client() -> None:
    d = decoder()
    out = d.feed(
        frame(
            {
                "type": "response.grok.output",
                "output": {"card_attachment": {"id": "c1", "url": "https://a.example/x"}},
            }
        )
    )
    tag = '<grok:render card_id="c1" card_type="citation_card" type="render_inline_citation"><argument name="citation_id">0</argument></grok:render>'
    unknown = tag.replace("c1", "c9")
    for piece in (
        "Paris is big.",
        tag[:7],
        tag[7:40],
        tag[40:],
        " Rome <",
        "grok:re",
        "ally> not",
        " 1 < 2 <gro",
        "und",
        unknown,
    ):
        out += d.feed(
            frame(
                {
                    "type": "response.chunk",
                    "chunk": {"text": {"text": piece, "channel": "CHANNEL_ASSISTANT_RESPONSE"}},
                }
            )
        )
    out += d.answer.finish()
    assert text_of(out) == "Paris is big. [1](https://a.example/x) Rome <grok:really> not 1 < 2 <ground"
    assert [e for e in out if isinstance(e, Citation)] == [
        Citation("https://a.example/x", "https://a.example/x")
    ]


def test_an_unclosed_render_tag_is_dropped_at_the_end() -> None:
    d = decoder()
    out = d.feed(frame({"type": "response.output_text.delta", "delta": 'ok <grok:render card_id="z">'}))
    out += d.answer.finish()
    assert text_of(out) == "ok "
