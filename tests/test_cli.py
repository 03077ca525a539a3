"""The key lifecycle through the real CLI, acting on the store a running gateway uses."""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest
from typer.testing import CliRunner

from grok_api.cli import app, parse_duration

from .helpers import Env, cli


def test_key_lifecycle_through_the_cli(env: Env) -> None:
    created = cli(
        "keys",
        "create",
        "--name",
        "ci-bot",
        "--expires-in",
        "30d",
        "--models",
        "grok-4.3,grok-4.20-non-reasoning",
        "--json",
        data_dir=env.settings.data_dir,
    )
    assert created.returncode == 0, created.stderr
    info = json.loads(created.stdout)
    assert {"id", "key", "name"} <= set(info) and info["name"] == "ci-bot"
    assert info["models"] == ["grok-4.20-non-reasoning", "grok-4.3"]
    assert info["expires_at"] - time.time() == pytest.approx(30 * 86400, abs=120)

    client = env.client(info["key"])
    r = client.chat.completions.create(model="grok-4.3", messages=[{"role": "user", "content": "from cli"}])
    assert r.choices[0].message.content == "[turn 1] You said: from cli"
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="grok-3-mini", messages=[{"role": "user", "content": "x"}])

    listed = cli("keys", "list", "--json", data_dir=env.settings.data_dir)
    assert listed.returncode == 0
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows[info["id"]]["status"] == "active"
    assert info["key"] not in listed.stdout  # never the key itself

    revoked = cli("keys", "revoke", info["id"], data_dir=env.settings.data_dir)
    assert revoked.returncode == 0 and "Revoked" in revoked.stdout
    time.sleep(env.settings.key_cache_ttl + 0.1)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="grok-4.3", messages=[{"role": "user", "content": "x"}])
    rows = {
        row["id"]: row
        for row in json.loads(cli("keys", "list", "--json", data_dir=env.settings.data_dir).stdout)
    }
    assert rows[info["id"]]["status"] == "revoked"


def test_human_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROK_API_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    created = runner.invoke(app, ["keys", "create", "--name", "laptop"])
    assert created.exit_code == 0, created.output
    assert "shown only this once" in created.output and "gk-" in created.output
    listed = runner.invoke(app, ["keys", "list"])
    assert "laptop" in listed.output and "active" in listed.output


def test_revoking_an_unknown_key_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROK_API_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["keys", "revoke", "key_nope"])
    assert result.exit_code == 1
    assert "No key with id key_nope" in result.output


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("12h", 43200), ("30d", 2592000), ("2w", 1209600)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


def test_bad_duration_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROK_API_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["keys", "create", "--name", "x", "--expires-in", "soon"])
    assert result.exit_code == 2
    assert "not a duration" in result.output
