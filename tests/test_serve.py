"""``grok-api serve --demo`` and ``grok-api simulate`` as a user runs them: real processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai

from .helpers import clean_environ, free_port


@contextmanager
def process(
    args: list[str], env: dict[str, str], ready: str
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 30
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise AssertionError("process exited:\n" + "".join(lines))
            lines.append(line)
            if ready in line:
                break
        yield proc, lines
    finally:
        proc.terminate()
        proc.wait(15)
        if proc.stdout is not None:
            proc.stdout.close()


def test_serve_demo_works_with_no_credentials(tmp_path: Path) -> None:
    port = free_port()
    env = clean_environ({"GROK_API_DATA_DIR": str(tmp_path), "GROK_API_LOG_FORMAT": "text"})
    args = [sys.executable, "-m", "grok_api", "serve", "--demo", "--port", str(port)]
    with process(args, env, ready="Application startup complete") as (proc, lines):
        out = "".join(lines)
        assert "DEMO MODE" in out
        match = re.search(r"gk-[A-Za-z0-9_-]{43}", out)
        assert match, out
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=match.group(0), max_retries=0)
        r = client.chat.completions.create(model="grok-4.3", messages=[{"role": "user", "content": "Hello"}])
        assert r.choices[0].message.content == "[turn 1] You said: Hello"
        proc.send_signal(__import__("signal").SIGINT)
        assert proc.wait(15) == 0


def test_simulate_serves_the_xai_wire_format() -> None:
    port = free_port()
    args = [sys.executable, "-m", "grok_api", "simulate", "--port", str(port)]
    with process(args, dict(os.environ), ready="simulator listening"):
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()
        assert "grok-4.3" in [m["id"] for m in models["data"]]
        bad = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "grok-4.3", "messages": [{"role": "user", "content": "x [sim fault=500]"}]},
        )
        assert bad.status_code == 500
        assert set(bad.json()) == {"code", "error"}  # xAI's own error shape, not OpenAI's
