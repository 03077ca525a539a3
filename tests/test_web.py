"""The grok.com upstream's REST protocol (``GROK_API_WEB_PROTOCOL=rest``, the fallback) through the
openai SDK: conversations that continue upstream, thinking, images, every refusal, routing and
the model map — against the simulator's grok.com side. The WebSocket protocol (the default) is
tested in ``test_web_ws.py``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from grok_api.conversations import fold, history_hash

from .helpers import (
    WEB_AGENT,
    WEB_COOKIES,
    Env,
    answer_and_reasoning,
    ask_text,
    post_chat,
    served_env,
    streamed_text,
    web_requests,
    web_settings,
)

MODEL = "web/grok-4"


@pytest.fixture(scope="module")
def web(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A gateway with both upstreams: xAI's API (default) and grok.com (``web/…``)."""
    settings = web_settings(
        tmp_path_factory.mktemp("web"), env.sim, routes="grok-chat=web/grok-4", web_protocol="rest"
    )
    with served_env(settings, env.sim) as e:
        yield e


@pytest.fixture
def client(web: Env) -> openai.OpenAI:
    return web.new_client("web")


def mark(env: Env) -> int:
    return env.sim.recorded


def test_four_turns_continue_upstream_with_only_the_new_message(web: Env, client: openai.OpenAI) -> None:
    start = mark(web)
    messages: list[dict[str, str]] = [{"role": "system", "content": "Be brief."}]
    for turn, text in enumerate(["first", "second", "third", "fourth"], start=1):
        messages.append({"role": "user", "content": text})
        answer = ask_text(client, messages, MODEL)
        assert answer == f"[turn {turn}] You said: {text}"
        messages.append({"role": "assistant", "content": answer})
    sent = web_requests(web, start)
    assert len(sent) == 4
    assert sent[0][0] == "/rest/app-chat/conversations/new"
    assert "Be brief." in sent[0][1]["message"]
    conversation = sent[1][0].split("/")[4]
    for i, (path, body) in enumerate(sent[1:], start=1):
        assert path == f"/rest/app-chat/conversations/{conversation}/responses"
        assert body["message"] == ["first", "second", "third", "fourth"][i]  # only the new message
        assert body["parentResponseId"]
        assert body["modelName"] == "grok-4"
        assert body["modelMode"] == "MODEL_MODE_EXPERT"
    parents = [body["parentResponseId"] for _, body in sent[1:]]
    assert len(set(parents)) == 3  # each turn follows the answer before it


def test_an_edited_history_starts_a_new_conversation(web: Env, client: openai.OpenAI) -> None:
    first = [{"role": "user", "content": "alpha"}]
    a1 = ask_text(client, first, MODEL)
    ask_text(
        client, [*first, {"role": "assistant", "content": a1}, {"role": "user", "content": "beta"}], MODEL
    )
    start = mark(web)
    edited = [
        {"role": "user", "content": "ALPHA (edited)"},
        {"role": "assistant", "content": a1},
        {"role": "user", "content": "gamma"},
    ]
    answer = ask_text(client, edited, MODEL)
    assert answer == "[turn 1] You said: gamma"  # a fresh conversation upstream...
    ((path, body),) = web_requests(web, start)
    assert path == "/rest/app-chat/conversations/new"
    assert body["message"] == fold(edited)  # ...that carries the prior turns in its first message
    assert "ALPHA (edited)" in body["message"]


def test_a_changed_system_prompt_starts_a_new_conversation(web: Env, client: openai.OpenAI) -> None:
    base = [{"role": "system", "content": "one"}, {"role": "user", "content": "hi"}]
    a1 = ask_text(client, base, MODEL)
    start = mark(web)
    changed = [{"role": "system", "content": "two"}, base[1], {"role": "assistant", "content": a1}]
    ask_text(client, [*changed, {"role": "user", "content": "again"}], MODEL)
    assert web_requests(web, start)[0][0] == "/rest/app-chat/conversations/new"


