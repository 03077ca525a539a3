"""What a feature costs a request, in instructions (valgrind's callgrind): steady where
requests/s are not.

    python bench/cost.py [--requests 300] [--variant 'access log on' ...]

On a machine shared with other work (a VM whose neighbours come and go) the same gateway's
throughput moves by ±30 % from one minute to the next, so a 5 % cost cannot be seen in
requests/s. The instructions a gateway process executes for a request do not depend on what
else runs: the same build serving the same requests counts within about 1 %. So each variant of
``bench/observability.py`` runs under callgrind (all started at once; start-up under valgrind
takes a minute or two; each is measured alone once all are up), gets a warm-up, has its counters zeroed, serves ``--requests`` requests
over one keep-alive connection (non-streamed, then 200-chunk streams), and has its counters
dumped: instructions per request, and the baseline's as a share of each variant's (the
throughput a CPU-bound gateway would keep). Needs valgrind (Debian: apt-get install valgrind).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from observability import VARIANTS
from run import HERE, PY, free_port, gateway_env, gateway_key, server, wait_http

PLAIN = {"model": "grok-4.3", "messages": [{"role": "user", "content": "Say hello."}]}
LOADS = {"non-streamed": PLAIN, "200-chunk streams": {**PLAIN, "stream": True}}


def serve(client: httpx.Client, url: str, body: dict[str, object], n: int) -> None:
    for _ in range(n):
        if body.get("stream"):
            with client.stream("POST", url, json=body) as r:
                r.raise_for_status()
                for _ in r.iter_bytes():
                    pass
        else:
            client.post(url, json=body).raise_for_status()


def counted(pid: int, out: Path, run: int) -> int:
    """Dumps the process' counters and returns the instructions since they were last zeroed."""
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    dump = Path(f"{out}.{run}")
    deadline = time.monotonic() + 60
    while not (dump.exists() and "summary:" in dump.read_text(errors="replace")):
        if time.monotonic() > deadline:
            raise RuntimeError(f"callgrind wrote no dump {dump}")
        time.sleep(0.2)
    return callgrind_total(dump)


def callgrind_total(dump: Path) -> int:
    """The instructions a callgrind dump counted (its ``summary:`` line)."""
    found = re.search(r"^summary:\s+(\d+)", dump.read_text(errors="replace"), re.M)
    assert found is not None
    return int(found.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument(
        "--variant",
        action="append",
        help="a variant of bench/observability.py besides the baseline (repeatable; default: "
        "access log on, request log stored)",
    )
    p.add_argument("--keep", help="a folder to keep callgrind's dumps in (for callgrind_annotate)")
    a = p.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        sys.exit("bench/cost.py needs valgrind (Debian: apt-get install valgrind)")
    names = ["baseline", *(a.variant or ["access log on", "request log stored"])]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variants {unknown}: choose among {list(VARIANTS)}")
    up_port = free_port()
    upstream = f"http://127.0.0.1:{up_port}"
    work = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="grok-api-bench-cost-"))
    work.mkdir(parents=True, exist_ok=True)
    per_request: dict[str, dict[str, float]] = {load: {} for load in LOADS}
    try:
        up_args = [PY, str(HERE / "static_upstream.py"), "--port", str(up_port), "--chunks", "200"]
        with server(up_args, upstream + "/v1/models"), ExitStack() as stack:
            started = []
            for i, name in enumerate(names):
                extra, cmd = VARIANTS[name]
                env = gateway_env(upstream, str(work / f"data{i}")) | {"GROK_API_LOG_LEVEL": "INFO", **extra}
                env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
                key, port, out = gateway_key(env), free_port(), work / f"cg{i}.out"
                log = stack.enter_context((work / f"log{i}.txt").open("wb"))
                proc = subprocess.Popen(
                    [
                        "valgrind",
                        "--tool=callgrind",
                        f"--callgrind-out-file={out}",
                        *cmd,
                        "serve",
                        "--port",
                        str(port),
                    ],
                    env=env,
                    stdout=log,
                    stderr=log,
                    cwd=work,
                )
                stack.callback(proc.wait, 120)
                stack.callback(proc.terminate)
                started.append((name, proc.pid, port, key, out))
            for _, _, port, _, _ in started:  # all up first: measured alone, each runs as fast as it can
                wait_http(f"http://127.0.0.1:{port}/health", timeout=600)
            for name, pid, port, key, out in started:
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                headers = {"Authorization": f"Bearer {key}"}
                with httpx.Client(headers=headers, timeout=120) as client:
                    for run, (load, body) in enumerate(LOADS.items(), 1):
                        serve(client, url, body, a.warmup)
                        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
                        serve(client, url, body, a.requests)
                        per_request[load][name] = counted(pid, out, run) / a.requests
                print(f"  measured: {name}", file=sys.stderr)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{a.requests} requests a load over one keep-alive connection, after {a.warmup} to warm up")
    for load, by_variant in per_request.items():
        base = by_variant["baseline"]
        print(f"\n{load}: gateway instructions a request (callgrind); the baseline's as a share of each")
        for name, count in by_variant.items():
            print(f"  {name:28} {count / 1e6:9.3f} M   {base / count:8.1%}")
    print(f"\n(cpu: {os.cpu_count()} cores; counts do not depend on the machine's other load)")


if __name__ == "__main__":
    main()
