"""What can be checked of the container files without Docker: compose.yaml's shape, the
Dockerfile's promises, and the image's entry command (and its HEALTHCHECK) run on this host
with the image's environment. tests/test_container.py builds and runs them for real."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from .helpers import free_socket

ROOT = Path(__file__).parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instruction(name: str) -> list[str]:
    """Every value of one Dockerfile instruction (continuation lines joined)."""
    text = DOCKERFILE.replace("\\\n", " ")
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", text, re.MULTILINE)]


def image_env() -> dict[str, str]:
    pairs = shlex.split(instruction("ENV")[-1])
    return dict(p.split("=", 1) for p in pairs)


def test_compose_file_runs_the_whole_stack() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "gateway-1", "gateway-2", "proxy"}
    for name in ("gateway-1", "gateway-2"):
        gw = services[name]
        assert gw["environment"]["GROK_API_DATABASE_URL"].startswith("postgresql://")
        assert gw["environment"]["GROK_API_REDIS_URL"].startswith("redis://redis:")
        assert gw["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert gw["build"]["args"]["BASE"]
        assert gw["volumes"][0].endswith(":/data")
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
        assert services[name]["volumes"]
    assert set(compose["volumes"]) == {"pgdata", "redisdata", "gateway1", "gateway2"}
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "server gateway-1:8000" in nginx and "server gateway-2:8000" in nginx
    assert "proxy_buffering off" in nginx


def test_env_example_names_only_real_settings() -> None:
    from grok_api.config import Settings

    known = {"XAI_API_KEY"} | {f"GROK_API_{n.upper()}" for n in Settings.model_fields}
    compose_only = {"POSTGRES_PASSWORD", "GROK_API_PUBLIC_PORT", "GROK_API_BASE_IMAGE", "GROK_API_IMAGE"}
    text = (ROOT / ".env.example").read_text()
    names = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.MULTILINE))
    assert "POSTGRES_PASSWORD" in names
    # GROK_API_TRUSTED_PROXIES is documented ahead of the setting that reads it
    assert names - known - compose_only <= {"GROK_API_TRUSTED_PROXIES"}


def test_dockerfile_is_multi_stage_non_root_with_a_healthcheck() -> None:
    assert instruction("ARG")[0].startswith("BASE=")
    assert len(instruction("FROM")) == 2
    assert instruction("USER") == ["10001:10001"]
    assert "/health" in instruction("HEALTHCHECK")[0]
    assert json.loads(instruction("ENTRYPOINT")[0]) == ["grok-api"]


def test_the_image_installs_the_server_lock_with_hashes_then_the_project_alone() -> None:
    install = instruction("RUN")[0]
    steps = [step.strip() for step in install.split("&&")]
    locked = next(i for i, s in enumerate(steps) if "-r requirements-server.lock" in s)
    assert "pip install" in steps[locked] and "--require-hashes" in steps[locked]
    assert "pip install" in steps[locked + 1] and "--no-deps" in steps[locked + 1]
    assert "[server]" not in install  # nothing resolved from pyproject.toml's ranges at build time
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not any(p in ignored for p in ("requirements-server.lock", "*.lock", "requirements*"))


def test_the_images_entry_command_and_healthcheck_run_here(tmp_path: Path) -> None:
    """``grok-api serve`` with the image's environment (port and data dir moved) serves /health,
    the HEALTHCHECK's own command passes against it, and SIGTERM ends it with status 0."""
    with free_socket() as sock:
        port = sock.getsockname()[1]
    environ = {**os.environ, **image_env(), "GROK_API_PORT": str(port), "GROK_API_DATA_DIR": str(tmp_path)}
    environ.update(GROK_API_HOST="127.0.0.1", GROK_API_DEMO="1", HOME=str(tmp_path))
    command = [sys.executable, "-m", "grok_api", *json.loads(instruction("CMD")[-1])]
    proc = subprocess.Popen(
        command, env=environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.2)
        check = json.loads(instruction("HEALTHCHECK")[0].split("CMD", 1)[1])
        check[0] = sys.executable if check[0] == "python3" else check[0]
        assert subprocess.run(check, env=environ, timeout=30, check=False).returncode == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out.decode(errors="replace")[-2000:]
