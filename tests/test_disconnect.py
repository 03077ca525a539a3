"""Clients that go away: the upstream call is cancelled promptly, usage is charged for what was
delivered, and tasks and file descriptors go back to where they were."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import aiohttp
import httpx

from .helpers import Env, ServedApp, gateway_settings, key_for, post_chat

CLIENTS = 200


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def drop_mid_stream(url: str, key: str, n: int) -> list[int]:
    """``n`` clients each read a little of a long stream, then hang up. Returns chars read."""
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> int:
            body = {
                "model": "grok-4.20-non-reasoning",
                "stream": True,
                "messages": [{"role": "user", "content": f"client {i} [sim tokens=400 rate=40]"}],
            }
            got = 0
            async with session.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as resp:
                assert resp.status == 200
                async for line in resp.content:
                    if line.startswith(b"data: {") and b'"content":"' in line:
                        got += 1
                        if got >= 3:
                            break
            return got  # leaving the block closes the connection mid-stream

        return await asyncio.gather(*(one(i) for i in range(n)))


def test_two_hundred_clients_drop_mid_stream(env: Env, tmp_path: Path) -> None:
    settings = gateway_settings(
        tmp_path, env.sim, upstream_read_timeout=30.0, upstream_first_byte_timeout=30.0
    )
    with ServedApp(settings) as served:
        key = key_for(settings)
        # warm up: one complete request, so pools and lazy state exist before the baseline
        assert post_chat(served.base_url, key, "warm").status_code == 200
        gw = served.app.state.gateway
        tasks_before = served.call(_task_count())
        fds_before = open_fds()
        cancelled_before = env.sim.stats["cancelled"]

        got = asyncio.run(drop_mid_stream(served.base_url + "/v1/chat/completions", key, CLIENTS))
        assert all(n >= 3 for n in got)

        deadline = time.monotonic() + 15
        while env.sim.stats["cancelled"] - cancelled_before < CLIENTS and time.monotonic() < deadline:
            time.sleep(0.1)
        assert env.sim.stats["cancelled"] - cancelled_before == CLIENTS  # every upstream call was cut

        served.call(gw.usage.flush())
        (row,) = [r for r in served.call(gw.usage.store.report()) if r["requests"] >= CLIENTS]
        assert row["requests"] == CLIENTS + 1
        assert row["estimated_requests"] == CLIENTS  # charged for what was delivered...
        assert CLIENTS * 1 <= row["completion_tokens"] < CLIENTS * 100  # ...not for the 400 asked

        while served.call(_task_count()) > tasks_before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert served.call(_task_count()) <= tasks_before
        while open_fds() > fds_before + 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert open_fds() <= fds_before + 2


async def _task_count() -> int:
    return len(asyncio.all_tasks()) - 1  # not counting the one asking


def test_a_non_streamed_request_is_cancelled_when_its_client_leaves(env: Env) -> None:
    before = env.sim.stats["cancelled"]
    key = env.create_key("leaver")[1]
    with contextlib.suppress(httpx.TimeoutException):
        httpx.post(
            env.base_url + "/v1/chat/completions",
            headers={"Authorization": f"Bearer {key}"},
            json={
                "model": "grok-4.20-non-reasoning",
                "messages": [{"role": "user", "content": "slow [sim latency=1.5]"}],
            },
            timeout=0.3,
        )
    deadline = time.monotonic() + 1.0  # well before the upstream would have answered
    while env.sim.stats["cancelled"] == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert env.sim.stats["cancelled"] == before + 1
