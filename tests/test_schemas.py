"""Request validation of ``POST /v1/chat/completions``, directly: what is accepted (and forwarded
untouched), and for each kind of bad body the 400's ``param``, ``code`` and message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from grok_api.api.schemas import check_bounds, validate_chat
from grok_api.errors import InvalidRequest

M = [{"role": "user", "content": "hi"}]


def body(**kw: Any) -> dict[str, Any]:
    return {"model": "grok-3", "messages": M, **kw}


VALID: dict[str, dict[str, Any]] = {
    "minimal": body(),
    "every known field": body(
        stream=True,
        stream_options={"include_usage": True},
        temperature=2,
        top_p=0.0,
        max_tokens=1,
        max_completion_tokens=5,
        n=1,
        stop=["a", "b", "c", "d"],
        seed=-1,
        presence_penalty=-2,
        frequency_penalty=2.0,
        logprobs=True,
        top_logprobs=20,
        reasoning_effort="minimal",
        user="u",
        tools=[{"type": "function", "function": {"name": "f" * 64, "parameters": {"type": "object"}}}],
        tool_choice={"type": "function", "function": {"name": "f"}},
        parallel_tool_calls=False,
        response_format={"type": "json_schema", "json_schema": {"name": "x"}},
    ),
    "a stop string": body(stop="END"),
    "every role": body(
        messages=[
            {"role": "system", "content": "s"},
            {"role": "developer", "content": "d"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "t"},
                    {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
            {"role": "tool", "content": "r", "tool_call_id": "c"},
            {"role": "assistant", "content": "", "name": "bot"},
        ]
    ),
    "unknown fields are kept": body(
        search_parameters={"mode": "auto"}, messages=[{"role": "user", "content": "x", "extra": 1}]
    ),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_bodies(name: str) -> None:
    raw = VALID[name]
    req = validate_chat(raw)
    assert req.model == "grok-3" and len(req.messages) == len(raw["messages"])
    assert req.model_dump(exclude_unset=True, by_alias=True).keys() == raw.keys()  # nothing dropped


def test_unknown_fields_reach_the_upstream_untouched() -> None:
    req = validate_chat(VALID["unknown fields are kept"])
    assert req.model_extra == {"search_parameters": {"mode": "auto"}}
    assert req.messages[0].model_extra == {"extra": 1}


# body -> (param, code, words in the message)
INVALID: list[tuple[str, Any, str | None, str, str]] = [
    ("not an object", [1], None, "invalid_body", "must be a JSON object"),
    ("a string body", "x", None, "invalid_body", "must be a JSON object"),
    ("no model", {"messages": M}, "model", "missing_field", "'model' is required."),
    ("empty model", body(model=""), "model", "invalid_value", "at least 1 character"),
    ("long model", body(model="m" * 257), "model", "invalid_value", "at most 256 characters"),
    ("model not a string", body(model=3), "model", "invalid_value", "valid string"),
    ("no messages", {"model": "m"}, "messages", "missing_field", "'messages' is required."),
    ("no message", body(messages=[]), "messages", "invalid_value", "at least 1 item"),
    ("messages not a list", body(messages="hi"), "messages", "invalid_value", "valid list"),
    (
        "unknown role",
        body(messages=[{"role": "robot", "content": "x"}]),
        "messages[0].role",
        "invalid_value",
        "'system', 'developer', 'user', 'assistant' or 'tool'",
    ),
    (
        "user without content",
        body(messages=[{"role": "user"}]),
        "messages[0]",
        "invalid_value",
        "a user message needs 'content'",
    ),
    (
        "system without content",
        body(messages=[{"role": "system", "content": None}]),
        "messages[0]",
        "invalid_value",
        "a system message needs 'content'",
    ),
    (
        "second message bad",
        body(messages=[*M, {"role": "developer"}]),
        "messages[1]",
        "invalid_value",
        "a developer message needs 'content'",
    ),
    (
        "tool without its call id",
        body(messages=[{"role": "tool", "content": "x"}]),
        "messages[0]",
        "invalid_value",
        "a tool message needs 'tool_call_id'",
    ),
    (
        "empty assistant",
        body(messages=[{"role": "assistant", "tool_calls": []}]),
        "messages[0]",
        "invalid_value",
        "needs 'content' or 'tool_calls'",
    ),
    (
        "content a number",
        body(messages=[{"role": "user", "content": 5}]),
        "messages[0].content",
        "invalid_value",
        "valid string",
    ),
    (
        "unknown part",
        body(messages=[{"role": "user", "content": [{"type": "video"}]}]),
        "messages[0].content[0].type",
        "invalid_value",
        "'text', 'image_url', 'input_audio' or 'file'",
    ),
    (
        "text part without text",
        body(messages=[{"role": "user", "content": [{"type": "text"}]}]),
        "messages[0].content[0]",
        "invalid_value",
        "a text part needs 'text'",
    ),
    (
        "image part without url",
        body(messages=[{"role": "user", "content": [{"type": "image_url"}]}]),
        "messages[0].content[0]",
        "invalid_value",
        "an image_url part needs 'image_url'",
    ),
    (
        "empty image url",
        body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": ""}}]}]),
        "messages[0].content[0].image_url.url",
        "invalid_value",
        "at least 1 character",
    ),
    (
        "bad image detail",
        body(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "u", "detail": "max"}}],
                }
            ]
        ),
        "messages[0].content[0].image_url.detail",
        "invalid_value",
        "'auto', 'low' or 'high'",
    ),
    (
        "tool call without arguments",
        body(messages=[{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f"}}]}]),
        "messages[0].tool_calls[0].function.arguments",
        "missing_field",
        "is required",
    ),
    (
        "temperature too high",
        body(temperature=2.5),
        "temperature",
        "invalid_value",
        "less than or equal to 2",
    ),
    (
        "temperature negative",
        body(temperature=-0.1),
        "temperature",
        "invalid_value",
        "greater than or equal to 0",
    ),
    ("temperature a string", body(temperature="1"), "temperature", "invalid_value", "valid number"),
    ("top_p too high", body(top_p=1.01), "top_p", "invalid_value", "less than or equal to 1"),
    ("max_tokens 0", body(max_tokens=0), "max_tokens", "invalid_value", "greater than or equal to 1"),
    ("max_tokens a float", body(max_tokens=1.0), "max_tokens", "invalid_value", "valid integer"),
    ("max_tokens a bool", body(max_tokens=True), "max_tokens", "invalid_value", "valid integer"),
    (
        "max_completion_tokens 0",
        body(max_completion_tokens=0),
        "max_completion_tokens",
        "invalid_value",
        "greater than or equal to 1",
    ),
    ("two choices", body(n=2), "n", "invalid_value", "less than or equal to 1"),
    ("five stops", body(stop=["a", "b", "c", "d", "e"]), "stop", "invalid_value", "at most 4 items"),
    ("a numeric stop", body(stop=3), "stop", "invalid_value", "valid string"),
    ("stream a string", body(stream="yes"), "stream", "invalid_value", "valid boolean"),
    (
        "include_usage a string",
        body(stream_options={"include_usage": "yes"}),
        "stream_options.include_usage",
        "invalid_value",
        "valid boolean",
    ),
    (
        "penalty too low",
        body(presence_penalty=-3),
        "presence_penalty",
        "invalid_value",
        "greater than or equal to -2",
    ),
    (
        "penalty too high",
        body(frequency_penalty=2.5),
        "frequency_penalty",
        "invalid_value",
        "less than or equal to 2",
    ),
    (
        "top_logprobs too many",
        body(top_logprobs=21),
        "top_logprobs",
        "invalid_value",
        "less than or equal to 20",
    ),
    (
        "unknown effort",
        body(reasoning_effort="max"),
        "reasoning_effort",
        "invalid_value",
        "'minimal', 'low', 'medium' or 'high'",
    ),
    (
        "tool of another type",
        body(tools=[{"type": "web", "function": {"name": "f"}}]),
        "tools[0].type",
        "invalid_value",
        "'function'",
    ),
    (
        "tool name too long",
        body(tools=[{"type": "function", "function": {"name": "f" * 65}}]),
        "tools[0].function.name",
        "invalid_value",
        "at most 64 characters",
    ),
    (
        "empty tool name",
        body(tools=[{"type": "function", "function": {"name": ""}}]),
        "tools[0].function.name",
        "invalid_value",
        "at least 1 character",
    ),
    (
        "unknown tool choice",
        body(tool_choice="sometimes"),
        "tool_choice",
        "invalid_value",
        "'none', 'auto' or 'required'",
    ),
    (
        "named tool without a name",
        body(tool_choice={"type": "function", "function": {}}),
        "tool_choice.function.name",
        "missing_field",
        "'tool_choice.function.name' is required.",
    ),
    (
        "unknown response format",
        body(response_format={"type": "xml"}),
        "response_format.type",
        "invalid_value",
        "'text', 'json_object' or 'json_schema'",
    ),
]


@pytest.mark.parametrize(("name", "raw", "param", "code", "words"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_bodies(name: str, raw: Any, param: str | None, code: str, words: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_chat(raw)
    err = info.value
    assert (err.status, err.param, err.code) == (400, param, code), err.message
    assert words in err.message, err.message
    if param is not None:
        assert err.message.startswith(f"'{param}' ")
    assert "NamedToolChoice" not in err.message and "function-after" not in err.message


@dataclass
class Bounds:
    max_messages: int = 3
    max_content_chars: int = 10
    max_json_depth: int = 5


@pytest.mark.parametrize(
    ("raw", "code", "param"),
    [
        (body(messages=[{"role": "user", "content": "x"}] * 4), "too_many_messages", "messages"),
        (body(messages=[{"role": "user", "content": "x" * 11}]), "content_too_long", "messages"),
        (
            body(messages=[{"role": "user", "content": [{"type": "text", "text": "x" * 6}] * 2}]),
            "content_too_long",
            "messages",
        ),
        (body(x=[[[[{"a": 1}]]]]), "too_deep", None),
    ],
)
def test_bounds_refuse(raw: dict[str, Any], code: str, param: str | None) -> None:
    for given in (None, str(raw).encode()):
        with pytest.raises(InvalidRequest) as info:
            validate_chat(raw, Bounds(), given)
        assert (info.value.code, info.value.param, info.value.status) == (code, param, 400)


@pytest.mark.parametrize(
    "raw",
    [
        body(messages=[{"role": "user", "content": "x"}] * 3),
        body(messages=[{"role": "user", "content": "x" * 10}]),
        body(x=[[[{"a": 1}]]]),  # depth 5 exactly: the body, x, and three more
        body(messages=[*M, "not a message"]),  # bounds skip what validation will refuse
    ],
)
def test_bounds_admit_up_to_the_limit(raw: dict[str, Any]) -> None:
    check_bounds(raw, Bounds(), None)
    check_bounds(raw, Bounds(), str(raw).encode())


def test_depth_is_measured_on_the_raw_body_when_there_is_one() -> None:
    with pytest.raises(InvalidRequest):
        check_bounds(body(x=[[[[{"a": 1}]]]]), Bounds(), None)  # no raw body: the parsed one is walked
    with pytest.raises(InvalidRequest):
        check_bounds(body(), Bounds(), b'{"x":[[[[[1]]]]]}')  # six levels
    check_bounds(body(), Bounds(), b'{"x":[[[[1]]]]}')  # five
    check_bounds(body(), Bounds(), b'{"x":"[[[[[[[[[[{{{{{"}')  # brackets inside a string do not nest
