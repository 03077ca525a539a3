"""The README's Responses API examples run as written against a served gateway: the curl command,
the Python example, and the Vercel AI SDK recipe (with the AI SDK from npm, when node is here)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import Env

README = Path(__file__).parent.parent / "README.md"
SECTION = README.read_text().split("## The Responses API", 1)[1].split("\n## ", 1)[0]
AI_SDK = ("ai@7.0.173", "@ai-sdk/openai@4.0.118")  # the versions the recipe was checked with


def block(language: str, after: str = "") -> str:
    start = SECTION.index(after) if after else 0
    match = re.search(rf"```{language}\n(.*?)```", SECTION[start:], re.DOTALL)
    assert match, f"the README's Responses API section lost its {language} example"
    return match.group(1)


def run(args: list[str], env: Env, key: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        env={**os.environ, "GROK_API_KEY": key},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def test_the_curl_example(env: Env, key: str) -> None:
    command = block("sh").replace("http://127.0.0.1:8000", env.base_url)
    result = run(["bash", "-c", command], env, key)
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["object"] == "response" and body["status"] == "completed"
    assert body["output"][-1]["content"][0]["text"] == "[turn 1] You said: Name a moon of Jupiter."
    assert body["instructions"] == "Be brief."


def test_the_python_example(env: Env, key: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(
        block("python", "readme-responses-example").replace("http://127.0.0.1:8000", env.base_url)
    )
    result = run([sys.executable, str(script)], env, key)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[turn 1] You said: Name a moon of Jupiter."
    assert lines[1] == "[turn 2] You said: And one of Mars?"  # the stored conversation went on
    assert lines[2] == "[turn 1] You said: Count to five."
    assert re.fullmatch(r"\[\d+ tokens\]", lines[3])
    assert lines[4] == "completed"
    assert lines[5] == "['And one of Mars?']"  # the second turn's own input


@pytest.fixture(scope="module")
def ai_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the Vercel AI SDK installed from npm (skipped without node and npm)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to run the Vercel AI SDK recipe")
    folder = tmp_path_factory.mktemp("ai-sdk")
    (folder / "package.json").write_text('{"name": "recipe", "private": true, "type": "module"}')
    result = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", *AI_SDK],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"could not install the AI SDK from npm: {result.stderr[-300:]}")
    return folder


def test_the_vercel_ai_sdk_recipe(env: Env, key: str, ai_sdk: Path) -> None:
    script = ai_sdk / "recipe.mjs"
    script.write_text(block("js").replace("http://127.0.0.1:8000", env.base_url))
    start = env.sim.recorded
    result = run(["node", str(script)], env, key, cwd=ai_sdk)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[turn 1] You said: Name a moon of Saturn.",
        "[turn 1] You said: Count to five.",
    ]
    paths = {path for _, path, _ in env.sim.since(start)}
    assert paths == {"/v1/responses"}  # the AI SDK's default provider spoke the Responses API
