"""The Responses API through the official ``openai`` SDK's ``responses`` client, against both
upstreams of the simulator: xAI's API (its own ``/v1/responses``) and grok.com (``web/…``)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import openai
import orjson
import pytest
import sqlalchemy as sa

from grok_api.store import Limits
from grok_api.store.tables import responses

from .helpers import ADMIN_KEY, Env, ServedApp, web_settings
from .responses_helpers import check_event, check_response, stream_events, validator

XAI = "grok-4.3"
XAI_REASONING = "grok-3-mini"
WEB = "web/grok-4"
BOTH = pytest.mark.parametrize("model", [XAI, WEB])
DEEP: list[Any] = []
for _ in range(70):
    DEEP = [DEEP]


@pytest.fixture(scope="module")
def gw(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A gateway with both upstreams: xAI's API (default) and grok.com (``web/…``)."""
    settings = web_settings(tmp_path_factory.mktemp("responses"), env.sim)
    with ServedApp(settings) as served:
        e = Env(app=served, sim=env.sim, settings=settings)
        yield e
        e.close_clients()


@pytest.fixture
def key(gw: Env) -> str:
    return gw.create_key("responses")[1]


@pytest.fixture
def client(gw: Env, key: str) -> openai.OpenAI:
    return gw.client(key)


def sent(gw: Env, since: int, upstream: str) -> list[tuple[str, dict[str, Any]]]:
    return [(path, body) for u, path, body in gw.sim.since(since) if u == upstream]


def web_turns(gw: Env, since: int) -> list[tuple[str | None, str | None, str]]:
    """Each grok.com turn as (conversation continued or None, parent response or None, text sent),
    from the frames the simulated grok.com WebSocket gateway received."""
    frames = sent(gw, since, "web")
    creates = [b["event"]["session"]["x_grok"] for p, b in frames if p == "ws:session.create"]
    items = [b["event"] for p, b in frames if p == "ws:conversation.item.create"]
    out = []
    for x_grok, item in zip(creates, items, strict=True):
        chunks = item["item"]["x_grok"]["input_chunks"]
        text = "".join(c["text"]["text"] for c in chunks if "text" in c)
        out.append((x_grok.get("conversation_id"), item.get("parent_response_id"), text))
    return out


@BOTH
def test_string_input(client: openai.OpenAI, model: str) -> None:
    r = client.responses.create(model=model, input="hello there")
    assert r.object == "response"
    assert r.status == "completed"
    assert r.model == model
    assert r.output_text == "[turn 1] You said: hello there"
    assert r.output[-1].type == "message"
    assert r.usage is not None and r.usage.output_tokens > 0
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    check_response(r.model_dump(mode="json", exclude_unset=True))


@BOTH
def test_item_input_and_instructions(gw: Env, client: openai.OpenAI, model: str) -> None:
    start = gw.sim.recorded
    r = client.responses.create(
        model=model,
        instructions="Answer like a pirate.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "ahoy"}]}],
    )
    assert r.output_text == "[turn 1] You said: ahoy"
    assert r.instructions == "Answer like a pirate."
    if model == XAI:
        (path, body), *_ = sent(gw, start, "xai")
        assert path == "/v1/responses"
        assert body["instructions"] == "Answer like a pirate."
        assert body["model"] == "grok-4.3"
    else:
        ((conversation, _, text),) = web_turns(gw, start)
        assert conversation is None
        assert "Answer like a pirate." in text


