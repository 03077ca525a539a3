"""What observability costs: access log on vs off, tracing off vs not installed, the stored
request log, in one run.

    python bench/observability.py [--seconds 10] [--connections 50] [--rounds 3]

Five gateways serve the same static upstream, each with its own store and key, their logs
written to files (as an operator's would be):

- ``baseline``: access log off, tracing off (``GROK_API_TRACING=off``)
- ``access log on``: ``GROK_API_ACCESS_LOG=true`` (JSON lines)
- ``tracing not installed``: ``GROK_API_TRACING=on`` with the OpenTelemetry SDK made
  unimportable (the gateway warns once and runs untraced)
- ``tracing auto, no endpoint``: the default (``auto`` and no ``OTEL_EXPORTER_OTLP_ENDPOINT``)
- ``request log stored``: ``GROK_API_REQUEST_LOG_RETENTION=1d`` on SQLite (every request's
  record written in batches to the store), tracing off

Non-streamed requests (where a per-request cost shows most) and 200-chunk streams; the rounds
interleave the gateways so that a noisy machine hits all of them alike; medians are reported
as a share of the baseline's throughput. Each gateway's CPU time per request is reported too
(and its inverse as a share of the baseline's): on a machine that other work shares, it is the
steadier of the two. The targets: access log on, and the request log stored, ≥ 95 % of the
baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from run import HERE, PY, cpu_seconds, free_port, gateway_env, gateway_key, server, wait_http, wrk

NO_SDK = (
    "import sys; sys.modules['opentelemetry.sdk.trace'] = None\n"
    "from grok_api.cli import main; sys.argv = ['grok-api', *sys.argv[1:]]; main()"
)
VARIANTS: dict[str, tuple[dict[str, str], list[str]]] = {
    "baseline": ({"GROK_API_TRACING": "off"}, [PY, "-m", "grok_api"]),
    "access log on": ({"GROK_API_TRACING": "off", "GROK_API_ACCESS_LOG": "true"}, [PY, "-m", "grok_api"]),
    "tracing not installed": ({"GROK_API_TRACING": "on"}, [PY, "-c", NO_SDK]),
    "tracing auto, no endpoint": ({}, [PY, "-m", "grok_api"]),
    "request log stored": (
        {"GROK_API_TRACING": "off", "GROK_API_REQUEST_LOG_RETENTION": "1d"},
        [PY, "-m", "grok_api"],
    ),
}


@contextmanager
def gateway(cmd: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[int]:
    with log.open("wb") as out:
        proc = subprocess.Popen([*cmd, "serve", "--port", str(port)], env=env, stdout=out, stderr=out)
        try:
            wait_http(f"http://127.0.0.1:{port}/health")
            yield proc.pid
        finally:
            proc.terminate()
            proc.wait(20)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--chunks", type=int, default=200)
    p.add_argument("--load", choices=["both", "non-streamed", "streams"], default="both")
    a = p.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench needs wrk (Debian: apt-get install wrk)")
    plain = {"model": "grok-4.3", "messages": [{"role": "user", "content": "Say hello."}]}
    loads = {"non-streamed": plain, f"{a.chunks}-chunk streams": {**plain, "stream": True}}
    if a.load != "both":
        loads = {name: body for name, body in loads.items() if (a.load == "streams") == ("stream" in body)}
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    work = Path(tempfile.mkdtemp(prefix="grok-api-bench-obs-"))
    results: dict[str, dict[str, list[float]]] = {load: {v: [] for v in VARIANTS} for load in loads}
    cpu: dict[str, dict[str, list[float]]] = {load: {v: [] for v in VARIANTS} for load in loads}
    access_lines = stored = 0
    try:
        up_args = [PY, str(HERE / "static_upstream.py"), "--port", str(up_port), "--chunks", str(a.chunks)]
        with server(up_args, upstream + "/v1/models"), ExitStack() as stack:
            targets: dict[str, tuple[str, str, int]] = {}
            for i, (name, (extra, cmd)) in enumerate(VARIANTS.items()):
                env = gateway_env(upstream, str(work / f"data{i}")) | {"GROK_API_LOG_LEVEL": "INFO", **extra}
                env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
                key = gateway_key(env)
                port = free_port()
                pid = stack.enter_context(gateway(cmd, port, env, work / f"log{i}.txt"))
                base = f"http://127.0.0.1:{port}/v1/chat/completions"
                httpx.post(base, json=plain, headers={"Authorization": f"Bearer {key}"}).raise_for_status()
                targets[name] = (base, key, pid)
            for round_ in range(a.rounds):
                for load, body in loads.items():
                    order = list(targets.items())  # every other round backwards: a drift hits all alike
                    for name, (url, key, pid) in order if round_ % 2 == 0 else order[::-1]:
                        before = cpu_seconds(pid)
                        run = wrk(url, body, key, a.seconds, a.connections)
                        results[load][name].append(run["rps"])
                        cpu[load][name].append((cpu_seconds(pid) - before) / max(run["requests"], 1) * 1e6)
        access_lines = sum(1 for line in (work / "log1.txt").open() if '"grok_api.access"' in line)
        warned = "not installed" in (work / "log2.txt").read_text()
        with closing(sqlite3.connect(work / "data4" / "grok-api.db")) as db:
            (stored,) = db.execute("SELECT COUNT(*) FROM request_log").fetchone()
        dropped = "dropping the oldest" in (work / "log4.txt").read_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"\n{a.connections} connections, {a.seconds}s a run, {a.rounds} interleaved rounds, {os.cpu_count()} cores"
    )
    for load, by_variant in results.items():
        base = statistics.median(by_variant["baseline"])
        base_cpu = statistics.median(cpu[load]["baseline"])
        print(
            f"\n{load}: requests/s (median of {a.rounds}); the median of each round's ratio to the"
            " baseline's run in that round; gateway CPU µs a request (median), as throughput"
        )
        for name, runs in by_variant.items():
            median = statistics.median(runs)
            paired = statistics.median(r / b for r, b in zip(runs, by_variant["baseline"], strict=True))
            per = statistics.median(cpu[load][name])
            print(
                f"  {name:28} {median:10.1f} {median / base:8.1%}  paired {paired:7.1%}"
                f"   cpu {per:7.1f} µs {base_cpu / per:8.1%}   runs: {json.dumps([round(r) for r in runs])}"
            )
    print(f"\naccess lines written: {access_lines}; 'not installed' warning seen: {warned}")
    print(f"request records stored: {stored}; any dropped: {dropped}")


if __name__ == "__main__":
    main()
