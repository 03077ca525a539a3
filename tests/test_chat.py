"""Chat completions through the openai SDK, over real HTTP, with the simulator upstream."""

from __future__ import annotations

import json

import httpx
import jsonschema
import openai
import pytest

from .helpers import Env


def last_upstream_body(env: Env) -> dict[str, object]:
    upstream, path, body = env.sim.requests[-1]
    assert (upstream, path) == ("xai", "/v1/chat/completions")
    return body


def test_non_streamed_completion(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model="grok-4.20-non-reasoning", messages=[{"role": "user", "content": "hello there"}]
    )
    assert r.id.startswith("chatcmpl-")
    assert r.object == "chat.completion"
    assert r.model == "grok-4.20-non-reasoning"
    assert abs(r.created - __import__("time").time()) < 60
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "[turn 1] You said: hello there"
    assert choice.finish_reason == "stop"
    assert r.usage is not None
    assert r.usage.prompt_tokens == 5
    assert r.usage.completion_tokens == 6
    assert r.usage.total_tokens == 11


def test_streamed_completion_without_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="grok-4.20-non-reasoning", messages=[{"role": "user", "content": "stream me"}], stream=True
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    assert all(c.object == "chat.completion.chunk" and c.model == "grok-4.20-non-reasoning" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[turn 1] You said: stream me"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_streamed_completion_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="grok-4.20-non-reasoning",
            messages=[{"role": "user", "content": "count me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    *body, last = chunks
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == 6  # "[turn 1] You said: count me"
    assert last.usage.prompt_tokens == 5
    assert body[-1].choices[0].finish_reason == "stop"


def test_sse_framing_is_exactly_openais(env: Env, key: str) -> None:
    with httpx.stream(
        "POST",
        env.base_url + "/v1/chat/completions",
        headers={"Authorization": f"Bearer {key}"},
        json={
            "model": "grok-4.20-non-reasoning",
            "stream": True,
            "messages": [{"role": "user", "content": "frames"}],
        },
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        raw = r.read().decode()
    events = raw.split("\n\n")
    assert events[-1] == "" and events[-2] == "data: [DONE]"
    for ev in events[:-2]:
        assert ev.startswith("data: {")
        json.loads(ev[len("data: ") :])


def test_multi_turn_history_reaches_upstream(env: Env, client: openai.OpenAI) -> None:
    messages: list[dict[str, str]] = [{"role": "system", "content": "be brief"}]
    for turn, text in enumerate(["first", "second", "third"], start=1):
        messages.append({"role": "user", "content": text})
        r = client.chat.completions.create(model="grok-4.3", messages=messages)  # type: ignore[arg-type]
        answer = r.choices[0].message.content
        assert answer == f"[turn {turn}] You said: {text}"
        messages.append({"role": "assistant", "content": answer})
    sent = last_upstream_body(env)["messages"]
    assert sent == messages[:-1]
    assert r.usage is not None and r.usage.prompt_tokens_details is not None
    assert r.usage.prompt_tokens_details.cached_tokens > 0


def test_reasoning_content_and_tokens_carried(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(model="grok-3-mini", messages=[{"role": "user", "content": "why"}])
    msg = r.choices[0].message
    assert msg.content == "[turn 1] You said: why"
    assert getattr(msg, "reasoning_content", None) == "Thinking about: why "
    assert r.usage is not None and r.usage.completion_tokens_details is not None
    assert r.usage.completion_tokens_details.reasoning_tokens == 3
    # OpenAI's meaning: completion tokens include reasoning, and the total adds up
    assert r.usage.completion_tokens == 5 + 3
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens

    chunks = list(
        client.chat.completions.create(
            model="grok-3-mini", messages=[{"role": "user", "content": "why"}], stream=True
        )
    )
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks)
    assert reasoning == "Thinking about: why "


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls(client: openai.OpenAI, stream: bool) -> None:
    parameters = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}},
        "required": ["city", "days"],
        "additionalProperties": False,
    }
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": parameters}}]
    kwargs = {
        "model": "grok-4.3",
        "messages": [{"role": "user", "content": "weather [sim tool=1]"}],
        "tools": tools,
        "tool_choice": "auto",
    }
    if stream:
        chunks = list(client.chat.completions.create(stream=True, **kwargs))  # type: ignore[call-overload]
        calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
        name = calls[0].function.name
        args = "".join(tc.function.arguments or "" for tc in calls)
        finish = chunks[-1].choices[0].finish_reason
    else:
        r = client.chat.completions.create(**kwargs)
        call = r.choices[0].message.tool_calls[0]
        name, args, finish = call.function.name, call.function.arguments, r.choices[0].finish_reason
    assert name == "lookup"
    arguments = json.loads(args)
    jsonschema.validate(arguments, parameters)  # the simulator follows the tool's schema
    assert arguments["city"] == "weather"  # its strings are the prompt without the directive
    assert finish == "tool_calls"


def test_unknown_fields_pass_through_and_known_ones_are_forwarded(env: Env, client: openai.OpenAI) -> None:
    client.chat.completions.create(
        model="grok-4.3",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/a.png", "detail": "high"},
                    },
                ],
            }
        ],
        temperature=0.2,
        max_completion_tokens=50,
        seed=7,
        stop=["END"],
        response_format={"type": "json_object"},
        reasoning_effort="low",
        user="u-1",
        extra_body={"search_parameters": {"mode": "auto"}, "future_knob": [1, 2]},
    )
    sent = last_upstream_body(env)
    assert sent["search_parameters"] == {"mode": "auto"}
    assert sent["future_knob"] == [1, 2]
    assert sent["temperature"] == 0.2
    assert sent["reasoning_effort"] == "low"
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["messages"][0]["content"][1]["image_url"]["url"] == "https://example.com/a.png"  # type: ignore[index]