@BOTH
def test_three_turns_by_previous_response_id(gw: Env, client: openai.OpenAI, model: str) -> None:
    start = gw.sim.recorded
    ids: list[str | None] = [None]
    for turn, text in enumerate(["first", "second", "third"], start=1):
        r = client.responses.create(model=model, input=text, previous_response_id=ids[-1])
        assert r.output_text == f"[turn {turn}] You said: {text}"
        assert r.previous_response_id == ids[-1]
        ids.append(r.id)
    if model == XAI:
        bodies = [body for _, body in sent(gw, start, "xai")]
        assert [b["input"] for b in bodies] == ["first", "second", "third"]  # xAI keeps the state
        assert [b.get("previous_response_id") for b in bodies] == ids[:3]
    else:
        first, *follow_ups = web_turns(gw, start)
        assert first[0] is None and first[2] == "first"  # a new grok.com conversation
        conversation = follow_ups[0][0]
        assert conversation is not None
        parents = set()
        for (continued, parent, sent_text), text in zip(follow_ups, ["second", "third"], strict=True):
            assert continued == conversation  # the same grok.com conversation, continued upstream
            assert sent_text == text  # only the new message, no replay
            parents.add(parent)
        assert None not in parents and len(parents) == 2  # each follows the answer before it


@BOTH
def test_retrieve_and_delete(client: openai.OpenAI, model: str) -> None:
    r = client.responses.create(model=model, input="keep me")
    got = client.responses.retrieve(r.id)
    assert got.id == r.id
    assert got.output_text == "[turn 1] You said: keep me"
    assert got.status == "completed"
    client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=model, input="again", previous_response_id=r.id)


@BOTH
def test_another_keys_id_is_404_never_the_content(gw: Env, client: openai.OpenAI, model: str) -> None:
    r = client.responses.create(model=model, input="my secret plan")
    other = gw.client(gw.create_key("other")[1])
    with pytest.raises(openai.NotFoundError) as err:
        other.responses.retrieve(r.id)
    assert "secret" not in str(err.value.body)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError) as err:
        other.responses.create(model=model, input="and?", previous_response_id=r.id)
    assert "secret" not in str(err.value.body)
    assert client.responses.retrieve(r.id).output_text.endswith("my secret plan")  # still there


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    r = client.responses.create(model=XAI, input="forget me", store=False)
    assert r.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r.id)


@pytest.mark.parametrize("model", [XAI, XAI_REASONING, WEB])
def test_stream_events_match_the_published_shapes(gw: Env, key: str, model: str) -> None:
    r, events = stream_events(gw.base_url, key, model=model, input="stream [sim tokens=40]")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    for n, (name, event) in enumerate(events):
        assert name == event["type"]
        assert event["sequence_number"] == n
        check_event(event)
    types = [e["type"] for _, e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed"
    deltas = "".join(e["delta"] for _, e in events if e["type"] == "response.output_text.delta")
    (done,) = [e["text"] for _, e in events if e["type"] == "response.output_text.done"]
    final = events[-1][1]["response"]
    (message,) = [item for item in final["output"] if item["type"] == "message"]
    assert deltas == done == message["content"][0]["text"]
    assert len(deltas.split()) == (5 if model == WEB else 40)  # grok.com's simulator ignores tokens=
    assert final["usage"]["output_tokens"] > 0
    if model == XAI_REASONING:
        assert "response.reasoning_summary_text.delta" in types
        assert final["output"][0]["type"] == "reasoning"
        assert types.index("response.reasoning_summary_text.delta") < types.index(
            "response.output_text.delta"
        )


@BOTH
def test_sdk_stream_deltas_add_up(client: openai.OpenAI, model: str) -> None:
    text = ""
    completed = None
    with client.responses.stream(model=model, input="streamed hello") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                text += event.delta
        completed = stream.get_final_response()
    assert text == "[turn 1] You said: streamed hello" == completed.output_text


WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 14}},
    "required": ["city", "days"],
    "additionalProperties": False,
}


