"""Structured output through the gateway against the simulator (as in demo mode), with the real
``openai`` SDK: the simulator follows ``response_format`` / ``text.format`` schemas and tools'
``parameters``, and honours ``tool_choice``, as xAI does."""

from __future__ import annotations

import datetime
import enum
import json
import re
from pathlib import Path
from typing import Any, Literal

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from .helpers import Env, run_script
from .responses_helpers import stream_events

MODEL = "grok-4.3"
README = Path(__file__).parent.parent / "README.md"


class Species(enum.Enum):
    CAT = "cat"
    DOG = "dog"
    PARROT = "parrot"


class Address(BaseModel):
    street: str
    city: str
    postcode: str = Field(pattern=r"^[0-9]{5}$")


class Pet(BaseModel):
    name: str
    species: Species
    age: int = Field(ge=0, le=30)


class Person(BaseModel):
    name: str
    home: Address
    previous_home: Address | None  # the same sub-model again: a $ref into $defs
    nickname: str | None
    pets: list[Pet]
    hobbies: list[str]
    mood: Literal["happy", "grumpy"]
    born: datetime.date
    height_m: float = Field(ge=0.5, le=2.5)


class Booking(BaseModel):
    city: str
    nights: int = Field(ge=1, le=14)
    breakfast: bool


WEATHER: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "units": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "units", "days"],
    "additionalProperties": False,
}
CHAT_TOOLS: list[Any] = [
    {"type": "function", "function": {"name": "get_weather", "parameters": WEATHER}},
    openai.pydantic_function_tool(Booking, name="book"),
]
RESPONSES_TOOLS: list[Any] = [
    {"type": "function", "name": "get_weather", "parameters": WEATHER, "strict": True},
    {"type": "function", "name": "book", "parameters": Booking.model_json_schema(), "strict": False},
]


def upstream(env: Env, path: str) -> dict[str, Any]:
    """The last body the simulator received on ``path``."""
    body: dict[str, Any] = next(b for _, p, b in reversed(env.sim.requests) if p == path)
    return body


def check_person(person: Person | None, content: str, schema: dict[str, Any]) -> None:
    assert isinstance(person, Person)
    jsonschema.validate(json.loads(content), schema)
    assert person.pets and person.hobbies and person.previous_home is not None
    assert person.name == "Describe Ada, who lives in Paris."  # strings are the prompt


ASK = [{"role": "user", "content": "Describe Ada, who lives in Paris. [sim rate=400]"}]  # paced: deltas show


def test_chat_parse_fills_a_pydantic_model(env: Env, client: openai.OpenAI) -> None:
    r = client.chat.completions.parse(model=MODEL, messages=ASK, response_format=Person)  # type: ignore[arg-type]
    message = r.choices[0].message
    sent = upstream(env, "/v1/chat/completions")["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    assert "$defs" in sent["json_schema"]["schema"]
    assert message.content is not None and r.choices[0].finish_reason == "stop"
    check_person(message.parsed, message.content, sent["json_schema"]["schema"])
    again = client.chat.completions.parse(model=MODEL, messages=ASK, response_format=Person)  # type: ignore[arg-type]
    assert again.choices[0].message.content == message.content  # deterministic for a prompt


def test_chat_stream_of_a_pydantic_model(env: Env, client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model=MODEL, messages=ASK, response_format=Person) as stream:  # type: ignore[arg-type]
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.content is not None and len(deltas) > 10 and "".join(deltas) == message.content
    sent = upstream(env, "/v1/chat/completions")["response_format"]
    check_person(message.parsed, message.content, sent["json_schema"]["schema"])


def test_chat_json_object(client: openai.OpenAI) -> None:
    r = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Any JSON"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(r.choices[0].message.content or "") == {"answer": "[turn 1] You said: Any JSON"}


def test_responses_parse_fills_a_pydantic_model(env: Env, client: openai.OpenAI) -> None:
    prompt = ASK[0]["content"]
    r = client.responses.parse(model=MODEL, input=prompt, text_format=Person)
    sent = upstream(env, "/v1/responses")["text"]["format"]
    assert sent["type"] == "json_schema" and sent["name"] == "Person"
    check_person(r.output_parsed, r.output_text, sent["schema"])
    with client.responses.stream(model=MODEL, input=prompt, text_format=Person) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 10 and "".join(deltas) == final.output_text
    check_person(final.output_parsed, final.output_text, sent["schema"])


def test_responses_json_object(client: openai.OpenAI) -> None:
    r = client.responses.create(model=MODEL, input="Any JSON", text={"format": {"type": "json_object"}})
    assert json.loads(r.output_text) == {"answer": "[turn 1] You said: Any JSON"}


def chat_calls(client: openai.OpenAI, stream: bool, **kwargs: Any) -> tuple[list[tuple[str, str]], str]:
    """The (name, arguments) of each call in a chat answer, and its finish reason."""
    if not stream:
        r = client.chat.completions.create(model=MODEL, **kwargs)
        calls = r.choices[0].message.tool_calls or []
        return [(c.function.name, c.function.arguments) for c in calls], r.choices[0].finish_reason
    chunks = list(client.chat.completions.create(model=MODEL, stream=True, **kwargs))
    names: dict[int, str] = {}
    arguments: dict[int, str] = {}
    for chunk in chunks:
        for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            if tc.function and tc.function.name:
                names[tc.index] = tc.function.name
            arguments[tc.index] = arguments.get(tc.index, "") + (
                (tc.function and tc.function.arguments) or ""
            )
    finish = next(c.choices[0].finish_reason for c in reversed(chunks) if c.choices)
    return [(names[i], arguments[i]) for i in sorted(names)], str(finish)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_tool_arguments_follow_the_parameters(client: openai.OpenAI, stream: bool) -> None:
    ask = [{"role": "user", "content": "Weather in Oslo and a room [sim tool=2]"}]
    calls, finish = chat_calls(client, stream, messages=ask, tools=CHAT_TOOLS)
    assert finish == "tool_calls" and [name for name, _ in calls] == ["get_weather", "book"]
    weather, booking = (json.loads(arguments) for _, arguments in calls)
    jsonschema.validate(weather, WEATHER)
    assert weather["city"] == "Weather in Oslo and a room"
    jsonschema.validate(booking, CHAT_TOOLS[1]["function"]["parameters"])
    Booking.model_validate(booking)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_tool_choice(client: openai.OpenAI, stream: bool) -> None:
    ask = [{"role": "user", "content": "Plan a trip"}]  # no [sim tool=…]: only tool_choice asks for calls
    named = {"type": "function", "function": {"name": "book"}}
    calls, _ = chat_calls(client, stream, messages=ask, tools=CHAT_TOOLS, tool_choice=named)
    assert [name for name, _ in calls] == ["book"]
    Booking.model_validate_json(calls[0][1])
    calls, _ = chat_calls(client, stream, messages=ask, tools=CHAT_TOOLS, tool_choice="required")
    assert [name for name, _ in calls] == ["get_weather"]
    calls, _ = chat_calls(client, stream, messages=ask, tools=CHAT_TOOLS, tool_choice="auto")
    assert calls == []
    tool_ask = [{"role": "user", "content": "Plan a trip [sim tool=2]"}]
    calls, finish = chat_calls(client, stream, messages=tool_ask, tools=CHAT_TOOLS, tool_choice="none")
    assert calls == [] and finish == "stop"
    calls, _ = chat_calls(client, stream, messages=tool_ask, tools=CHAT_TOOLS, parallel_tool_calls=False)
    assert [name for name, _ in calls] == ["get_weather"]
    calls, _ = chat_calls(client, stream, messages=tool_ask, tools=CHAT_TOOLS, tool_choice=named)
    assert [name for name, _ in calls] == ["book", "book"]


def test_chat_parse_of_a_pydantic_function_tool(client: openai.OpenAI) -> None:
    r = client.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Book Rome"}],
        tools=[openai.pydantic_function_tool(Booking, name="book")],
        tool_choice={"type": "function", "function": {"name": "book"}},
    )
    (call,) = r.choices[0].message.tool_calls or []
    assert isinstance(call.function.parsed_arguments, Booking)
    assert call.function.parsed_arguments.city == "Book Rome"


