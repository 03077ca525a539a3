"""The grok.com upstream over its WebSocket chat gateway (the default protocol), through the openai
SDK and real HTTP, against the simulator's ``/ws/mgw/``: conversations that continue upstream
with only the new message, branches, thinking, search sources, generated images, uploaded
attachments, every refusal, heartbeats."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from grok_api.conversations import Handle, fold

from .helpers import (
    Env,
    ServedApp,
    answer_and_reasoning,
    ask_text,
    chat_body,
    key_for,
    post,
    post_chat,
    served_env,
    stream_begun,
    stream_frames,
    web_requests,
    web_settings,
)

FAST = "web/grok-fast"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()


@pytest.fixture(scope="module")
def ws(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    settings = web_settings(tmp_path_factory.mktemp("web-ws"), env.sim)
    assert settings.web_protocol == "ws"  # the default
    with served_env(settings, env.sim) as e:
        yield e


@pytest.fixture
def client(ws: Env) -> openai.OpenAI:
    return ws.new_client("web-ws")


def turns(env: Env, since: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(session.create, conversation.item.create) frames the simulator received, per turn."""
    sent = web_requests(env, since)
    creates = [b for p, b in sent if p == "ws:session.create"]
    items = [b for p, b in sent if p == "ws:conversation.item.create"]
    return list(zip(creates, items, strict=False))


def text_sent(item: dict[str, Any]) -> str:
    chunks = item["event"]["item"]["x_grok"]["input_chunks"]
    return "".join(c["text"]["text"] for c in chunks if "text" in c)


def ask(client: openai.OpenAI, messages: list[dict[str, Any]], **kw: Any) -> str:
    return ask_text(client, messages, FAST, **kw)


def post_content(env: Env, content: Any) -> httpx.Response:
    """A chat request over plain HTTP with a new key (``content``: a string or content parts)."""
    return post(env.base_url, env.create_key("raw")[1], json=chat_body(content, FAST), timeout=30)


def test_four_turns_continue_with_the_latest_parent_and_only_the_new_message(
    ws: Env, client: openai.OpenAI
) -> None:
    start = ws.sim.recorded
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Be brief."}]
    for turn, text in enumerate(["first", "second", "third", "fourth"], start=1):
        messages.append({"role": "user", "content": text})
        answer = ask(client, messages)
        assert answer == f"[turn {turn}] You said: {text}"
        messages.append({"role": "assistant", "content": answer})
    sent = turns(ws, start)
    assert len(sent) == 4
    first_create, first_item = sent[0]
    x_grok = first_create["event"]["session"]["x_grok"]
    assert first_create["event"]["session"]["model"] == "fast"
    assert x_grok["is_temporary"] is True and x_grok["disable_memory"] is True  # GROK_API_WEB_TEMPORARY
    assert "conversation_id" not in x_grok and "parent_response_id" not in first_item["event"]
    assert "Be brief." in text_sent(first_item)
    conversation = sent[1][0]["event"]["session"]["x_grok"]["conversation_id"]
    parents = []
    for (create, item), text in zip(sent[1:], ["second", "third", "fourth"], strict=True):
        assert create["session_id"] == conversation
        assert create["event"]["session"]["x_grok"]["conversation_id"] == conversation
        assert create["event"]["session"]["x_grok"]["load_existing"] is True
        assert item["session_id"] == conversation
        assert text_sent(item) == text  # only the new message
        parents.append(item["event"]["parent_response_id"])
    assert len(set(parents)) == 3  # each turn follows the answer before it


def test_an_edited_history_starts_a_new_conversation(ws: Env, client: openai.OpenAI) -> None:
    first = [{"role": "user", "content": "alpha"}]
    a1 = ask(client, first)
    ask(client, [*first, {"role": "assistant", "content": a1}, {"role": "user", "content": "beta"}])
    start = ws.sim.recorded
    edited = [
        {"role": "user", "content": "ALPHA (edited)"},
        {"role": "assistant", "content": a1},
        {"role": "user", "content": "gamma"},
    ]
    assert ask(client, edited) == "[turn 1] You said: gamma"
    ((create, item),) = turns(ws, start)
    assert "conversation_id" not in create["event"]["session"]["x_grok"]
    assert text_sent(item) == fold(edited)


