"""Settings read the environment as the README documents."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from grok_api.config import Settings


def test_database_urls_are_written_as_users_write_them(tmp_path: Path) -> None:
    s = Settings(_env_file=None, data_dir=tmp_path)  # type: ignore[call-arg]
    assert s.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path}/grok-api.db"
    pg = Settings(_env_file=None, database_url="postgresql://u@h:5432/db")  # type: ignore[call-arg]
    assert pg.resolved_database_url() == "postgresql+asyncpg://u@h:5432/db"


def test_environment_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XAI_API_KEY", "xai-secret")
    monkeypatch.setenv("GROK_API_XAI_BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.setenv("GROK_API_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GROK_API_PROXY", "socks5://127.0.0.1:1080")
    monkeypatch.setenv("GROK_API_MAX_BODY_BYTES", "2048")
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.xai_api_key is not None and s.xai_api_key.get_secret_value() == "xai-secret"
    assert "xai-secret" not in repr(s)
    assert s.xai_base_url == "http://127.0.0.1:1/v1"
    assert s.data_dir == tmp_path
    assert s.proxy == "socks5://127.0.0.1:1080"
    assert s.max_body_bytes == 2048


def test_bad_proxy_scheme_is_refused() -> None:
    with pytest.raises(ValidationError, match="GROK_API_PROXY"):
        Settings(_env_file=None, proxy="ftp://x")  # type: ignore[call-arg]


def test_dotenv_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("GROK_API_PORT=9123\nXAI_API_KEY=from-dotenv\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XAI_API_KEY", raising=False)
    s = Settings()
    assert s.port == 9123
    assert s.xai_api_key is not None and s.xai_api_key.get_secret_value() == "from-dotenv"