def test_a_tool_choice_naming_no_tool_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "x"}],
            tools=CHAT_TOOLS,
            tool_choice={"type": "function", "function": {"name": "fly"}},
        )
    assert "fly" in str(raised.value)


@pytest.mark.parametrize(
    "schema",
    [{"type": "object", "properties": "oops"}, {"type": "string", "minLength": "3"}],
)
def test_a_schema_that_is_not_one_is_refused(client: openai.OpenAI, schema: dict[str, Any]) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "x"}],
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}},
        )
    assert "Invalid JSON schema" in str(raised.value)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(
            model=MODEL,
            input="x",
            tools=[{"type": "function", "name": "f", "parameters": schema, "strict": False}],
            tool_choice="required",
        )


def test_responses_function_tools_and_tool_choice(client: openai.OpenAI) -> None:
    def calls(**kwargs: Any) -> list[tuple[str, dict[str, Any]]]:
        r = client.responses.create(model=MODEL, tools=RESPONSES_TOOLS, **kwargs)
        return [(i.name, json.loads(i.arguments)) for i in r.output if i.type == "function_call"]

    made = calls(input="Weather in Oslo [sim tool=2]")
    assert [name for name, _ in made] == ["get_weather", "book"]
    jsonschema.validate(made[0][1], WEATHER)
    Booking.model_validate(made[1][1])
    assert made[0][1]["city"] == "Weather in Oslo"
    assert [n for n, _ in calls(input="Plan", tool_choice={"type": "function", "name": "book"})] == ["book"]
    assert [n for n, _ in calls(input="Plan", tool_choice="required")] == ["get_weather"]
    assert calls(input="Plan [sim tool=1]", tool_choice="none") == []
    assert calls(input="Plan") == []


def test_responses_streamed_call_arguments_add_up(env: Env, key: str) -> None:
    _, events = stream_events(
        env.base_url,
        key,
        model=MODEL,
        input="Weather in Oslo",
        tools=RESPONSES_TOOLS,
        tool_choice={"type": "function", "name": "get_weather"},
    )
    deltas = [e["delta"] for _, e in events if e["type"] == "response.function_call_arguments.delta"]
    (done,) = [e["arguments"] for _, e in events if e["type"] == "response.function_call_arguments.done"]
    assert "".join(deltas) == done
    jsonschema.validate(json.loads(done), WEATHER)
    assert [e["type"] for _, e in events][-1] == "response.completed"
    assert not any(e["type"] == "response.output_text.delta" for _, e in events)


def test_the_readme_example(env: Env, key: str, tmp_path: Path) -> None:
    text = README.read_text()
    marker = text.index("<!-- readme-structured-example")
    match = re.search(r"```python\n(.*?)```", text[marker:], re.DOTALL)
    assert match, "the README lost its structured output example"
    script = tmp_path / "example.py"
    script.write_text(match.group(1).replace("http://127.0.0.1:8000", env.base_url))
    result = run_script(script, key)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"The largest city in Norway\? \d+\n", result.stdout)
