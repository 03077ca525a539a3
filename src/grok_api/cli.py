"""The ``grok-api`` command: serve, keys, simulate. Each command parses, calls one function, prints."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from . import __version__
from .config import Settings
from .store import Database, KeyRecord, KeyStore

T = TypeVar("T")

app = typer.Typer(help="Grok-Api: an OpenAI-compatible API gateway for xAI's Grok.", no_args_is_help=True)
keys_app = typer.Typer(help="Issue, list and revoke client API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console()
err_console = Console(stderr=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``12h``, ``30d``, ``2w``, ``1y`` → seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdwy])\s*", text.lower())
    if not m:
        raise typer.BadParameter(f"'{text}' is not a duration like 90s, 15m, 12h, 30d, 2w or 1y")
    seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds <= 0:
        raise typer.BadParameter("the duration must be positive")
    return seconds


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


async def _with_store(settings: Settings, work: Callable[[KeyStore], Awaitable[T]]) -> T:
    db = await Database.open(settings.resolved_database_url())
    try:
        return await work(KeyStore(db))
    finally:
        await db.close()


def run_keys(settings: Settings, work: Callable[[KeyStore], Awaitable[T]]) -> T:
    return asyncio.run(_with_store(settings, work))


def _when(ts: int | None) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M") if ts else "-"


def _print_json(obj: Any) -> None:
    typer.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode())


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [env GROK_API_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [env GROK_API_PORT].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [env GROK_API_WORKERS].")] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Serve the built-in simulator as the upstream.")
    ] = False,
) -> None:
    """Run the gateway."""
    from .server import run_server

    settings = _settings(host=host, port=port, workers=workers, demo=demo or None)
    run_server(settings, console)


@app.command()
def simulate(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8090,
    latency: Annotated[float, typer.Option(help="Seconds before the first token.")] = 0.0,
    rate: Annotated[float, typer.Option(help="Tokens per second (0: as fast as possible).")] = 0.0,
    xai_api_key: Annotated[str | None, typer.Option(help="Only accept this upstream key.")] = None,
) -> None:
    """Run the upstream simulator (xAI's API at /v1) as its own server."""
    from .simulator import SimulatorConfig, serve_forever

    config = SimulatorConfig(xai_api_key=xai_api_key, first_token_latency=latency, token_rate=rate)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(host, port, config))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", help="Who or what the key is for.")],
    expires_in: Annotated[str | None, typer.Option(help="Lifetime, e.g. 30d, 12h, 1y.")] = None,
    models: Annotated[str | None, typer.Option(help="Comma-separated model ids the key may use.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
) -> None:
    """Issue a key. It is printed once and stored only as a hash."""
    seconds = parse_duration(expires_in) if expires_in else None
    allowed = [m.strip() for m in models.split(",") if m.strip()] if models else None
    if allowed == []:
        raise typer.BadParameter("--models needs at least one model id")
    record, key = run_keys(_settings(), lambda ks: ks.create(name, expires_in=seconds, models=allowed))
    if as_json:
        _print_json({**record.public(), "key": key})
        return
    console.print(f"Created key [bold]{record.id}[/] ({name}). It is shown only this once:\n")
    console.print(key, highlight=False, soft_wrap=True)
    console.print(
        f"\nexpires: {_when(record.expires_at)}   models: {', '.join(allowed) if allowed else 'all'}"
    )


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List keys (never the keys themselves)."""
    records = run_keys(_settings(), lambda ks: ks.list())
    if as_json:
        _print_json([r.public() for r in records])
        return
    console.print(_keys_table(records))


def _keys_table(records: list[KeyRecord]) -> Table:
    table = Table("id", "name", "prefix", "status", "created", "expires", "last used", "models")
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
        )
    return table


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (from 'keys list').")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Revoke a key. Running gateways refuse it within the key-cache TTL."""
    record = run_keys(_settings(), lambda ks: ks.revoke(key_id))
    if record is None:
        err_console.print(f"No key with id {key_id}.")
        raise typer.Exit(1)
    if as_json:
        _print_json(record.public())
    else:
        console.print(f"Revoked {record.id} ({record.name}).")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
