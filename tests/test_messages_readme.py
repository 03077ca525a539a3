"""The README's Messages and image examples (curl and SDK) run, as written, against a
served gateway with the simulator behind it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from .helpers import Env

README = Path(__file__).parent.parent / "README.md"


def block(marker: str, lang: str) -> str:
    text = README.read_text()
    at = text.index(f"<!-- {marker}")
    match = re.search(rf"```{lang}\n(.*?)```", text[at:], re.DOTALL)
    assert match, f"the README lost its {marker} block"
    return match.group(1)


def run(code: list[str], env: Env, key: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        code,
        env={**os.environ, "GROK_API_KEY": key},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def localize(text: str, env: Env) -> str:
    return text.replace("http://127.0.0.1:8000", env.base_url)


def test_messages_curl(env: Env, key: str, tmp_path: Path) -> None:
    result = run(["bash", "-c", localize(block("readme-messages-curl", "sh"), env)], env, key, tmp_path)
    assert result.returncode == 0, result.stderr
    message = json.loads(result.stdout)
    assert message["type"] == "message"
    assert message["content"] == [{"type": "text", "text": "[turn 1] You said: Hello"}]


def test_messages_python(env: Env, key: str, tmp_path: Path) -> None:
    script = tmp_path / "messages.py"
    script.write_text(localize(block("readme-messages-python", "python"), env))
    result = run([sys.executable, str(script)], env, key, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "[turn 1] You said: Name a moon of Jupiter."
    assert lines[1] == "[turn 1] You said: Count to three."
    assert int(lines[2]) > 0


def test_images_curl(env: Env, key: str, tmp_path: Path) -> None:
    result = run(["bash", "-c", localize(block("readme-images-curl", "sh"), env)], env, key, tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert len(data) == 1 and data[0]["url"].endswith(".png")


def test_images_python(env: Env, key: str, tmp_path: Path) -> None:
    script = tmp_path / "images.py"
    script.write_text(localize(block("readme-images-python", "python"), env))
    result = run([sys.executable, str(script)], env, key, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["lighthouse-0.png", "lighthouse-1.png"]
    for name in result.stdout.split():
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_image_edit_examples(env: Env, key: str, tmp_path: Path) -> None:
    """The edit examples take the generation example's files as their sources."""
    for name, marker in (("images.py", "readme-images-python"), ("edit.py", "readme-image-edit-python")):
        (tmp_path / name).write_text(localize(block(marker, "python"), env))
        result = run([sys.executable, name], env, key, tmp_path)
        assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["lighthouse-night.png"]
    assert (tmp_path / "lighthouse-night.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    start = env.sim.recorded
    result = run(["bash", "-c", localize(block("readme-image-edit-curl", "sh"), env)], env, key, tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert len(data) == 1 and data[0]["url"].endswith(".png")
    sent = [b for _, p, b in env.sim.since(start) if p == "/v1/images/edits"][-1]
    assert [image["url"][:22] for image in sent["images"]] == ["data:image/png;base64,"] * 2