def test_concurrent_continuations_branch_correctly(web: Env, client: openai.OpenAI) -> None:
    root = [{"role": "user", "content": "root"}]
    history = [*root, {"role": "assistant", "content": ask_text(client, root, MODEL)}]
    start = mark(web)
    answers: dict[str, str] = {}

    def follow(text: str) -> None:
        answers[text] = ask_text(client, [*history, {"role": "user", "content": text}], MODEL)

    threads = [threading.Thread(target=follow, args=(t,)) for t in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == {"left": "[turn 2] You said: left", "right": "[turn 2] You said: right"}
    sent = web_requests(web, start)
    assert {b["parentResponseId"] for _, b in sent} == {sent[0][1]["parentResponseId"]}  # both follow root
    # each branch continues from its own answer
    start = mark(web)
    for text in ("left", "right"):
        branch = [
            *history,
            {"role": "user", "content": text},
            {"role": "assistant", "content": answers[text]},
        ]
        assert (
            ask_text(client, [*branch, {"role": "user", "content": f"{text} again"}], MODEL)
            == f"[turn 3] You said: {text} again"
        )
    later = web_requests(web, start)
    assert all(p.endswith("/responses") for p, _ in later)
    assert later[0][1]["parentResponseId"] != later[1][1]["parentResponseId"]


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_display_modes(client: openai.OpenAI, stream: bool) -> None:
    def run(mode: str | None) -> tuple[str, str]:
        extra = {"thinking_display": mode} if mode else {}
        return answer_and_reasoning(client, "why", "web/grok-4-thinking", stream=stream, extra_body=extra)

    assert run(None) == ("[turn 1] You said: why", "Thinking about: why ")  # default: reasoning
    assert run("reasoning") == ("[turn 1] You said: why", "Thinking about: why ")
    assert run("inline") == ("<think>\nThinking about: why \n</think>\n\n[turn 1] You said: why", "")
    assert run("hidden") == ("[turn 1] You said: why", "")


def test_inline_thinking_does_not_break_continuity(web: Env, client: openai.OpenAI) -> None:
    first = [{"role": "user", "content": "think first"}]
    a1 = (
        client.chat.completions.create(
            model="web/grok-4-thinking",
            messages=first,
            extra_body={"thinking_display": "inline"},  # type: ignore[arg-type]
        )
        .choices[0]
        .message.content
    )
    assert a1 is not None and a1.startswith("<think>")
    nxt = client.chat.completions.create(
        model="web/grok-4-thinking",
        messages=[*first, {"role": "assistant", "content": a1}, {"role": "user", "content": "then"}],  # type: ignore[list-item]
        extra_body={"thinking_display": "inline"},
    )
    assert nxt.choices[0].message.content is not None
    assert nxt.choices[0].message.content.endswith("[turn 2] You said: then")


def test_bad_thinking_display_is_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        ask_text(client, "x", MODEL, extra_body={"thinking_display": "loud"})
    assert info.value.body["param"] == "thinking_display"  # type: ignore[index]


def test_generated_images_become_markdown_links(client: openai.OpenAI) -> None:
    answer = ask_text(client, "draw [sim images=2]", MODEL)
    text, *links = answer.split("\n\n")
    assert text == "[turn 1] You said: draw"
    assert len(links) == 2
    for link in links:
        assert link.startswith("![image](https://assets.grok.com/users/sim/generated/")
        assert link.endswith("/image.jpg)")


@pytest.mark.parametrize(
    ("fault", "status", "code", "says"),
    [
        ("antibot", 502, "web_session_refused", "cf_clearance"),
        ("cloudflare", 502, "web_session_refused", "Cloudflare"),
        ("expired", 502, "web_session_expired", "GROK_API_WEB_COOKIES"),
        ("usage_limit", 429, "web_usage_limit", "usage limit"),
        ("usage_limit_stream", 429, "web_usage_limit", "usage limit"),
        ("500", 502, "upstream_error", "grok.com failed"),
    ],
)
def test_refusals_map_to_clear_errors(web: Env, fault: str, status: int, code: str, says: str) -> None:
    r = post_chat(web.base_url, web.create_key("refused")[1], f"x [sim fault={fault}]", MODEL)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["code"] == code
    assert says in err["message"]
    assert WEB_COOKIES not in r.text and "sso-test-session" not in r.text
    if status == 429:
        assert r.headers["retry-after"] == ("120" if fault == "usage_limit" else "60")


@pytest.mark.parametrize("fault", ["stream_error", "cut"])
def test_failures_mid_answer(client: openai.OpenAI, fault: str) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        ask_text(client, f"x y z [sim fault={fault}]", MODEL)
    assert info.value.status_code == 502
    with pytest.raises(openai.APIError):
        list(
            client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"a b [sim fault={fault}]"}], stream=True
            )
        )


