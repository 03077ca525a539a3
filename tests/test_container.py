"""The container image and compose.yaml, for real: only with GROK_API_CONTAINER_TEST=1
(``make container-test``, which first runs tests/container/prepare.sh: Docker's daemon and a
local base image, since no public image can be pulled here).

The image is built from a wheelhouse made on this host; compose.yaml runs with an override
that swaps the public PostgreSQL/Redis/nginx images for Debian's packages and puts every
service on host networking, each on its own loopback port. Then: a key made in one replica
works through nginx and on the other replica, and its limit holds across both.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from packaging.markers import Marker

from .helpers import free_socket
from .locks import locked, norm

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("GROK_API_CONTAINER_TEST") != "1",
        reason="set GROK_API_CONTAINER_TEST=1 (make container-test)",
    ),
    pytest.mark.timeout(1200),
]

ROOT = Path(__file__).parent.parent
BASE = os.environ.get("GROK_API_TEST_BASE_IMAGE", "local/debian-python:bookworm")
IMAGE = "local/grok-api:container-test"
SERVICES = "local/grok-api-services:container-test"
UPSTREAM_KEY = "xai-container-test-key-0123456789"


def sh(*args: str, timeout: float = 600, **kw: object) -> str:
    out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload]
    assert out.returncode == 0, f"{' '.join(args)}\n{out.stdout}\n{out.stderr}"
    return str(out.stdout)


def build_wheelhouse(python_version: str, tmp: Path) -> None:
    """The project's wheel and the wheels requirements-server.lock pins, for the image's Python."""
    house = ROOT / "wheelhouse"
    shutil.rmtree(house, ignore_errors=True)
    pip = [sys.executable, "-m", "pip"]
    sh(*pip, "wheel", "-q", "--no-deps", "-w", str(house), str(ROOT))
    # pip judges markers by the Python it runs on, not the image's: every pin, markers dropped
    # (async-timeout is for Pythons before 3.11.3, such as bookworm's)
    lock = tmp / "wheelhouse.lock"
    lock.write_text(re.sub(r" ; [^\\\n]*", " ", (ROOT / "requirements-server.lock").read_text()))
    platforms = [
        "manylinux_2_36_x86_64",
        "manylinux_2_28_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux2014_x86_64",
    ]
    target = ["--only-binary=:all:", "--python-version", python_version, "--implementation", "cp"]
    target += [arg for p in platforms for arg in ("--platform", p)]
    sh(*pip, "download", "-q", "-d", str(house), "--no-deps", *target, "-r", str(lock))


@dataclass
class Stack:
    project: str
    files: list[str]
    ports: dict[str, int]

    def compose(self, *args: str, timeout: float = 600) -> str:
        return sh("docker-compose", "-p", self.project, *self.files, *args, timeout=timeout)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"


def free_ports(*names: str) -> dict[str, int]:
    socks = [free_socket() for _ in names]
    ports = {n: s.getsockname()[1] for n, s in zip(names, socks, strict=True)}
    for s in socks:
        s.close()
    return ports


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def write_project(tmp: Path, ports: dict[str, int], password: str) -> list[str]:
    """compose.yaml as shipped with the test's changes merged in, and the .env a user writes.

    (A second -f file would do, but docker-compose 1.29 cannot drop the proxy's published
    port, which host networking refuses.)
    """
    (tmp / ".env").write_text(
        f"POSTGRES_PASSWORD={password}\nXAI_API_KEY={UPSTREAM_KEY}\nGROK_API_LOG_FORMAT=json\n"
    )
    (tmp / "deploy").mkdir()
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    nginx = nginx.replace("gateway-1:8000", f"127.0.0.1:{ports['gateway-1']}")
    nginx = nginx.replace("gateway-2:8000", f"127.0.0.1:{ports['gateway-2']}")
    (tmp / "deploy" / "nginx.conf").write_text(
        nginx.replace("listen 8080;", f"listen 127.0.0.1:{ports['proxy']};")
    )
    pg, rd = ports["postgres"], ports["redis"]
    gateway = {
        "image": IMAGE,
        "network_mode": "host",
        "environment": {
            "GROK_API_DATABASE_URL": f"postgresql://grok:{password}@127.0.0.1:{pg}/grok_api",
            "GROK_API_REDIS_URL": f"redis://127.0.0.1:{rd}/0",
            "GROK_API_HOST": "127.0.0.1",
            "GROK_API_XAI_BASE_URL": f"http://127.0.0.1:{ports['simulator']}/v1",
            "GROK_API_TRUSTED_PROXIES": "127.0.0.1",
        },
    }
    services = {
        "postgres": {
            "image": SERVICES,
            "network_mode": "host",
            "entrypoint": ["/usr/local/bin/run-postgres"],
            "environment": {"PGPORT": str(pg)},
            "healthcheck": {"test": ["CMD", "pg_isready", "-h", "127.0.0.1", "-p", str(pg)]},
        },
        "redis": {
            "image": SERVICES,
            "network_mode": "host",
            "command": [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(rd),
                "--dir",
                "/data",
                "--appendonly",
                "yes",
            ],
            "healthcheck": {"test": ["CMD", "redis-cli", "-p", str(rd), "ping"]},
        },
        "simulator": {
            "image": IMAGE,
            "network_mode": "host",
            "command": [
                "simulate",
                "--host",
                "127.0.0.1",
                "--port",
                str(ports["simulator"]),
                "--xai-api-key",
                UPSTREAM_KEY,
            ],
        },
        "proxy": {"image": SERVICES, "network_mode": "host", "command": ["nginx", "-g", "daemon off;"]},
    }
    for n in ("gateway-1", "gateway-2"):
        services[n] = json.loads(json.dumps(gateway))
        services[n]["environment"]["GROK_API_PORT"] = str(ports[n])
    shipped = yaml.safe_load((ROOT / "compose.yaml").read_text())
    merged = merge(shipped, {"services": services})
    del merged["services"]["proxy"]["ports"]
    (tmp / "compose.yaml").write_text(yaml.safe_dump(merged))
    return ["-f", str(tmp / "compose.yaml")]


def wait_healthy(stack: Stack, deadline: float) -> None:
    while True:
        try:
            ok = all(
                httpx.get(stack.url(s) + "/ready", timeout=5).status_code == 200
                for s in ("gateway-1", "gateway-2")
            )
            if ok and httpx.get(stack.url("proxy") + "/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("the stack did not become ready:\n" + stack.compose("logs", "--tail", "30"))
        time.sleep(1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    sh("docker", "info", timeout=30)
    version = sh(
        "docker", "run", "--rm", BASE, "python3", "-c", "import platform; print(platform.python_version())"
    )
    build_wheelhouse(version.strip(), tmp_path_factory.mktemp("wheelhouse"))
    sh("docker", "build", "-q", "--build-arg", f"BASE={BASE}", "-t", IMAGE, str(ROOT))
    container = ROOT / "tests" / "container"
    sh("docker", "build", "-q", "--network", "host", "--build-arg", f"BASE={BASE}", "-t", SERVICES,
       "-f", str(container / "services.Dockerfile"), str(container))  # fmt: skip
    ports = free_ports("postgres", "redis", "simulator", "gateway-1", "gateway-2", "proxy")
    tmp = tmp_path_factory.mktemp("compose")
    stack = Stack("grokapict" + secrets.token_hex(3), write_project(tmp, ports, secrets.token_hex(12)), ports)
    try:
        stack.compose("up", "-d", "--no-build")
        wait_healthy(stack, time.monotonic() + 180)
        yield stack
    finally:
        subprocess.run(
            ["docker-compose", "-p", stack.project, *stack.files, "down", "-v", "--remove-orphans"],
            capture_output=True,
            timeout=300,
            check=False,
        )
        # the gateway image is rebuilt each run: leave no old copy behind (the services image
        # stays, so its apt layer is reused next time)
        subprocess.run(["docker", "rmi", IMAGE], capture_output=True, timeout=120, check=False)
        prune = ["docker", "image", "prune", "-f", "--filter", "label=grok-api.stage=build"]
        subprocess.run(prune, capture_output=True, timeout=120, check=False)  # the build stage
        shutil.rmtree(ROOT / "wheelhouse", ignore_errors=True)


def chat(url: str, key: str) -> httpx.Response:
    body = {"model": "grok-4.3", "messages": [{"role": "user", "content": "hello"}]}
    return httpx.post(
        url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def test_image_runs_as_non_root_with_a_healthcheck(stack: Stack) -> None:
    config = json.loads(sh("docker", "image", "inspect", IMAGE))[0]["Config"]
    assert config["User"] == "10001:10001"
    assert "/health" in " ".join(config["Healthcheck"]["Test"])
    container = stack.compose("ps", "-q", "gateway-1").strip()
    deadline = time.monotonic() + 120
    while (
        state := sh("docker", "inspect", "-f", "{{.State.Health.Status}}", container).strip()
    ) != "healthy":
        assert state == "starting" and time.monotonic() < deadline, state
        time.sleep(2)


def test_the_image_holds_exactly_the_server_lock(stack: Stack) -> None:
    """The image's venv holds the project and what requirements-server.lock pins for the image's
    Python, at those versions: nothing more (pip and setuptools are removed), nothing else."""
    probe = (
        "import json, platform, importlib.metadata as m; print(json.dumps([platform.python_version(),"
        " {d.metadata['Name']: d.version for d in m.distributions()}]))"
    )
    python, dists = json.loads(sh("docker", "run", "--rm", "--entrypoint", "python3", IMAGE, "-c", probe))
    environment = {"python_full_version": python, "python_version": python.rsplit(".", 1)[0]}
    wanted = {
        name: pin.version
        for name, pin in locked("requirements-server.lock").items()
        if pin.marker is None or Marker(pin.marker).evaluate(environment)
    }
    assert {norm(n): v for n, v in dists.items()} == wanted | {"grok-api": "0.1.0"}


def test_a_key_from_one_replica_works_everywhere_and_its_limit_holds_across_both(stack: Stack) -> None:
    made = stack.compose(
        "exec", "-T", "gateway-1", "grok-api", "keys", "create", "--name", "ct", "--rpm", "4", "--json"
    )
    key = json.loads(made)["key"]
    answers = [
        chat(stack.url("proxy"), key),
        chat(stack.url("gateway-2"), key),
        chat(stack.url("gateway-1"), key),
        chat(stack.url("proxy"), key),
    ]
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert answers[0].json()["choices"][0]["message"]["content"] == "[turn 1] You said: hello"
    refused = [chat(stack.url(s), key) for s in ("gateway-2", "gateway-1", "proxy")]
    assert [r.status_code for r in refused] == [429] * 3
    assert all(r.json()["error"]["code"] == "rate_limit_requests" for r in refused)
    assert all(int(r.headers["retry-after"]) >= 1 for r in refused)


def test_a_streamed_answer_passes_the_proxy(stack: Stack) -> None:
    made = stack.compose(
        "exec", "-T", "gateway-2", "grok-api", "keys", "create", "--name", "ct-stream", "--json"
    )
    key = json.loads(made)["key"]
    body = {"model": "grok-4.3", "stream": True, "messages": [{"role": "user", "content": "[sim tokens=50]"}]}
    with httpx.stream(
        "POST",
        stack.url("proxy") + "/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    ) as r:
        frames = [f for f in r.read().decode().split("\n\n") if f]
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert frames[-1] == "data: [DONE]"
    chunks = [json.loads(f.removeprefix("data: ")) for f in frames[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert len(text.split()) == 50
