"""Gateway throughput with per-key limits on (in-process and Redis) against off, in one run.

    python bench/limits.py [--seconds 10] [--connections 50] [--redis redis://127.0.0.1:6379/14]

Three loads of non-streamed requests against the same static upstream: a key with no limits
(the limiter is skipped), a key with every limit set high enough never to refuse, checked
in-process, and the same checked in Redis by a second gateway. Usage accounting is on in all
three (it cannot be turned off); its own cost per request is printed at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from run import HERE, PY, free_port, gateway_env, gateway_key, server, wrk

LIMITS = [
    "--rpm", "1000000000", "--tpm", "1000000000000", "--concurrency", "100000",
    "--daily-tokens", "1000000000000", "--monthly-tokens", "1000000000000", "--total-tokens", "1000000000000",
]  # fmt: skip


def recorder_cost() -> float:
    """Microseconds one ``UsageRecorder.record`` costs on the hot path."""
    from grok_api.upstreams.base import Usage
    from grok_api.usage import UsageRecorder

    rec = UsageRecorder(store=None)  # type: ignore[arg-type]
    u = Usage(12, 200)
    n = 200_000
    t = timeit.timeit(
        lambda: rec.record("key_x", "grok-4.3", u, prompt_estimate=12, delivered_chars=800, error=False),
        number=n,
    )
    return t / n * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds, averaged")
    p.add_argument("--redis", default=os.environ.get("GROK_API_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"))
    a = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench needs wrk (Debian: apt-get install wrk)")
    up_port, mem_port, redis_port = free_port(), free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    data_dir = tempfile.mkdtemp(prefix="grok-api-bench-")
    env = gateway_env(upstream, data_dir)
    body = {"model": "grok-4.3", "messages": [{"role": "user", "content": "Say hello."}]}
    results: dict[str, float] = {}
    try:
        with server([PY, str(HERE / "static_upstream.py"), "--port", str(up_port)], upstream + "/v1/models"):
            off_key = gateway_key(env)
            on_key = gateway_key(env, *LIMITS)
            serve = [PY, "-m", "grok_api", "serve", "--port"]
            with (
                server([*serve, str(mem_port)], f"http://127.0.0.1:{mem_port}/health", env=env),
                server(
                    [*serve, str(redis_port)],
                    f"http://127.0.0.1:{redis_port}/health",
                    env={**env, "GROK_API_REDIS_URL": a.redis},
                ),
            ):
                time.sleep(1)
                runs = {
                    "limits off": (mem_port, off_key),
                    "limits on, in process": (mem_port, on_key),
                    "limits on, Redis": (redis_port, on_key),
                }
                for name, (port, key) in runs.items():
                    r = wrk(
                        f"http://127.0.0.1:{port}/v1/chat/completions", body, key, a.seconds, a.connections
                    )
                    if r["non_2xx"]:
                        sys.exit(f"{name}: {r['non_2xx']:.0f} non-2xx responses; the figures would be wrong")
                    results[name] = r["rps"]
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    off = results["limits off"]
    print(
        f"\nnon-streamed requests/s, {a.connections} connections, mean of {a.rounds} interleaved {a.seconds}s runs"
        " (usage accounting on)"
    )
    for name, rps in results.items():
        print(f"  {name:24} {rps:9.0f}   {rps / off:5.0%} of off")
    print(f"\nusage accounting: {recorder_cost():.2f} µs per request on the hot path (UsageRecorder.record)")


if __name__ == "__main__":
    main()
