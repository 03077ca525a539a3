"""``grok-api keys …``: issue, change, list, revoke keys and report their usage.

They read the same settings as ``serve`` (environment, ``.env``), so they act on the store a
running gateway uses; with ``GROK_API_REDIS_URL`` set, changes are announced to every gateway.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from . import keyevents, timespec
from .config import Settings
from .doctor import demo_running
from .errors import InvalidRequest
from .store import Database, KeyRecord, KeyStore, Limits, UsageStore
from .store.keys import UNSET

T = TypeVar("T")

keys_app = typer.Typer(
    help="Issue, change, list and revoke client API keys; report usage.", no_args_is_help=True
)
# Piped output is not cut to 80 columns: tables stay whole for scripts and logs.
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True)

Rpm = Annotated[int | None, typer.Option("--rpm", min=0, help="Requests per minute.")]
Tpm = Annotated[int | None, typer.Option("--tpm", min=0, help="Tokens per minute.")]
Concurrency = Annotated[int | None, typer.Option("--concurrency", min=0, help="Requests at once.")]
Daily = Annotated[int | None, typer.Option("--daily-tokens", min=0, help="Token budget per UTC day.")]
Monthly = Annotated[int | None, typer.Option("--monthly-tokens", min=0, help="Token budget per UTC month.")]
Total = Annotated[int | None, typer.Option("--total-tokens", min=0, help="Token budget for the key's life.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def settings_from(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w``, ``1y`` → seconds."""
    try:
        return timespec.parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


async def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    db = await Database.open(settings.resolved_database_url())
    try:
        return await work(db)
    finally:
        await db.close()


def run_db(work: Callable[[Database], Awaitable[T]]) -> T:
    return asyncio.run(_with_db(settings_from(), work))


def _announce(key_id: str) -> None:
    url = settings_from().redis_url
    if url:
        asyncio.run(keyevents.publish_url(url, key_id))


def _changed(key_id: str, record: KeyRecord | None, as_json: bool, text: str) -> None:
    """After a change: announce it to running gateways, then print the key (or fail if none)."""
    if record is None:
        err_console.print(f"No key with id {key_id}.")
        raise typer.Exit(1)
    _announce(key_id)
    if as_json:
        _print_json(record.public())
    else:
        console.print(text.format(id=record.id, name=record.name, limits=_limits_text(record.limits)))


def _when(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


def _print_json(obj: Any) -> None:
    typer.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode())


def _text(value: str, what: str, longest: int) -> str:
    """A name or id as the store keeps it: printable (no control characters), not too long."""
    if not value.isprintable() or len(value) > longest:
        raise typer.BadParameter(f"{what} must be printable text of at most {longest} characters")
    return value


def _models(text: str | None) -> list[str] | None:
    if text is None or text.strip().lower() == "all":
        return None
    allowed = [_text(m.strip(), "a model id", 256) for m in text.split(",") if m.strip()]
    if not allowed:
        raise typer.BadParameter("--models needs at least one model id (or 'all')")
    return allowed


def _limits_text(limits: Limits) -> str:
    parts = [f"{k}={v}" for k, v in limits.as_dict().items() if v is not None]
    return ", ".join(parts) or "none"


def _warn_if_demo_runs(settings: Settings) -> None:
    """A key made for the real store while ``make run`` (the demo) runs is refused by that demo:
    say so, and how to make one it accepts."""
    if settings.demo or settings.xai_api_key or settings.web_cookies:
        return
    if asyncio.run(demo_running(settings)):
        err_console.print(
            "Note: a demo gateway (serve --demo) is running; it does not accept this key (demo keys "
            "live in its own store). For a key the demo accepts: GROK_API_DEMO=1 grok-api keys create …",
            soft_wrap=True,
        )


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Who or what the key is for.")],
    expires_in: Annotated[str | None, typer.Option(help="Lifetime, e.g. 30d, 12h, 1y.")] = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated model ids the key may use.")] = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    concurrency: Concurrency = None,
    daily_tokens: Daily = None,
    monthly_tokens: Monthly = None,
    total_tokens: Total = None,
    as_json: AsJson = False,
) -> None:
    """Issue a key. It is printed once and stored only as a hash."""
    name = _text(name, "--name", 200)
    seconds = parse_duration(expires_in) if expires_in else None
    allowed = _models(models)
    limits = Limits(rpm, tpm, concurrency, daily_tokens, monthly_tokens, total_tokens)
    record, key = run_db(
        lambda db: KeyStore(db).create(name, expires_in=seconds, models=allowed, limits=limits)
    )
    _warn_if_demo_runs(settings_from())
    if as_json:
        _print_json({**record.public(), "key": key})
        return
    console.print(f"Created key [bold]{record.id}[/] ({name}). It is shown only this once:\n")
    console.print(key, highlight=False, soft_wrap=True)
    console.print(
        f"\nexpires: {_when(record.expires_at)}   models: {', '.join(allowed) if allowed else 'all'}"
        f"   limits: {_limits_text(limits)}"
    )


