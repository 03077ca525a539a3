"""``grok-api doctor``: looks at the settings and the machine, and says what is unsafe or broken."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .config import MIN_ADMIN_KEY_CHARS, Settings
from .store import Database, KeyStore

DEMO_KEY_NAME = "demo"  # the name of the key serve --demo makes (server.py)

_ALL_INTERFACES = ("0.0.0.0", "::", "", "[::]")


@dataclass(slots=True, frozen=True)
class Finding:
    level: str  # "ok", "warn" or "error"
    topic: str
    message: str


def _mode(path: Path) -> int | None:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None


def check_settings(settings: Settings) -> list[Finding]:
    out: list[Finding] = []
    public = settings.host in _ALL_INTERFACES
    if public:
        out.append(
            Finding(
                "warn",
                "listen",
                f"listening on all interfaces ({settings.host or '*'}) over plain HTTP: put TLS in front",
            )
        )
    out += [Finding("error", "settings", problem) for problem in settings.startup_problems()]
    admin = settings.admin_key.get_secret_value() if settings.admin_key else ""
    if not admin:
        out.append(Finding("ok", "admin", "admin API off (GROK_API_ADMIN_KEY unset)"))
    elif len(admin) < MIN_ADMIN_KEY_CHARS:
        out.append(Finding("error", "admin", "GROK_API_ADMIN_KEY is too short: the gateway refuses to start"))
    elif len(set(admin)) < 10:
        out.append(
            Finding(
                "warn",
                "admin",
                "GROK_API_ADMIN_KEY is weak: use 32+ random characters (e.g. openssl rand -hex 32)",
            )
        )
    if settings.proxy and urlsplit(settings.proxy).password:
        out.append(
            Finding(
                "warn",
                "proxy",
                "GROK_API_PROXY carries a password in the environment, where every process of this user can read it: keep it in an owner-only .env file",
            )
        )
    if settings.demo:
        out.append(Finding("ok", "upstream", "demo mode: the built-in simulator is the upstream"))
    if settings.web_cookies:
        cookies = settings.web_cookies.get_secret_value()
        for name in ("sso", "cf_clearance"):
            if f"{name}=" not in cookies:
                out.append(
                    Finding(
                        "warn",
                        "grok.com",
                        f"GROK_API_WEB_COOKIES has no {name} cookie: grok.com will likely refuse the session",
                    )
                )
        if not settings.web_user_agent:
            out.append(
                Finding(
                    "warn",
                    "grok.com",
                    "GROK_API_WEB_USER_AGENT is unset: send the User-Agent of the browser the cookies came from",
                )
            )
    if settings.workers > 1 and not settings.redis_url:
        out.append(
            Finding(
                "warn",
                "limits",
                f"{settings.workers} workers without GROK_API_REDIS_URL: per-key limits are multiplied by {settings.workers}",
            )
        )
    if settings.cors_origins and "*" in settings.cors_origins:
        out.append(
            Finding(
                "warn",
                "cors",
                "GROK_API_CORS_ORIGINS allows every web page to call the gateway with a user's key",
            )
        )
    out += _check_files(settings)
    return out


def _check_files(settings: Settings) -> list[Finding]:
    out = []
    env_file = Path(".env")
    mode = _mode(env_file)
    if mode is not None and mode & 0o077:
        out.append(Finding("warn", "secrets", f".env is readable by others (mode {mode:o}): chmod 600 .env"))
    if not settings.database_url:
        db_file = settings.data_dir / "grok-api.db"
        mode = _mode(db_file)
        if mode is not None and mode & 0o077:
            out.append(
                Finding("warn", "store", f"{db_file} is readable by others (mode {mode:o}): chmod 600 it")
            )
    return out


async def check_services(settings: Settings) -> list[Finding]:
    out: list[Finding] = []
    try:
        db = await Database.open(settings.resolved_database_url())
    except Exception as exc:  # any failure to open the store is the finding
        return [Finding("error", "store", f"cannot open the store: {type(exc).__name__}: {exc}")]
    try:
        keys = [k for k in await KeyStore(db).list() if k.status() == "active"]
    finally:
        await db.close()
    out.append(Finding("ok", "store", f"store reachable, {len(keys)} active key(s)"))
    if not keys and settings.host in _ALL_INTERFACES:
        out.append(
            Finding(
                "warn",
                "keys",
                "listening on all interfaces but no active keys: create one with 'grok-api keys create'",
            )
        )
    if settings.redis_url:
        from redis.asyncio import Redis

        client = Redis.from_url(settings.redis_url, socket_connect_timeout=2)
        try:
            await client.ping()
            out.append(Finding("ok", "redis", "Redis reachable"))
        except Exception as exc:  # unreachable, refused, auth: all the same finding
            out.append(Finding("error", "redis", f"Redis unreachable: {type(exc).__name__}"))
        finally:
            await client.aclose()
    return out


async def demo_running(settings: Settings) -> bool:
    """Whether a demo gateway (``serve --demo``) is running: its own key (named ``demo``) is in
    its store only while it runs; keys made there with ``GROK_API_DEMO=1 keys create`` stay."""
    if not (settings.data_dir / "demo.db").exists():
        return False
    db = await Database.open(settings.model_copy(update={"demo": True}).resolved_database_url())
    try:
        return any(k.name == DEMO_KEY_NAME and k.status() == "active" for k in await KeyStore(db).list())
    finally:
        await db.close()


async def check_upstream(settings: Settings) -> list[Finding]:
    """No upstream credentials is an error, unless a demo gateway (``serve --demo``) is running:
    its key lives in the demo's own store only while it runs."""
    if settings.xai_api_key or settings.web_cookies or settings.demo:
        return []
    if await demo_running(settings):
        return [
            Finding(
                "ok",
                "upstream",
                "demo mode: a demo gateway is running with the built-in simulator (no credentials "
                "needed); set XAI_API_KEY or GROK_API_WEB_COOKIES to serve Grok",
            )
        ]
    return [Finding("error", "upstream", "no upstream credentials: set XAI_API_KEY or GROK_API_WEB_COOKIES")]


async def diagnose(settings: Settings) -> list[Finding]:
    return check_settings(settings) + await check_upstream(settings) + await check_services(settings)


def has_problems(findings: list[Finding]) -> bool:
    return any(f.level != "ok" for f in findings)


def environment_note() -> str | None:
    """Proxy credentials can also hide in the standard variables aiohttp would not read."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        value = os.environ.get(name)
        if value and urlsplit(value).password:
            return f"{name} carries a password; Grok-Api ignores it (use GROK_API_PROXY)"
    return None
