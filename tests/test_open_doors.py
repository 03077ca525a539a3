"""No open doors (issue 10, items 1, 3, 13, 14): a blank admin key, credentials in upstream URLs,
duplicate credential headers, huge admin inputs, Host-built redirects, SQL parameters in logs."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from grok_api import logs
from grok_api.app import SettingsRefused, create_app
from grok_api.config import Settings, public_url
from grok_api.simulator import Simulator
from grok_api.store import Database, KeyStore
from grok_api.store.keys import hash_key

from .helpers import ADMIN_KEY, Env, ServedApp, free_socket, gateway_settings, key_for, run_async
from .test_http_errors import assert_openai_error


def serve_refused(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``grok-api serve`` with ``env``; it must exit at once (the tests give it 60 s)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("GROK_API_", "XAI_"))}
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    environ |= {"GROK_API_DATA_DIR": str(tmp_path), "GROK_API_PORT": str(port), **env}
    return subprocess.run(
        [sys.executable, "-m", "grok_api", "serve"],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_blank_admin_key_leaves_the_admin_api_off(env: Env, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GROK_API_ADMIN_KEY=\n")
    blank = Settings(_env_file=tmp_path / ".env")  # type: ignore[call-arg]
    assert blank.admin_key is None
    settings = gateway_settings(tmp_path, env.sim, admin_key="")
    with ServedApp(settings) as served:
        for given in ({}, {"Authorization": "Bearer"}, {"x-api-key": ""}):
            r = httpx.get(served.base_url + "/admin/keys", headers=given)
            assert assert_openai_error(r, 403)["code"] == "admin_disabled"
        r = httpx.post(served.base_url + "/admin/keys/key_x/revoke")
        assert r.status_code == 403


def test_short_admin_key_is_refused_at_start(tmp_path: Path) -> None:
    out = serve_refused(tmp_path, GROK_API_ADMIN_KEY="short-admin-key", XAI_API_KEY="x")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "GROK_API_ADMIN_KEY" in out.stdout and "32" in out.stdout
    assert "short-admin-key" not in out.stdout + out.stderr


@pytest.mark.parametrize(
    "url", ["http://user:s3cret-pw@127.0.0.1:9/v1", "http://127.0.0.1:9/v1?token=s3cret-pw"]
)
def test_credentials_in_upstream_urls_are_refused_at_start(tmp_path: Path, url: str) -> None:
    out = serve_refused(tmp_path, GROK_API_XAI_BASE_URL=url, XAI_API_KEY="x")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "GROK_API_XAI_BASE_URL" in out.stdout
    assert "s3cret-pw" not in out.stdout + out.stderr


def test_labels_show_no_credentials() -> None:
    assert public_url("https://u:pw@api.example:8443/v1?token=t#f") == "https://api.example:8443/v1"
    assert public_url("http://[::1]:8/v1") == "http://[::1]:8/v1"


def test_gateway_with_credentials_in_its_url_does_not_start(env: Env, tmp_path: Path) -> None:
    port = env.sim.base_url.rsplit(":", 1)[1]
    settings = gateway_settings(tmp_path, env.sim, xai_base_url=f"http://u:s3cret@127.0.0.1:{port}/v1")
    app = create_app(settings)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(SettingsRefused, match="GROK_API_XAI_BASE_URL") as info:
        run_async(start())
    assert "s3cret" not in str(info.value)


def test_status_details_can_be_private(env: Env, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, env.sim, private_status=True)
    with ServedApp(settings) as served:
        assert httpx.get(served.base_url + "/metrics").status_code == 401
        assert httpx.get(served.base_url + "/metrics", headers={"x-api-key": ADMIN_KEY}).status_code == 200
        public = httpx.get(served.base_url + "/ready")
        assert public.status_code == 200 and public.json() == {"status": "ready"}
        full = httpx.get(served.base_url + "/ready", headers={"x-api-key": ADMIN_KEY}).json()
        assert "upstreams" in full["checks"]
    shown = httpx.get(env.base_url + "/ready").json()  # the default: details for everyone
    assert "upstreams" in shown["checks"]


@pytest.mark.parametrize("name", ["Authorization", "x-api-key"])
def test_duplicate_credential_headers_are_400_everywhere(env: Env, key: str, name: str) -> None:
    value = f"Bearer {key}" if name == "Authorization" else key
    headers = [(name, value), (name, value if name == "x-api-key" else f"Bearer {ADMIN_KEY}")]
    body = {"model": "grok-4.20-non-reasoning", "messages": [{"role": "user", "content": "x"}]}
    for method, path in (("POST", "/v1/chat/completions"), ("GET", "/v1/models"), ("GET", "/admin/keys")):
        r = httpx.request(
            method, env.base_url + path, headers=headers, json=body if method == "POST" else None
        )
        err = assert_openai_error(r, 400)
        assert name.lower() in str(err["message"])


def test_huge_since_is_400(env: Env) -> None:
    for since in ("9" * 400 + "d", "99999999999y"):
        r = httpx.get(
            env.base_url + "/admin/usage", params={"since": since}, headers={"x-api-key": ADMIN_KEY}
        )
        assert assert_openai_error(r, 400)["param"] == "since"


def test_no_redirect_built_from_the_host_header(env: Env, key: str) -> None:
    for path in ("/health/", "/admin/keys/", "/v1/models/"):
        r = httpx.get(
            env.base_url + path,
            headers={"Host": "evil.example", "Authorization": f"Bearer {key}"},
            follow_redirects=False,
        )
        assert r.status_code == 404, path
        assert "location" not in r.headers


def test_debug_logging_shows_no_sql_parameters(sim: Simulator, tmp_path: Path) -> None:
    settings = gateway_settings(tmp_path, sim)
    key = key_for(settings)
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage() + str(record.args))

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        logs.configure("DEBUG", "text")
        root.addHandler(Collect())

        async def lookup() -> None:
            db = await Database.open(settings.resolved_database_url())
            try:
                assert await KeyStore(db).by_key(key) is not None
            finally:
                await db.close()

        run_async(lookup())
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert not any(hash_key(key) in line for line in seen)


def test_duplicate_credentials_under_messages_are_400_in_anthropic_shape(env: Env, key: str) -> None:
    body = {"model": "grok-4.3", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    for method, path in (("POST", "/v1/messages"), ("GET", "/v1/messages/nothing")):
        r = httpx.request(
            method,
            env.base_url + path,
            headers=[("x-api-key", key), ("x-api-key", key)],
            json=body if method == "POST" else None,
        )
        assert r.status_code == 400, r.text
        assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
