"""The ``grok-api`` command: serve, keys, simulate, chat. Each command parses, calls one function, prints."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from typing import Annotated

import typer
from rich.console import Console

from . import __version__
from .cli_chat import chat
from .cli_keys import keys_app, parse_duration, settings_from

__all__ = ["app", "main", "parse_duration"]

app = typer.Typer(help="Grok-Api: an OpenAI-compatible API gateway for xAI's Grok.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.command()(chat)
console = Console()


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

    settings = settings_from(host=host, port=port, workers=workers, demo=demo or None)
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


@app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Check the set-up of 'serve --demo'.")] = False,
) -> None:
    """Check the set-up for unsafe or broken settings; exit status 1 if anything needs attention."""
    from dataclasses import asdict

    from .doctor import diagnose, environment_note, has_problems

    findings = asyncio.run(diagnose(settings_from(demo=demo or None)))
    if as_json:
        typer.echo(json.dumps([asdict(f) for f in findings], indent=2))
    else:
        colours = {"ok": "green", "warn": "yellow", "error": "red"}
        for f in findings:
            console.print(f"[{colours[f.level]}]{f.level:5}[/] {f.topic:9} {f.message}", highlight=False)
        note = environment_note()
        if note:
            console.print(f"[yellow]note [/] {note}")
    raise typer.Exit(1 if has_problems(findings) else 0)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