def test_upstream_is_always_asked_for_usage_when_streaming(env: Env, client: openai.OpenAI) -> None:
    list(
        client.chat.completions.create(
            model="grok-4.20-non-reasoning", messages=[{"role": "user", "content": "u"}], stream=True
        )
    )
    assert last_upstream_body(env)["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "grok-4.20-non-reasoning"}, "messages"),
        ({"model": "grok-4.20-non-reasoning", "messages": []}, "messages"),
        (
            {"model": "grok-4.20-non-reasoning", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
        ),
        ({"model": "grok-4.20-non-reasoning", "messages": [{"role": "user"}]}, "messages[0]"),
        ({"model": "grok-4.20-non-reasoning", "messages": [{"role": "tool", "content": "x"}]}, "messages[0]"),
        (
            {
                "model": "grok-4.20-non-reasoning",
                "messages": [{"role": "user", "content": [{"type": "text"}]}],
            },
            "messages[0].content[0]",
        ),
        (
            {
                "model": "grok-4.20-non-reasoning",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": 3,
            },
            "temperature",
        ),
        (
            {
                "model": "grok-4.20-non-reasoning",
                "messages": [{"role": "user", "content": "x"}],
                "temperature": "hot",
            },
            "temperature",
        ),
        (
            {
                "model": "grok-4.20-non-reasoning",
                "messages": [{"role": "user", "content": "x"}],
                "max_tokens": 0,
            },
            "max_tokens",
        ),
        (
            {
                "model": "grok-4.20-non-reasoning",
                "messages": [{"role": "user", "content": "x"}],
                "stream": "yes",
            },
            "stream",
        ),
        (
            {
                "model": "grok-4.20-non-reasoning",
                "messages": [{"role": "user", "content": "x"}],
                "tool_choice": "maybe",
            },
            "tool_choice",
        ),
        ({"model": "grok-4.20-non-reasoning", "messages": [{"role": "user", "content": "x"}], "n": 2}, "n"),
        (
            {
                "model": "grok-4.20-non-reasoning",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function"}],
            },
            "tools[0].function",
        ),
    ],
)
def test_invalid_bodies_name_the_bad_field(env: Env, key: str, body: dict[str, object], param: str) -> None:
    r = httpx.post(
        env.base_url + "/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body
    )
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param
    assert param in err["message"]


def test_sdk_raises_bad_request_for_invalid_body(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="grok-4.20-non-reasoning", messages=[{"role": "user", "content": "x"}], temperature=5
        )
    assert info.value.body["param"] == "temperature"  # type: ignore[index]
