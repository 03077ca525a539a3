"""``/health`` latency while worst-case request bodies are handled (issue 10, item 7).

    python bench/stall.py [--bodies 20] [--senders 2]

Starts ``grok-api serve --demo`` on a free port, then polls ``/health`` one request at a time
while ``--senders`` clients post bodies of 3 million empty arrays (9 MB, refused before
parsing) and bodies at the value bound (80,000 commas and brackets, served). Prints the
``/health`` latency percentiles with and without that load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def body(values: int) -> bytes:
    return (
        b'{"model":"grok-4.3","messages":[{"role":"user","content":"hi"}],"x":['
        + b",".join([b"[]"] * values)
        + b"]}"
    )


def poll(url: str, stop: threading.Event, out: list[float]) -> None:
    with httpx.Client() as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get(url + "/health")
            out.append(time.perf_counter() - started)
            time.sleep(0.005)


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"n={len(ms)} p50={statistics.median(ms):.1f}ms p99={p99:.1f}ms max={ms[-1]:.1f}ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bodies", type=int, default=20)
    parser.add_argument("--senders", type=int, default=2)
    args = parser.parse_args()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROK_API_", "XAI_"))}
    env |= {
        "GROK_API_DATA_DIR": tempfile.mkdtemp(),
        "GROK_API_LOG_LEVEL": "WARNING",
    }
    cmd = [sys.executable, "-m", "grok_api", "serve", "--demo", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        key = None
        while key is None:
            line = proc.stdout.readline()
            if not line:
                raise SystemExit("the gateway did not start")
            match = re.search(r"gk-[A-Za-z0-9_-]{43}", line)
            key = match.group(0) if match else None
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                httpx.get(url + "/health")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        measure(url, key, args.bodies, args.senders)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def measure(url: str, key: str, bodies: int, senders: int) -> None:
    idle: list[float] = []
    stop = threading.Event()
    t = threading.Thread(target=poll, args=(url, stop, idle))
    t.start()
    time.sleep(2)
    stop.set()
    t.join()
    print("idle       ", percentiles(idle))
    loaded: list[float] = []
    stop = threading.Event()
    t = threading.Thread(target=poll, args=(url, stop, loaded))
    # other processes (no GIL shared with the poller), their bodies built before measuring
    with multiprocessing.Pool(senders, initializer=_prepare) as pool:
        pool.map(time.sleep, [0.5] * senders)
        t.start()
        answers = pool.starmap(send, [(url, key, bodies)] * senders)
    stop.set()
    t.join()
    statuses = [s for batch in answers for s in batch]
    print("under load ", percentiles(loaded))
    print("answers    ", {s: statuses.count(s) for s in sorted(set(statuses))})


_BODIES: dict[str, bytes] = {}


def _prepare() -> None:
    _BODIES.update(worst=body(3_000_000), bound=body(40_000))


def send(url: str, key: str, bodies: int) -> list[int]:
    worst, bound = _BODIES["worst"], _BODIES["bound"]
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    statuses = []
    with httpx.Client(timeout=120) as client:
        for i in range(bodies):
            content = worst if i % 2 else bound
            statuses.append(
                client.post(url + "/v1/chat/completions", content=content, headers=headers).status_code
            )
    return statuses


if __name__ == "__main__":
    main()
