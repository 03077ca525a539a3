"""The Python client (grok_api.Grok / AsyncGrok) against a served gateway, on both upstreams.

The README's client examples run as written (sync and async) against xAI's API and grok.com
(both simulated); the rest checks history, reset, system prompts, parameters, reasoning,
errors and early stops through the same real HTTP.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from grok_api import AsyncGrok, Grok

from .helpers import Env, ServedApp, key_for, web_settings

README = Path(__file__).parent.parent / "README.md"


def readme_block(marker: str) -> str:
    text = README.read_text()
    start = text.index(f"<!-- {marker}:")
    match = re.search(r"```python\n(.*?)```", text[start:], re.DOTALL)
    assert match, f"the README lost its {marker} block"
    return match.group(1)


@pytest.fixture(scope="module")
def web(env: Env, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """A gateway with only grok.com (simulated) behind it: plain model ids go there."""
    settings = web_settings(tmp_path_factory.mktemp("client-web"), env.sim, xai_api_key=None)
    with ServedApp(settings) as served:
        yield Env(app=served, sim=env.sim, settings=settings)


@pytest.fixture(params=["xai", "web"])
def gateway(request: pytest.FixtureRequest, env: Env) -> Env:
    if request.param == "xai":
        return env
    web: Env = request.getfixturevalue("web")
    return web


def run_example(gateway: Env, marker: str, tmp_path: Path) -> list[str]:
    script = tmp_path / "example.py"
    code = readme_block(marker)
    if gateway.settings.xai_api_key is None:  # grok.com: the same example with one of its model ids
        code = code.replace('"grok-4.3"', '"web/grok-4"')
    script.write_text(code)
    key = gateway.create_key("readme-client")[1]
    environ = {**os.environ, "GROK_API_BASE_URL": gateway.base_url + "/v1", "GROK_API_KEY": key}
    result = subprocess.run(
        [sys.executable, str(script)], env=environ, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_readme_sync_example(gateway: Env, tmp_path: Path) -> None:
    start = gateway.sim.recorded
    lines = run_example(gateway, "client-example", tmp_path)
    assert lines[0] == "[turn 1] You said: Name a moon of Saturn."
    assert lines[1] == "[turn 2] You said: And one of Jupiter?"
    assert re.fullmatch(r"4 messages so far; \d+ tokens last turn", lines[2])
    if gateway.settings.xai_api_key is None:  # grok.com: the second turn continued the conversation
        sent = [(p, b) for u, p, b in gateway.sim.since(start) if u == "web"]
        sessions = [b["event"]["session"]["x_grok"] for p, b in sent if p == "ws:session.create"]
        items = [b["event"]["item"]["x_grok"] for p, b in sent if p == "ws:conversation.item.create"]
        assert len(items) == 2
        assert "conversation_id" not in sessions[0] and sessions[1]["conversation_id"]
        assert [c["text"]["text"] for c in items[1]["input_chunks"] if "text" in c] == ["And one of Jupiter?"]
    else:
        assert [path for _, path, _ in gateway.sim.since(start)] == ["/v1/chat/completions"] * 2


def test_readme_async_example(gateway: Env, tmp_path: Path) -> None:
    lines = run_example(gateway, "client-example-async", tmp_path)
    assert lines == ["[turn 1] You said: Hello", "[turn 2] You said: Tell me more"]


def grok(gateway: Env, **kw: Any) -> Grok:
    return Grok(base_url=gateway.base_url + "/v1", api_key=gateway.create_key("client")[1], **kw)


def test_history_system_prompt_params_and_reset(env: Env) -> None:
    with grok(env) as g:
        convo = g.conversation("grok-4.3", system="Be brief.", temperature=0.25)
        start = env.sim.recorded
        assert convo.say("one") == "[turn 1] You said: one"
        assert "".join(convo.stream("two")) == "[turn 2] You said: two"
        assert convo.history == [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "[turn 1] You said: one"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": "[turn 2] You said: two"},
        ]
        assert convo.usage is not None and convo.usage.total_tokens > 0
        bodies = [body for _, _, body in env.sim.since(start)]
        assert bodies[1]["messages"][0] == {"role": "system", "content": "Be brief."}
        assert len(bodies[1]["messages"]) == 4  # system, one, answer, two
        assert all(b["temperature"] == 0.25 for b in bodies)
        convo.history.clear()  # a copy: the conversation is not changed through it
        assert len(convo.history) == 4
        convo.reset()
        assert convo.history == []
        assert convo.say("three") == "[turn 1] You said: three"
        assert "grok-4.3" in g.models()


def test_reasoning_is_kept_apart_from_the_answer(env: Env) -> None:
    with grok(env) as g:
        convo = g.conversation("grok-3-mini")
        kinds = {d.kind for d in convo.deltas_of("why")}
        assert kinds == {"reasoning", "text"}
        assert convo.reasoning
        assert convo.history[-1]["content"] == "[turn 1] You said: why"
        assert convo.say("again") == "[turn 2] You said: again"
        assert convo.reasoning


def test_a_stream_stopped_early_keeps_what_arrived(env: Env) -> None:
    with grok(env) as g:
        convo = g.conversation("grok-4.3")
        pieces = convo.stream("long [sim tokens=400]")
        first = next(pieces)
        pieces.close()
        assert convo.history[-1] == {"role": "assistant", "content": first}
        assert convo.say("next") == "[turn 2] You said: next"


def test_errors_are_the_sdk_exceptions_and_leave_history_alone(env: Env) -> None:
    with Grok(base_url=env.base_url + "/v1", api_key="gk-wrong", max_retries=0) as bad:
        convo = bad.conversation("grok-4.3")
        with pytest.raises(openai.AuthenticationError):
            convo.say("hello")
        with pytest.raises(openai.AuthenticationError):
            list(convo.stream("hello"))
        assert convo.history == []
    with grok(env, max_retries=0) as g:
        with pytest.raises(openai.NotFoundError):
            g.conversation("no-such-model").say("hello")
        convo = g.conversation("grok-4.3")
        assert convo.say("first") == "[turn 1] You said: first"
        with pytest.raises(openai.APIError):
            list(convo.stream("cut [sim fault=cut after=2]"))
        assert len(convo.history) == 2  # the failed turn, and its part of an answer, are not kept


def test_a_missing_key_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GROK_API_KEY", raising=False)
    with pytest.raises(openai.OpenAIError, match="GROK_API_KEY"):
        Grok()


async def test_async_client(env: Env) -> None:
    key = key_for(env.settings)
    async with AsyncGrok(base_url=env.base_url + "/v1", api_key=key) as g:
        convo = g.conversation("grok-4.3", system="Be brief.")
        assert await convo.say("one") == "[turn 1] You said: one"
        pieces = [p async for p in convo.stream("two")]
        assert "".join(pieces) == "[turn 2] You said: two"
        assert len(convo.history) == 4
        assert "grok-4.3" in await g.models()
        convo.reset()
        assert await convo.say("three") == "[turn 1] You said: three"


def test_the_client_imports_nothing_of_the_server() -> None:
    # (aiohttp is left out: the openai SDK imports it itself when it is installed)
    code = (
        "import sys\n"
        "from grok_api import Grok, AsyncGrok\n"
        "server = ('fastapi', 'starlette', 'uvicorn', 'sqlalchemy', 'redis', 'asyncpg', 'alembic',\n"
        "          'pydantic_settings', 'grok_api.config', 'grok_api.app', 'grok_api.store')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in server or m in server))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


async def test_async_reasoning_early_stop_and_errors(env: Env) -> None:
    """The async shape keeps the same turns as the sync one: reasoning apart, a stream stopped
    early keeps what arrived, a failed turn (even mid-answer) leaves the history alone."""
    async with AsyncGrok(base_url=env.base_url + "/v1", api_key=key_for(env.settings), max_retries=0) as g:
        convo = g.conversation("grok-3-mini")
        assert {d.kind async for d in convo.deltas_of("why")} == {"reasoning", "text"}
        assert convo.reasoning and convo.history[-1]["content"] == "[turn 1] You said: why"
        convo = g.conversation("grok-4.3")
        pieces = convo.stream("long [sim tokens=400]")
        first = await anext(pieces)
        await pieces.aclose()
        assert convo.history == [
            {"role": "user", "content": "long [sim tokens=400]"},
            {"role": "assistant", "content": first},
        ]
        with pytest.raises(openai.APIError):
            _ = [p async for p in convo.stream("cut [sim fault=cut after=2]")]
        with pytest.raises(openai.NotFoundError):
            await g.conversation("no-such-model").say("hello")
        assert len(convo.history) == 2
        assert await convo.say("next") == "[turn 2] You said: next"