@pytest.mark.parametrize("protocol", ["rest", "ws"])
def test_a_session_the_site_refuses(env: Env, tmp_path: Path, protocol: str) -> None:
    for cookies, agent in (("sso=stale-value; x-userid=u", WEB_AGENT), (WEB_COOKIES, "curl/8.0")):
        settings = web_settings(
            tmp_path, env.sim, web_cookies=cookies, web_user_agent=agent, web_protocol=protocol
        )
        with served_env(settings, env.sim) as refused:
            r = post_chat(refused.base_url, refused.create_key()[1], "hi", MODEL)
        assert r.status_code == 502
        assert "anti-bot" in r.json()["error"]["message"]
        assert "stale-value" not in r.text


def test_images_in_requests_are_refused_clearly(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}
            ],
        )
    assert info.value.body["param"] == "messages[0].content"  # type: ignore[index]


def test_models_list_both_upstreams_and_aliases(client: openai.OpenAI) -> None:
    owners = {m.id: m.owned_by for m in client.models.list()}
    assert owners["grok-4.3"] == "xai"
    assert owners["web/grok-4"] == "grok.com"
    assert owners["web/grok-3-thinking"] == "grok.com"
    assert owners["grok-chat"] == "grok.com"  # GROK_API_ROUTES alias
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="web/grok-99", messages=[{"role": "user", "content": "x"}])


def test_alias_routes_to_the_web_upstream(web: Env, client: openai.OpenAI) -> None:
    start = mark(web)
    r = client.chat.completions.create(model="grok-chat", messages=[{"role": "user", "content": "via alias"}])
    assert r.model == "grok-chat"
    assert r.choices[0].message.content == "[turn 1] You said: via alias"
    assert web_requests(web, start)[0][1]["modelName"] == "grok-4"


def test_usage_is_estimated_and_marked(web: Env) -> None:
    record, key = web.create_key("web-usage")
    r = web.client(key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "count me please"}]
    )
    assert r.usage is not None
    assert r.usage.prompt_tokens == 4  # "count me please": 15 characters at 4 a token
    web.app.call(web.app.app.state.gateway.usage.flush())
    rows = web.app.call(web.app.app.state.gateway.usage.store.report(key_id=record.id))
    assert rows[0]["estimated_requests"] == 1
    assert rows[0]["estimated"] is True


def test_model_map_is_data(env: Env, tmp_path: Path) -> None:
    models = tmp_path / "models.json"
    models.write_text(
        json.dumps(
            {"grok-next": {"modelName": "grok-5", "modelMode": "MODEL_MODE_FUTURE", "isReasoning": True}}
        )
    )
    settings = web_settings(tmp_path, env.sim, web_models_file=models, web_protocol="rest")
    with served_env(settings, env.sim) as mapped:
        start = env.sim.recorded
        r = post_chat(mapped.base_url, mapped.create_key()[1], "hi", "web/grok-next")
        assert r.status_code == 200, r.text
    body = next(b for u, _, b in env.sim.since(start) if u == "web")
    assert (body["modelName"], body["modelMode"], body["isReasoning"]) == (
        "grok-5",
        "MODEL_MODE_FUTURE",
        True,
    )


def test_history_hash_ignores_inline_thinking() -> None:
    plain = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "answer"}]
    inline = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "<think>\nhm\n</think>\n\nanswer"},
    ]
    assert history_hash("k", "m", plain) == history_hash("k", "m", inline)
    assert history_hash("k", "m", plain) != history_hash("other-key", "m", plain)


def test_browser_impersonation_transport(env: Env, tmp_path: Path) -> None:
    """GROK_API_WEB_IMPERSONATE: the same conversation and refusals through curl_cffi."""
    settings = web_settings(tmp_path, env.sim, web_impersonate="chrome", web_protocol="rest")
    with served_env(settings, env.sim) as impersonating:
        client = impersonating.new_client()
        messages: list[dict[str, str]] = []
        for turn in (1, 2):
            messages.append({"role": "user", "content": f"impersonated {turn}"})
            answer = ask_text(client, messages, MODEL)
            assert answer == f"[turn {turn}] You said: impersonated {turn}"
            messages.append({"role": "assistant", "content": answer})
        streamed = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "streamed"}], stream=True
        )
        assert streamed_text(streamed) == "[turn 1] You said: streamed"
        with pytest.raises(openai.APIStatusError) as info:
            ask_text(client, "x [sim fault=antibot]", MODEL)
        assert info.value.status_code == 502
        assert "cf_clearance" in info.value.message