def test_function_tools_and_their_results_next_turn(gw: Env, key: str, client: openai.OpenAI) -> None:
    tools: Any = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city.",
            "parameters": WEATHER,
            "strict": False,
        }
    ]
    r = client.responses.create(model=XAI, input="[sim tool=1] Paris?", tools=tools, tool_choice="auto")
    (call,) = [item for item in r.output if item.type == "function_call"]
    assert call.name == "get_weather"
    assert orjson.loads(call.arguments)["city"] == "Paris?"  # strings are the prompt, no directive
    jsonschema.validate(orjson.loads(call.arguments), WEATHER)
    follow = client.responses.create(
        model=XAI,
        previous_response_id=r.id,
        tools=tools,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert follow.output_text == "[turn 1] You said: Tool said: sunny"
    _, events = stream_events(gw.base_url, key, model=XAI, input="[sim tool=1] Rome?", tools=tools)
    for _, event in events:
        check_event(event)
    types = [e["type"] for _, e in events]
    assert "response.function_call_arguments.delta" in types
    (done,) = [e for _, e in events if e["type"] == "response.function_call_arguments.done"]
    deltas = [e["delta"] for _, e in events if e["type"] == "response.function_call_arguments.delta"]
    assert "".join(deltas) == done["arguments"]
    assert orjson.loads(done["arguments"])["city"] == "Rome?"
    jsonschema.validate(orjson.loads(done["arguments"]), WEATHER)


def test_xai_server_side_tools_and_citations(gw: Env, key: str, client: openai.OpenAI) -> None:
    r = client.responses.create(model=XAI, input="news?", tools=[{"type": "web_search"}])
    assert [item.type for item in r.output] == ["web_search_call", "message"]
    annotations = r.output[-1].content[0].annotations  # type: ignore[union-attr]
    assert {a.url for a in annotations} == {"https://x.ai/news", "https://docs.x.ai/developers"}  # type: ignore[union-attr]
    _, events = stream_events(gw.base_url, key, model=XAI, input="news?", tools=[{"type": "web_search"}])
    for _, event in events:
        check_event(event)
    assert sum(e["type"] == "response.output_text.annotation.added" for _, e in events) == 2
    x = client.responses.create(model=XAI, input="posts?", tools=[{"type": "x_search"}])
    assert x.output[0].type == "custom_tool_call"


def test_xai_gets_every_parameter(gw: Env, client: openai.OpenAI) -> None:
    start = gw.sim.recorded
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    r = client.responses.create(
        model=XAI_REASONING,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "describe"},
                    {
                        "type": "input_image",
                        "image_url": "data:image/png;base64,iVBORw0KGgo=",
                        "detail": "auto",
                    },
                ],
            }
        ],
        temperature=0.5,
        top_p=0.9,
        max_output_tokens=500,
        reasoning={"effort": "high"},
        text={"format": {"type": "json_schema", "name": "answer", "schema": schema}},
        store=True,
    )
    assert r.output_text.startswith('{"answer":')
    (_, body), *_ = sent(gw, start, "xai")
    assert body["temperature"] == 0.5 and body["top_p"] == 0.9 and body["max_output_tokens"] == 500
    assert body["reasoning"] == {"effort": "high"}
    assert body["text"]["format"]["type"] == "json_schema"
    assert body["input"][0]["content"][1]["type"] == "input_image"
    short = client.responses.create(model=XAI, input="[sim tokens=50] go", max_output_tokens=5)
    assert short.status == "incomplete"
    assert short.incomplete_details is not None and short.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "name": "f", "parameters": {}}]}, "tools"),
        ({"temperature": 0.2}, "temperature"),
        ({"max_output_tokens": 100}, "max_output_tokens"),
        ({"reasoning": {"effort": "low"}}, "reasoning"),
        ({"text": {"format": {"type": "json_object"}}}, "text.format"),
        ({"tool_choice": "required"}, "tool_choice"),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "https://x.test/a.png"}],
                    }
                ]
            },
            "input[0].content[0].image_url",
        ),
    ],
)
def test_grok_com_refuses_what_it_cannot_do(gw: Env, key: str, extra: dict[str, Any], param: str) -> None:
    body = {"model": WEB, "input": "hi", **extra}
    r = httpx.post(gw.base_url + "/v1/responses", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["param"] == param
    assert err["type"] == "invalid_request_error"
    assert "grok.com" in err["message"]


def test_grok_com_takes_images_as_data_urls(gw: Env, client: openai.OpenAI) -> None:
    start = gw.sim.recorded
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64).decode()
    r = client.responses.create(
        model=WEB,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "what is this?"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{png}", "detail": "auto"},
                ],
            }
        ],
    )
    assert r.output_text == "[turn 1] You said: what is this? [attached: 1]"  # grok.com saw the image
    uploads = [b for p, b in sent(gw, start, "web") if p == "/http/upload-file-v2/direct"]
    assert len(uploads) == 1 and uploads[0]["type"] == "image/png"  # uploaded with the session


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": XAI}, "input"),
        ({"model": XAI, "input": []}, "input"),
        ({"model": XAI, "input": [{"role": "user", "content": "x"}] * 3000}, "input"),
        ({"model": XAI, "input": "x", "metadata": {"a": DEEP}}, None),
        ({"model": XAI, "input": "x", "temperature": 5}, "temperature"),
        ({"model": XAI, "input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        (
            {"model": XAI, "input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input[0].content[0].image_url",
        ),
    ],
)
def test_bad_bodies_are_clear_400s(gw: Env, key: str, body: dict[str, Any], param: str | None) -> None:
    r = httpx.post(gw.base_url + "/v1/responses", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert r.json()["error"]["type"] == "invalid_request_error"


def test_a_stream_cut_upstream_ends_with_response_failed(gw: Env, key: str) -> None:
    _, events = stream_events(gw.base_url, key, model=XAI, input="[sim tokens=30 fault=cut after=5] go")
    for _, event in events:
        check_event(event)
    final = events[-1][1]
    assert final["type"] == "response.failed"
    assert final["response"]["error"]["code"] == "server_error"


def test_rpm_refusal_in_this_surfaces_shape(gw: Env) -> None:
    _, key = gw.create_key("rpm1", limits=Limits(rpm=1))
    client = gw.client(key)
    client.responses.create(model=XAI, input="one")
    r = httpx.post(
        gw.base_url + "/v1/responses",
        json={"model": XAI, "input": "two"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    err = r.json()["error"]
    assert err["type"] == "rate_limit_error" and err["code"] == "rate_limit_requests"
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=XAI, input="three", stream=True)


@BOTH
def test_usage_is_recorded(gw: Env, model: str) -> None:
    record, key = gw.create_key("usage")
    client = gw.client(key)
    plain = client.responses.create(model=model, input="count me")
    with client.responses.stream(model=model, input="count me too") as stream:
        streamed = stream.get_final_response()
    gw.app.call(gw.app.app.state.gateway.usage.flush())
    r = httpx.get(
        gw.base_url + "/admin/usage",
        params={"key_id": record.id, "since": "1d"},
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
    )
    (row,) = r.json()["data"]
    assert row["model"] == model
    assert row["requests"] == 2
    assert plain.usage is not None and streamed.usage is not None
    assert row["prompt_tokens"] == plain.usage.input_tokens + streamed.usage.input_tokens
    assert row["completion_tokens"] == plain.usage.output_tokens + streamed.usage.output_tokens
    assert row["estimated"] is (model == WEB)  # grok.com reports no token counts


def test_a_conversation_can_move_between_upstreams(gw: Env, client: openai.OpenAI) -> None:
    start = gw.sim.recorded
    on_web = client.responses.create(model=WEB, input="hello from the web")
    on_xai = client.responses.create(model=XAI, input="now on xai", previous_response_id=on_web.id)
    assert on_xai.output_text == "[turn 2] You said: now on xai"  # xAI was sent the conversation
    (_, body), *_ = sent(gw, start, "xai")
    assert "previous_response_id" not in body  # xAI has no state of a grok.com turn
    assert body["input"][0] == {"role": "user", "content": "hello from the web"}
    back = client.responses.create(model=WEB, input="and back", previous_response_id=on_xai.id)
    assert back.output_text.endswith("You said: and back")
    *_, (_, _, text) = web_turns(gw, start)
    assert "hello from the web" in text and "now on xai" in text


def test_parallel_function_calls(gw: Env, key: str, client: openai.OpenAI) -> None:
    tools: Any = [
        {
            "type": "function",
            "name": name,
            "parameters": {"type": "object", "properties": {}},
            "strict": False,
        }
        for name in ("get_weather", "get_time")
    ]
    r = client.responses.create(model=XAI, input="[sim tool=2] Paris?", tools=tools, parallel_tool_calls=True)
    calls = [item for item in r.output if item.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert len({c.call_id for c in calls}) == 2
    outputs: Any = [{"type": "function_call_output", "call_id": c.call_id, "output": c.name} for c in calls]
    follow = client.responses.create(model=XAI, previous_response_id=r.id, tools=tools, input=outputs)
    assert follow.output_text == "[turn 1] You said: Tool said: get_time"
    _, events = stream_events(gw.base_url, key, model=XAI, input="[sim tool=2] Rome?", tools=tools)
    for _, event in events:
        check_event(event)
    added = [
        e
        for _, e in events
        if e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call"
    ]
    assert [e["output_index"] for e in added] == [0, 1]
    done = [e["arguments"] for _, e in events if e["type"] == "response.function_call_arguments.done"]
    assert done == ["{}", "{}"]  # their schemas have no properties


def test_a_client_that_leaves_cancels_upstream_and_nothing_is_stored(gw: Env, key: str) -> None:
    cancelled = gw.sim.stats["cancelled"]
    body = {"model": XAI, "input": "[sim tokens=400 rate=40] long", "stream": True}
    with httpx.stream(
        "POST",
        gw.base_url + "/v1/responses",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as r:
        seen, response_id = 0, None
        for line in r.iter_lines():
            if line.startswith("data: ") and response_id is None:
                response_id = orjson.loads(line[6:])["response"]["id"]
            seen += line.startswith("event: response.output_text.delta")
            if seen >= 3:
                break  # leaving the block closes the connection mid-stream
    deadline = time.monotonic() + 20
    while gw.sim.stats["cancelled"] == cancelled and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.sim.stats["cancelled"] > cancelled  # the upstream call was cancelled
    got = httpx.get(f"{gw.base_url}/v1/responses/{response_id}", headers={"Authorization": f"Bearer {key}"})
    assert got.status_code == 404  # an answer cut short is not stored


# -- stored conversations: links, bounds, the per-key cap, what is read back -----------------------


def stored_sizes(gw: Env, key_id: str) -> list[int]:
    """The bytes each of the key's stored responses takes (every stored column), oldest first."""

    async def go() -> list[int]:
        gateway = gw.app.app.state.gateway
        await gateway.responses.drain()
        columns = (responses.c.response, responses.c.input, responses.c.history)
        query = sa.select(*columns).where(responses.c.key_id == key_id).order_by(responses.c.created_at)
        async with gateway.db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [sum(len((v or "").encode()) for v in row) for row in rows]

    result: list[int] = gw.app.call(go())
    return result


def test_a_30_turn_conversation_is_stored_in_linear_bytes_and_rebuilt_whole(gw: Env) -> None:
    record, key = gw.create_key("thirty-turns")
    client = gw.client(key)
    start = gw.sim.recorded
    said, answers, previous = [], [], None
    for turn in range(30):
        text = f"turn {turn}: " + "words " * 330  # ~2 kB each: a whole-history row would be ~120 kB
        r = client.responses.create(model=WEB, input=text, previous_response_id=previous)
        assert r.output_text == f"[turn {turn + 1}] You said: {text.strip()}"
        said.append(text)
        answers.append(r.output_text)
        previous = r.id
    sizes = stored_sizes(gw, record.id)
    assert len(sizes) == 30
    assert max(sizes) < 1.5 * sizes[0]  # each row holds its own turn only
    assert sum(sizes) < 2 * 30 * sizes[0]
    first, *follow_ups = web_turns(gw, start)
    assert first[0] is None and follow_ups[0][0] is not None  # one grok.com conversation, continued:
    assert {continued for continued, _, _ in follow_ups} == {follow_ups[0][0]}  # rebuilt right each turn
    mark = gw.sim.recorded
    moved = client.responses.create(model=XAI, input="sum it up", previous_response_id=previous)
    assert moved.output_text == "[turn 31] You said: sum it up"
    ((_, body),) = sent(gw, mark, "xai")
    sent_input = body["input"]
    assert [i["content"] for i in sent_input if i.get("role") == "user"] == [*said, "sum it up"]
    assert [i["content"] for i in sent_input if i.get("role") == "assistant"] == answers


def test_item_references_across_turns_are_resolved_at_once(gw: Env, key: str, client: openai.OpenAI) -> None:
    """The Vercel AI SDK's way: every earlier answer as an ``item_reference``, every turn."""
    history: list[Any] = []
    answers = []
    for text in ["one", "two", "three"]:
        history.append({"role": "user", "content": [{"type": "input_text", "text": text}]})
        mark = gw.sim.recorded
        r = client.responses.create(model=XAI, input=history)
        ((_, body),) = sent(gw, mark, "xai")
        assistant = [i["content"][0]["text"] for i in body["input"] if i.get("role") == "assistant"]
        assert assistant == answers  # every reference became the answer it names
        answers.append(r.output_text)
        history.append({"type": "item_reference", "id": r.output[-1].id})
    listed = list(client.responses.input_items.list(r.id, order="asc"))
    assert [item.role for item in listed] == ["user", "assistant", "user", "assistant", "user"]  # type: ignore[union-attr]
    assert listed[1].content[0].text == answers[0]  # type: ignore[union-attr]


def test_input_items_are_listed_as_openai_lists_them(gw: Env, key: str, client: openai.OpenAI) -> None:
    items: Any = [
        {"role": "developer", "content": "Be terse."},
        {"role": "user", "content": [{"type": "input_text", "text": "a"}]},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "user", "content": "d"},
    ]
    r = client.responses.create(model=XAI, input=items)
    newest_first = list(client.responses.input_items.list(r.id, limit=2))  # three pages, followed
    oldest_first = list(client.responses.input_items.list(r.id, order="asc"))
    assert [i.id for i in newest_first] == [i.id for i in oldest_first][::-1]
    assert len({i.id for i in oldest_first}) == 5
    texts = [i.content[0].text for i in oldest_first]  # type: ignore[union-attr]
    assert texts == ["Be terse.", "a", "b", "c", "d"]
    page = httpx.get(
        f"{gw.base_url}/v1/responses/{r.id}/input_items",
        params={"limit": 2, "after": oldest_first[1].id, "order": "asc"},
        headers={"Authorization": f"Bearer {key}"},
    ).json()
    assert [i["id"] for i in page["data"]] == [oldest_first[2].id, oldest_first[3].id]
    assert page["first_id"] == oldest_first[2].id and page["last_id"] == oldest_first[3].id
    assert page["object"] == "list" and page["has_more"] is True
    errors = list(validator("ResponseItemList").iter_errors(page))
    assert not errors, errors[0].message
    one = client.responses.create(model=WEB, input="just this")
    (only,) = client.responses.input_items.list(one.id)
    assert only.type == "message" and only.content[0].text == "just this"  # type: ignore[union-attr]
    other = gw.client(gw.create_key("not-the-owner")[1])
    with pytest.raises(openai.NotFoundError):
        other.responses.input_items.list(r.id)
    for bad in ({"limit": 0}, {"limit": 101}, {"order": "sideways"}, {"after": "msg_not_there"}):
        got = httpx.get(
            f"{gw.base_url}/v1/responses/{r.id}/input_items",
            params=bad,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert got.status_code == 400 and got.json()["error"]["param"] == next(iter(bad)), got.text


def test_reading_and_deleting_count_against_the_keys_rpm(gw: Env) -> None:
    _, key = gw.create_key("rpm-reads", limits=Limits(rpm=2))
    client = gw.client(key)
    r = client.responses.create(model=XAI, input="one")  # the first of two a minute
    auth = {"Authorization": f"Bearer {key}"}
    got = httpx.get(f"{gw.base_url}/v1/responses/{r.id}", headers=auth)
    assert got.status_code == 200
    assert got.headers["x-ratelimit-limit-requests"] == "2"
    assert got.headers["x-ratelimit-remaining-requests"] == "0"
    for method, path in (
        ("GET", f"/v1/responses/{r.id}"),
        ("DELETE", f"/v1/responses/{r.id}"),
        ("GET", f"/v1/responses/{r.id}/input_items"),
    ):
        refused = httpx.request(method, gw.base_url + path, headers=auth)
        assert refused.status_code == 429, (method, path, refused.text)
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["x-ratelimit-limit-requests"] == "2"
        assert refused.headers["x-request-id"]
        err = refused.json()["error"]
        assert err["type"] == "rate_limit_error" and err["code"] == "rate_limit_requests"
    with pytest.raises(openai.RateLimitError):
        client.responses.retrieve(r.id)
    with pytest.raises(openai.RateLimitError):
        client.responses.create(model=XAI, input="two")  # the reads counted for the POST too


@pytest.fixture(scope="module")
def small(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A gateway keeping 3 responses a key, with 64 kB request bodies."""
    settings = web_settings(
        tmp_path_factory.mktemp("responses-small"),
        env.sim,
        responses_max_per_key=3,
        max_body_bytes=65536,
    )
    with ServedApp(settings) as served:
        e = Env(app=served, sim=env.sim, settings=settings)
        yield e
        e.close_clients()


def test_the_cap_removes_what_is_nearest_its_expiry_and_keeps_continued_conversations(small: Env) -> None:
    client = small.client(small.create_key("capped")[1])
    c1 = client.responses.create(model=XAI, input="one")
    c2 = client.responses.create(model=XAI, input="two", previous_response_id=c1.id)
    c3 = client.responses.create(model=XAI, input="three", previous_response_id=c2.id)
    lone = client.responses.create(model=XAI, input="alone")  # the fourth: one must go
    client.responses.retrieve(lone.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(c3.id)  # the conversation's newest: nearest its expiry
    for kept in (c1, c2):
        assert client.responses.retrieve(kept.id).id == kept.id
    again = client.responses.create(model=WEB, input="and on", previous_response_id=c2.id)
    assert again.output_text == "[turn 1] You said: and on"  # grok.com got the whole conversation
    client.responses.retrieve(again.id)  # waits for its storing (and the cap) to be done
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(lone.id)  # the continued conversation outlives the lone one


def test_a_conversation_is_bounded_by_its_stored_bytes_images_included(small: Env) -> None:
    _, key = small.create_key("images")
    client = small.client(key)
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(26_000)).decode()  # ~35 kB

    def with_image(text: str) -> Any:
        return [
            {
                "role": "user",
                "content": [{"type": "input_text", "text": text}, {"type": "input_image", "image_url": png}],
            }
        ]

    first = client.responses.create(model=XAI, input=with_image("what is this?"))
    second = client.responses.create(model=XAI, input="and in words?", previous_response_id=first.id)
    assert second.status == "completed"  # 35 kB stored and a little: within 64 kB
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model=XAI, input=with_image("and this?"), previous_response_id=second.id)
    err = refused.value.body
    assert isinstance(err, dict)
    assert err["code"] == "conversation_too_large" and err["param"] == "previous_response_id"
    assert err["type"] == "invalid_request_error" and "65536" in err["message"]
