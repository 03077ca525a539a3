"""The Responses API as third-party clients call it (found by an outside review)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from grok_api.store import Limits

from .helpers import Env, ServedApp, web_settings


@pytest.fixture(scope="module")
def gw(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    settings = web_settings(tmp_path_factory.mktemp("review-responses"), env.sim)
    with ServedApp(settings) as served:
        yield Env(app=served, sim=env.sim, settings=settings)


def _post(gw: Env, key: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        gw.base_url + "/v1/responses", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=30
    )


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "input_text", "text": text}]}


@pytest.mark.parametrize("model", ["grok-3-mini", "web/grok-4"])
def test_item_references_to_stored_items_are_resolved(gw: Env, model: str) -> None:
    """The Vercel AI SDK's default provider (``@ai-sdk/openai`` 3.0.141) sends the items of a
    stored answer as ``item_reference``s on the next turn (every chat after the first): they were
    a 400, so its multi-turn chats failed."""
    _, key = gw.create_key("ai-sdk")
    first = _post(gw, key, {"model": model, "input": [_user("first")]})
    assert first.status_code == 200, first.text
    output = first.json()["output"]
    answer = next(i for i in output if i["type"] == "message")["content"][0]["text"]
    refs = [{"type": "item_reference", "id": item["id"]} for item in output]  # reasoning too
    mark = gw.sim.recorded
    second = _post(gw, key, {"model": model, "input": [_user("first"), *refs, _user("second")]})
    assert second.status_code == 200, second.text
    text = next(i for i in second.json()["output"] if i["type"] == "message")["content"][0]["text"]
    assert text.startswith("[turn 2]") and text.endswith("second")
    if model == "grok-3-mini":  # xAI got the referenced answer itself, not ids it never made
        (body,) = [b for u, p, b in gw.sim.since(mark) if u == "xai"]
        assert all(item.get("type") != "item_reference" for item in body["input"])
        assistant = [i for i in body["input"] if i.get("role") == "assistant"]
        assert assistant == [
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": answer}]}
        ]


def test_an_item_reference_reads_only_the_keys_own_items(gw: Env) -> None:
    _, owner = gw.create_key("owner")
    _, other = gw.create_key("other")
    first = _post(gw, owner, {"model": "grok-4.3", "input": "a secret"})
    item_id = first.json()["output"][0]["id"]
    for key, ref in ((other, item_id), (owner, "msg_unknown"), (owner, "msg_%")):
        r = _post(
            gw, key, {"model": "grok-4.3", "input": [{"type": "item_reference", "id": ref}, _user("x")]}
        )
        assert r.status_code in (400, 404), r.text
        assert "secret" not in r.text and r.json()["error"]["param"].startswith("input[0]")
    r = _post(
        gw, owner, {"model": "grok-4.3", "input": [{"type": "item_reference", "id": item_id}, _user("x")]}
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("model", ["grok-4.3", "web/grok-4"])
def test_a_conversation_by_previous_response_id_keeps_the_size_bounds(
    env: Env, tmp_path_factory: pytest.TempPathFactory, model: str
) -> None:
    """A chat request carries its whole history and is bounded (GROK_API_MAX_MESSAGES, …); a chain
    of ``previous_response_id``s grew past the bounds without end (each stored row holding it all)."""
    settings = web_settings(tmp_path_factory.mktemp("chain"), env.sim, max_messages=4)
    with ServedApp(settings) as served:
        gw = Env(app=served, sim=env.sim, settings=settings)
        _, key = gw.create_key("chain")
        previous = None
        statuses = []
        for turn in range(3):  # 1 message, then 2 + 1, then 4 + 1: past the bound
            body: dict[str, Any] = {"model": model, "input": f"turn {turn}"}
            if previous:
                body["previous_response_id"] = previous
            r = _post(gw, key, body)
            statuses.append(r.status_code)
            previous = r.json().get("id")
        assert statuses == [200, 200, 400], statuses
        assert r.json()["error"]["code"] == "too_many_messages"


def test_a_budget_caps_a_responses_answer_on_xai_as_it_caps_a_chat_answer(gw: Env) -> None:
    """The budget cap (``max_tokens`` lowered to what is left) skipped the Responses API's
    ``max_output_tokens``: a key with 60 tokens left got a 500-token answer."""
    _, key = gw.create_key("budget", limits=Limits(budget_total=60))
    mark = gw.sim.recorded
    r = _post(gw, key, {"model": "grok-4.3", "input": "hi [sim tokens=500]", "max_output_tokens": 1000})
    assert r.status_code == 200, r.text
    (body,) = [b for u, p, b in gw.sim.since(mark) if u == "xai"]
    assert 0 < body["max_output_tokens"] <= 60
    usage = r.json()["usage"]
    assert usage["total_tokens"] <= 60 + 5, usage  # what the upstream sends past the cap, at most
    assert r.json()["status"] == "incomplete"
