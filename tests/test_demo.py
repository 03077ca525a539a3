"""Demo keys stay in the demo (issue 10, item 2), ``doctor`` recognises a running demo (item 16),
and several workers on a fresh data dir start (item 15): real ``grok-api`` processes."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from grok_api.config import Settings
from grok_api.store import Database, KeyStore

from .helpers import Env, post_chat, run_async
from .test_serve import free_port, process


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROK_API_", "XAI_"))}
    return env | {"GROK_API_DATA_DIR": str(tmp_path), "GROK_API_LOG_FORMAT": "text", **extra}


def keys_in(settings: Settings) -> list[str]:
    async def go() -> list[str]:
        db = await Database.open(settings.resolved_database_url())
        try:
            return [k.id for k in await KeyStore(db).list() if k.status() == "active"]
        finally:
            await db.close()

    result: list[str] = run_async(go())
    return result


def key_works(settings: Settings, key: str) -> bool:
    async def go() -> bool:
        db = await Database.open(settings.resolved_database_url())
        try:
            return await KeyStore(db).by_key(key) is not None
        finally:
            await db.close()

    result: bool = run_async(go())
    return result


def test_a_demo_key_never_reaches_the_real_store(tmp_path: Path) -> None:
    port = free_port()
    args = [sys.executable, "-m", "grok_api", "serve", "--demo", "--port", str(port)]
    real = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    demo = Settings(_env_file=None, data_dir=tmp_path, demo=True)  # type: ignore[call-arg]
    with process(args, clean_env(tmp_path), ready="Application startup complete") as (proc, lines):
        match = re.search(r"gk-[A-Za-z0-9_-]{43}", "".join(lines))
        assert match, "".join(lines)
        key = match.group(0)
        assert key_works(demo, key)
        assert not key_works(real, key)  # a real gateway on this data dir does not know it
        code, out = doctor(tmp_path)
        assert code == 0, out  # doctor sees the running demo: no "upstream error"
        assert "demo" in out
        proc.send_signal(__import__("signal").SIGINT)
        assert proc.wait(15) == 0
    assert keys_in(demo) == []  # the demo's key ended with it
    code, _ = doctor(tmp_path)
    assert code == 1  # no demo running and no credentials: an error again


def test_a_demo_that_fails_to_start_leaves_no_key(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "grok_api", "serve", "--demo", "--port", str(port)],
            env=clean_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert out.returncode != 0
    demo = Settings(_env_file=None, data_dir=tmp_path, demo=True)  # type: ignore[call-arg]
    assert keys_in(demo) == []


def doctor(tmp_path: Path) -> tuple[int, str]:
    out = subprocess.run(
        [sys.executable, "-m", "grok_api", "doctor"],
        env=clean_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return out.returncode, out.stdout + out.stderr


def test_workers_on_a_fresh_data_dir_start(tmp_path: Path) -> None:
    port = free_port()
    args = [sys.executable, "-m", "grok_api", "serve", "--workers", "4", "--port", str(port)]
    env = clean_env(tmp_path, XAI_API_KEY="x")
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 90
        while sum("Application startup complete" in line for line in lines) < 4:
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "".join(lines)
            lines.append(line)
        with httpx.Client() as client:  # served by the workers, kept alive
            for _ in range(8):
                assert client.get(f"http://127.0.0.1:{port}/health").status_code == 200
        assert "already exists" not in "".join(lines)
        proc.terminate()
        rest = proc.communicate(timeout=30)[0]
        # the gateway's own access log is off by default; uvicorn's must stay off in the workers too
        assert "uvicorn.access" not in rest and "GET /health" not in rest, rest[-2000:]
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def test_the_readme_says_what_the_gateway_does(env: Env) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    # the examples read GROK_API_KEY: the README says to export it before the first one uses it
    assert readme.index("export GROK_API_KEY=") < readme.index("$GROK_API_KEY")
    # a revoked key gets the code the README's error table names
    record, key = env.create_key("revoked")
    env.revoke(record.id)
    time.sleep(env.settings.key_cache_ttl + 0.1)
    r = post_chat(env.base_url, key)
    assert r.status_code == 401
    code = r.json()["error"]["code"]
    assert code == "key_revoked"
    errors = readme[readme.index("## Errors") :]
    assert f"`{code}`" in errors.split("\n| 403")[0]