def test_concurrent_continuations_branch_correctly(ws: Env, client: openai.OpenAI) -> None:
    root = [{"role": "user", "content": "root"}]
    history = [*root, {"role": "assistant", "content": ask(client, root)}]
    start = ws.sim.recorded
    answers: dict[str, str] = {}

    def follow(text: str) -> None:
        answers[text] = ask(client, [*history, {"role": "user", "content": text}])

    threads = [threading.Thread(target=follow, args=(t,)) for t in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == {"left": "[turn 2] You said: left", "right": "[turn 2] You said: right"}
    assert len({item["event"]["parent_response_id"] for _, item in turns(ws, start)}) == 1
    start = ws.sim.recorded
    for text in ("left", "right"):
        branch = [
            *history,
            {"role": "user", "content": text},
            {"role": "assistant", "content": answers[text]},
        ]
        again = ask(client, [*branch, {"role": "user", "content": f"{text} again"}])
        assert again == f"[turn 3] You said: {text} again"
    later = turns(ws, start)
    assert later[0][1]["event"]["parent_response_id"] != later[1][1]["event"]["parent_response_id"]


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_channel_display_modes(client: openai.OpenAI, stream: bool) -> None:
    def run(mode: str | None) -> tuple[str, str]:
        extra = {"thinking_display": mode} if mode else {}
        return answer_and_reasoning(client, "why", "web/grok-expert", stream=stream, extra_body=extra)

    # CHANNEL_ANALYSIS is thinking; the notetaker header ("Thinking about your request") is skipped
    assert run(None) == ("[turn 1] You said: why", "Thinking about: why ")
    assert run("inline") == ("<think>\nThinking about: why \n</think>\n\n[turn 1] You said: why", "")
    assert run("hidden") == ("[turn 1] You said: why", "")


def test_search_results_become_sources(client: openai.OpenAI) -> None:
    msg = [{"role": "user", "content": "news [sim search=2]"}]
    inline = ask(client, msg)
    assert inline == "[turn 1] You said: news [1](https://example.com/sim/1)"
    listed = ask(client, msg, extra_body={"sources_display": "list"})
    assert listed == (
        "[turn 1] You said: news\n\nSources:\n"
        "1. [Sim source 1](https://example.com/sim/1)\n2. [Sim source 2](https://example.com/sim/2)"
    )
    assert ask(client, msg, extra_body={"sources_display": "none"}) == "[turn 1] You said: news"


def test_an_image_card_becomes_a_link(client: openai.OpenAI) -> None:
    text, *links = ask(client, [{"role": "user", "content": "draw [sim images=2]"}]).split("\n\n")
    assert text == "[turn 1] You said: draw"
    assert len(links) == 2  # one link per image, though each card came at 50% and at 100%
    for link in links:
        assert link.startswith("![image](https://assets.grok.com/users/sim/generated/")


def test_images_served_by_the_gateway_with_the_session(env: Env, tmp_path: Path) -> None:
    """GROK_API_WEB_IMAGES=proxy: links on the gateway, fetched from grok.com with the session."""
    settings = web_settings(tmp_path, env.sim, web_images="proxy", web_assets_url=env.sim.base_url)
    served = ServedApp(settings)
    settings.public_url = served.base_url  # known once the port is, before the gateway starts
    with served:
        client = env.client(key_for(settings), base_url=served.base_url + "/v1")
        text, link = ask(client, [{"role": "user", "content": "draw [sim images=1]"}]).split("\n\n")
        url = link.removeprefix("![image](").removesuffix(")")
        assert text == "[turn 1] You said: draw"
        assert url.startswith(served.base_url + "/v1/web/images/")
        before = env.sim.stats["web_asset_requests"]
        first, again = httpx.get(url), httpx.get(url)  # no API key: the token is the secret
        assert first.status_code == again.status_code == 200
        assert first.headers["content-type"] == "image/jpeg" and first.content.startswith(b"\xff\xd8")
        assert first.content == again.content
        assert env.sim.stats["web_asset_requests"] - before == 1  # the second came from the cache
        assert httpx.get(served.base_url + "/v1/web/images/unknown").status_code == 404
    direct = httpx.get(env.sim.base_url + "/users/sim/generated/x/image.jpg")
    assert direct.status_code == 403  # grok.com's asset links need the session


def test_an_uploaded_image_is_referenced_in_the_turn(ws: Env, client: openai.OpenAI) -> None:
    start = ws.sim.recorded
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    assert (
        ask(client, [{"role": "user", "content": content}]) == "[turn 1] You said: what is this [attached: 1]"
    )
    uploads = [b for u, p, b in ws.sim.since(start) if p == "/http/upload-file-v2/direct"]
    assert [(u["type"], u["size"], u["name"]) for u in uploads] == [("image/png", 72, "image.png")]
    ((_, item),) = turns(ws, start)
    assert item["event"]["file_attachment_ids"] == [uploads[0]["id"]]
    chunks = item["event"]["item"]["x_grok"]["input_chunks"]
    assert chunks[0] == {"mention": {"target": {"file_mention": {"file_id": uploads[0]["id"]}}}}


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://example.com/cat.png", "data: URLs"),
        (f"data:image/bmp;base64,{PNG}", "PNG, JPEG, WebP or GIF"),
        ("data:image/png;base64,***", "cannot be decoded"),
    ],
)
def test_images_that_cannot_be_uploaded_are_clear_400s(ws: Env, url: str, says: str) -> None:
    start = ws.sim.recorded
    r = post_content(ws, [{"type": "text", "text": "x"}, {"type": "image_url", "image_url": {"url": url}}])
    assert r.status_code == 400
    assert says in r.json()["error"]["message"]
    assert r.json()["error"]["param"] == "messages[0].content[1]"
    assert not ws.sim.since(start)  # nothing was sent upstream


