"""``grok-api doctor`` names unsafe set-ups and passes a safe one."""

from __future__ import annotations

import json
from pathlib import Path

from .helpers import cli


def doctor(tmp_path: Path, **env: str) -> tuple[int, list[dict[str, str]]]:
    out = cli("doctor", "--json", data_dir=tmp_path, cwd=tmp_path, **env)
    return out.returncode, json.loads(out.stdout)


def test_unsafe_setup_is_flagged(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("XAI_API_KEY=x\n")
    (tmp_path / ".env").chmod(0o644)
    code, findings = doctor(
        tmp_path,
        GROK_API_HOST="0.0.0.0",
        GROK_API_ADMIN_KEY="admin",
        GROK_API_PROXY="http://user:pr0xy-pa55@127.0.0.1:3128",
        GROK_API_WEB_COOKIES="sso-rw=x",
        GROK_API_WORKERS="4",
        GROK_API_CORS_ORIGINS="*",
    )
    assert code == 1
    problems = {f["topic"] for f in findings if f["level"] != "ok"}
    assert problems >= {"listen", "admin", "proxy", "grok.com", "limits", "cors", "secrets", "keys"}
    assert "pr0xy-pa55" not in json.dumps(findings)  # the proxy password is not repeated


def test_missing_upstream_is_an_error(tmp_path: Path) -> None:
    code, findings = doctor(tmp_path)
    assert code == 1
    assert any(f["level"] == "error" and f["topic"] == "upstream" for f in findings)


def test_safe_setup_passes(tmp_path: Path) -> None:
    code, findings = doctor(
        tmp_path, XAI_API_KEY="xai-key", GROK_API_ADMIN_KEY="a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7"
    )
    assert code == 0, findings
    # only the store's check speaks when all is well: proof the checks ran (and reached the store)
    assert [(f["level"], f["topic"]) for f in findings] == [("ok", "store")]
    assert findings[0]["message"].startswith("store reachable")