@keys_app.command("update")
def keys_update(
    key_id: Annotated[str, typer.Argument(help="The key's id (from 'keys list').")],
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    expires_in: Annotated[str | None, typer.Option(help="A new lifetime from now, or 'never'.")] = None,
    models: Annotated[str | None, typer.Option(help="Model ids the key may use, or 'all'.")] = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    concurrency: Concurrency = None,
    daily_tokens: Daily = None,
    monthly_tokens: Monthly = None,
    total_tokens: Total = None,
    as_json: AsJson = False,
) -> None:
    """Change a key's name, expiry, models or limits (a limit of 0 removes it)."""
    given = {
        "rpm": rpm,
        "tpm": tpm,
        "concurrency": concurrency,
        "budget_day": daily_tokens,
        "budget_month": monthly_tokens,
        "budget_total": total_tokens,
    }
    limits = {k: (v or None) for k, v in given.items() if v is not None}
    expires: object = UNSET
    if expires_in is not None:
        expires = None if expires_in == "never" else int(time.time() + parse_duration(expires_in))
    record = run_db(
        lambda db: KeyStore(db).update(
            key_id,
            name=UNSET if name is None else _text(name, "--name", 200),
            expires_at=expires,
            models=UNSET if models is None else _models(models),
            limits=limits,
        )
    )
    _changed(key_id, record, as_json, "Updated {id} ({name}); limits: {limits}.")


@keys_app.command("list")
def keys_list(as_json: AsJson = False) -> None:
    """List keys (never the keys themselves)."""
    records = run_db(lambda db: KeyStore(db).list())
    if as_json:
        _print_json([r.public() for r in records])
        return
    table = Table("id", "name", "prefix", "status", "created", "expires", "last used", "models", "limits")
    for r in records:
        table.add_row(
            r.id,
            r.name,
            r.key_prefix + "…",
            r.status(),
            _when(r.created_at),
            _when(r.expires_at),
            _when(r.last_used_at),
            ", ".join(sorted(r.models)) if r.models is not None else "all",
            _limits_text(r.limits),
        )
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from 'keys list').")],
    as_json: AsJson = False,
) -> None:
    """Revoke a key. Gateways refuse it within a second (Redis) or the key-cache TTL."""
    record = run_db(lambda db: KeyStore(db).revoke(key_id))
    _changed(key_id, record, as_json, "Revoked {id} ({name}).")


@keys_app.command("usage")
def keys_usage(
    key: Annotated[str | None, typer.Option("--key", help="Only this key id.")] = None,
    since: Annotated[str, typer.Option(help="A duration back (7d) or a UTC date (2026-11-01).")] = "30d",
    as_json: AsJson = False,
) -> None:
    """Usage per key and model, as flushed by the gateways (every few seconds)."""
    try:
        start = timespec.since_epoch(since, time.time())
    except InvalidRequest as exc:
        raise typer.BadParameter(exc.message) from None

    async def report(db: Database) -> tuple[list[dict[str, Any]], dict[str, str]]:
        rows = await UsageStore(db).report(key_id=key, since_hour=start // 3600 * 3600)
        names = {r.id: r.name for r in await KeyStore(db).list()}
        return rows, names

    rows, names = run_db(report)
    if as_json:
        _print_json([{**r, "key_name": names.get(r["key_id"])} for r in rows])
        return
    table = Table(
        "key",
        "name",
        "model",
        "requests",
        "errors",
        "prompt",
        "completion",
        "reasoning",
        "cached",
        "images",
        "total",
    )
    for r in rows:
        table.add_row(
            r["key_id"],
            names.get(r["key_id"], "?"),
            r["model"],
            *(str(r[c]) for c in ("requests", "errors", "prompt_tokens", "completion_tokens")),
            *(str(r[c]) for c in ("reasoning_tokens", "cached_tokens", "images")),
            f"{r['total_tokens']}{' (est.)' if r['estimated'] else ''}",
        )
    console.print(f"Usage since {_when(start)} UTC")
    console.print(table)