@pytest.mark.parametrize(
    ("fault", "status", "code", "says"),
    [
        ("antibot", 502, "web_session_refused", "anti-bot"),
        ("expired", 502, "web_session_expired", "GROK_API_WEB_COOKIES"),
        ("usage_limit", 429, "web_usage_limit", "usage limit"),
        ("usage_words", 429, "web_usage_limit", "usage limit"),  # said only in words, no code
        ("usage_limit_stream", 429, "web_usage_limit", "usage limit"),
        ("500", 502, "upstream_error", "Internal error"),
        ("stream_error", 502, "upstream_error", "Model failed"),
        ("cut", 502, "upstream_error", "closed the chat gateway connection"),
    ],
)
def test_refusals_in_the_conversation_map_to_clear_errors(
    ws: Env, fault: str, status: int, code: str, says: str
) -> None:
    r = post_content(ws, f"x y z [sim fault={fault}]")
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert (err["code"], says in err["message"]) == (code, True), err
    if status == 429:
        assert r.headers["retry-after"] == "60"


@pytest.mark.parametrize("fault", ["cut", "stream_error"])
def test_a_failure_mid_answer_is_an_error_event_then_done(ws: Env, fault: str) -> None:
    _, key = ws.create_key("mid")
    r, frames = stream_frames(ws.base_url, key, f"one two three four [sim fault={fault}]", model=FAST)
    assert r.status_code == 200
    assert frames[-1] == "data: [DONE]"
    assert frames[-2].startswith('data: {"error":')
    text = "".join(json.loads(f[6:])["choices"][0]["delta"].get("content", "") for f in frames[:-2])
    assert text == "[turn 1] "  # the answer so far, then the error


@pytest.mark.parametrize(
    ("fault", "status", "code", "says"),
    [
        ("antibot", 502, "web_session_refused", "anti-bot"),
        ("cloudflare", 502, "web_session_refused", "Cloudflare"),
        ("expired", 502, "web_session_expired", "signed out"),
        ("usage_limit", 429, "web_usage_limit", "usage limit"),
    ],
)
def test_handshake_refusals(env: Env, tmp_path: Path, fault: str, status: int, code: str, says: str) -> None:
    settings = web_settings(tmp_path, env.sim, web_headers=json.dumps({"X-Sim": f"fault={fault}"}))
    with served_env(settings, env.sim) as refused:
        r = post_chat(refused.base_url, refused.create_key()[1], "hi", FAST)
    assert r.status_code == status
    err = r.json()["error"]
    assert (err["code"], says in err["message"]) == (code, True), err


def test_heartbeats_keep_a_slow_answer(env: Env, tmp_path: Path) -> None:
    settings = web_settings(tmp_path, env.sim, web_heartbeat=0.05)
    before = env.sim.stats["web_ws_pings"]
    with served_env(settings, env.sim) as beating:
        client = beating.new_client()
        assert (
            ask(client, [{"role": "user", "content": "slow [sim latency=0.6]"}]) == "[turn 1] You said: slow"
        )
    assert env.sim.stats["web_ws_pings"] - before >= 2


def test_a_client_that_leaves_closes_the_socket(ws: Env) -> None:
    _, key = ws.create_key("leaves")
    opened, closed = ws.sim.stats["web_ws_connections"], ws.sim.stats["web_ws_closed"]
    with stream_begun(ws.base_url, key, "a b c d e f g [sim latency=0.3]", FAST) as r:
        assert r.status_code == 200  # the first bytes came; then the client goes away
    deadline = time.monotonic() + 20
    while ws.sim.stats["web_ws_closed"] - closed < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ws.sim.stats["web_ws_connections"] - opened == 1
    assert ws.sim.stats["web_ws_closed"] - closed == 1


def test_a_conversation_grok_com_lost_starts_anew(ws: Env) -> None:
    record, key = ws.create_key("lost")
    history = [{"role": "user", "content": "old"}, {"role": "assistant", "content": "an answer"}]
    web = ws.app.app.state.gateway.router.upstreams["web"].targets[0].upstream
    ws.app.call(
        web.conversations.remember(record.id, "grok-fast", history[:1], "an answer", Handle("gone", "r1"))
    )
    start = ws.sim.recorded
    messages = [*history, {"role": "user", "content": "new"}]
    assert ask(ws.client(key), messages) == "[turn 1] You said: new"
    sent = ws.sim.since(start)
    creates = [b for _, p, b in sent if p == "ws:session.create"]
    items = [b for _, p, b in sent if p == "ws:conversation.item.create"]
    assert creates[0]["event"]["session"]["x_grok"]["conversation_id"] == "gone"
    assert "conversation_id" not in creates[1]["event"]["session"]["x_grok"]
    assert [text_sent(i) for i in items] == [fold(messages)]


def test_rest_still_works_when_selected(env: Env, tmp_path: Path) -> None:
    settings = web_settings(tmp_path, env.sim, web_protocol="rest")
    start = env.sim.recorded
    with served_env(settings, env.sim) as rest:
        client = rest.new_client()
        assert ask(client, [{"role": "user", "content": "over rest"}]) == "[turn 1] You said: over rest"
    assert [p for p, _ in web_requests(env, start)] == ["/rest/app-chat/conversations/new"]
