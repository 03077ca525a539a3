"""Soak: many concurrent slow streams through one gateway worker; memory and descriptors.

    python bench/soak.py [--concurrency 1000] [--seconds 60] [--tokens 20] [--rate 10]

The simulator (its own process) streams ``tokens`` tokens at ``rate`` a second; this process
keeps ``concurrency`` streams open through the gateway (one worker, its own process) for
``seconds``, each new one starting as another ends. Printed: streams completed, errors, the
gateway's peak RSS, RSS growth per 1,000 streams, and its open file descriptors before and
after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).parent))

from run import PY, free_port, gateway_env, gateway_key, server


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def load(
    url: str, key: str, concurrency: int, seconds: float, tokens: int, pid: int
) -> dict[str, float]:
    stats = {"done": 0.0, "errors": 0.0, "peak_rss": 0.0, "warm_rss": 0.0, "warm_done": 0.0, "late_rss": 0.0}
    deadline = time.monotonic() + seconds
    body = {
        "model": "grok-4.3",
        "stream": True,
        "messages": [{"role": "user", "content": f"soak [sim tokens={tokens}]"}],
    }
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            while time.monotonic() < deadline:
                try:
                    async with session.post(url, json=body, headers=headers) as resp:
                        data = await resp.read()
                    ok = resp.status == 200 and data.endswith(b"data: [DONE]\n\n") and b'"error"' not in data
                except (TimeoutError, aiohttp.ClientError):
                    ok = False
                stats["done" if ok else "errors"] += 1

        async def sample() -> None:
            warm_at = time.monotonic() + min(10.0, seconds / 4)
            while time.monotonic() < deadline + 5:
                now_rss = rss_mb(pid)
                stats["peak_rss"] = max(stats["peak_rss"], now_rss)
                if not stats["warm_rss"] and time.monotonic() >= warm_at:
                    stats["warm_rss"], stats["warm_done"] = now_rss, stats["done"]
                if time.monotonic() < deadline:
                    stats["late_rss"] = now_rss
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        sampler.cancel()
    return stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--tokens", type=int, default=20)
    p.add_argument("--rate", type=float, default=10)
    a = p.parse_args()
    sim_port, gw_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    data_dir = tempfile.mkdtemp(prefix="grok-api-soak-")
    env = gateway_env(sim_url, data_dir) | {"GROK_API_UPSTREAM_MAX_CONNECTIONS": str(a.concurrency * 2)}
    sim_args = [PY, "-m", "grok_api", "simulate", "--port", str(sim_port), "--rate", str(a.rate)]
    try:
        with server(sim_args, sim_url + "/v1/models"):
            key = gateway_key(env)
            url = f"http://127.0.0.1:{gw_port}"
            with server(
                [PY, "-m", "grok_api", "serve", "--port", str(gw_port)], url + "/health", env=env
            ) as gw:
                asyncio.run(load(url + "/v1/chat/completions", key, 10, 3, a.tokens, gw.pid))  # warm up
                time.sleep(1)
                base_rss, base_fds = rss_mb(gw.pid), fds(gw.pid)
                started = time.monotonic()
                stats = asyncio.run(
                    load(url + "/v1/chat/completions", key, a.concurrency, a.seconds, a.tokens, gw.pid)
                )
                elapsed = time.monotonic() - started
                time.sleep(5)  # let connections close and the usage flush
                end_rss, end_fds = rss_mb(gw.pid), fds(gw.pid)
                settled = time.monotonic()
                while fds(gw.pid) > base_fds + 5 and time.monotonic() - settled < 60:
                    time.sleep(1)  # idle upstream connections leave the pool after its keep-alive
                time.sleep(6)  # one more turn of the idle memory trim
                idle_after = time.monotonic() - settled + 5
                idle_rss, idle_fds = rss_mb(gw.pid), fds(gw.pid)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    warm = min(10.0, a.seconds / 4)
    steady = (stats["late_rss"] - stats["warm_rss"]) / max((stats["done"] - stats["warm_done"]) / 1000, 1e-9)
    print(
        f"\n{a.concurrency} concurrent streams of {a.tokens} tokens at {a.rate:g} tokens/s, {a.seconds:g}s, one worker"
    )
    print(
        f"  streams completed      {stats['done']:.0f} ({stats['done'] / elapsed:.0f}/s), errors {stats['errors']:.0f}"
    )
    print(
        f"  gateway RSS            idle {base_rss:.1f} MB, peak {stats['peak_rss']:.1f} MB, "
        f"5 s after {end_rss:.1f} MB, {idle_after:.0f} s after {idle_rss:.1f} MB"
    )
    print(f"  RSS growth under load  {steady:.3f} MB per 1,000 streams (after the first {warm:g} s)")
    print(
        f"  open file descriptors  before {base_fds}, 5 s after {end_fds}, {idle_after:.0f} s after {idle_fds}"
    )


if __name__ == "__main__":
    main()
