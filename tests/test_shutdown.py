"""SIGTERM with streams in flight: they finish inside the grace period (or are cut cleanly when
it ends), usage is flushed, and the process exits 0."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from .helpers import UPSTREAM_KEY, Env, clean_environ, free_port, gateway_settings, key_for, stored_usage


def start(env: Env, tmp_path: Path, grace: float) -> tuple[subprocess.Popen[bytes], str, str]:
    port = free_port()
    environ = clean_environ(
        {
            "GROK_API_DATA_DIR": str(tmp_path),
            "GROK_API_XAI_BASE_URL": env.sim.base_url + "/v1",
            "XAI_API_KEY": UPSTREAM_KEY,
            "GROK_API_SHUTDOWN_GRACE": str(grace),
            "GROK_API_LOG_LEVEL": "WARNING",
        }
    )
    key = key_for(gateway_settings(tmp_path, env.sim))
    proc = subprocess.Popen(
        [sys.executable, "-m", "grok_api", "serve", "--port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(url + "/health")
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    return proc, url, key


def stream_in_background(
    url: str, key: str, prompt: str, results: list[str], started: threading.Event
) -> threading.Thread:
    def run() -> None:
        with httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "model": "grok-4.20-non-reasoning",
                "stream": True,
                "messages": [{"role": "user", "content": prompt}],
            },
            timeout=30,
        ) as r:
            body = ""
            for chunk in r.iter_text():
                body += chunk
                if '"content"' in body:
                    started.set()
            results.append(body)

    t = threading.Thread(target=run)
    t.start()
    return t


@pytest.mark.parametrize(("grace", "finished"), [(10.0, True), (0.5, False)])
def test_sigterm_with_streams_in_flight(env: Env, tmp_path: Path, grace: float, finished: bool) -> None:
    proc, url, key = start(env, tmp_path, grace)
    results: list[str] = []
    events = [threading.Event() for _ in range(4)]
    threads = [
        stream_in_background(url, key, f"stream {i} [sim tokens=30 rate=15]", results, ev)
        for i, ev in enumerate(events)
    ]
    for ev in events:
        assert ev.wait(10)
    proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert proc.wait(grace + 10) == 0
    elapsed = time.monotonic() - started
    for t in threads:
        t.join(10)
    assert len(results) == 4
    for body in results:
        assert body.endswith("data: [DONE]\n\n")
        if finished:
            assert '"finish_reason":"stop"' in body  # finished normally, inside the grace period
            assert '"error"' not in body
        else:
            assert "shutting down" in body  # cut cleanly, with an error event, when grace ran out
    assert elapsed < grace + 5
    stored = stored_usage(gateway_settings(tmp_path, env.sim))
    assert stored.requests == 4  # usage was flushed on the way out
    assert stored.estimated_requests == (0 if finished else 4)
