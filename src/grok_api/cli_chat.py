"""``grok-api chat``: a terminal chat with a Grok-Api gateway (or any OpenAI-compatible URL).

Interactive when no prompt is given and stdin is a terminal (see :mod:`grok_api.chat_repl`);
otherwise one-shot: the prompt (and piped stdin) is sent once and only the answer is printed,
so it composes in pipes. Imports nothing of the server: it works on a client-only install,
where :func:`entry` serves the commands that need no server.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from . import __version__

if TYPE_CHECKING:  # the openai SDK loads when a chat starts, not with every grok-api command
    import openai

    from .client import Conversation

__all__ = ["chat", "describe_error", "entry"]

DEFAULT_MODEL = "grok-4.3"


def describe_error(exc: openai.OpenAIError, base_url: str) -> str:
    """One line a person can act on, for any error the SDK raises."""
    import openai

    if isinstance(exc, openai.APIConnectionError):
        return f"cannot reach {base_url} ({exc}): is the gateway running, and is the URL right?"
    if not isinstance(exc, openai.APIError):
        return str(exc)
    message = exc.body.get("message") if isinstance(exc.body, dict) else None
    message = str(message or exc.message)
    if isinstance(exc, openai.AuthenticationError):
        return f"the gateway refused the API key (401: {message}); set GROK_API_KEY or pass --api-key"
    if isinstance(exc, openai.RateLimitError):
        wait = exc.response.headers.get("retry-after")
        return f"rate limited (429: {message})" + (f"; retry in {wait} s" if wait else "")
    if isinstance(exc, openai.APIStatusError):
        return f"{exc.status_code}: {message}"
    return f"the answer failed: {message}"


def one_shot(convo: Conversation, text: str, base_url: str) -> int:
    """Streams the answer to stdout, plain; returns the exit status."""
    import openai

    try:
        for piece in convo.stream(text):
            sys.stdout.write(piece)
            sys.stdout.flush()
    except openai.OpenAIError as exc:
        sys.stdout.flush()
        sys.stderr.write(f"grok-api chat: {describe_error(exc, base_url)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\ngrok-api chat: stopped\n")
        return 130
    except Exception as exc:  # e.g. the connection dropped mid-answer: a line, not a traceback
        sys.stdout.flush()
        sys.stderr.write(f"grok-api chat: the answer failed: {type(exc).__name__}: {exc}\n")
        return 1
    sys.stdout.write("\n")
    return 0


def chat(
    prompt: Annotated[
        str | None, typer.Argument(help="Ask once and print only the answer (piped stdin is appended).")
    ] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", envvar="GROK_API_MODEL", help="Model id.")
    ] = DEFAULT_MODEL,
    base_url: Annotated[
        str | None,
        typer.Option(
            envvar="GROK_API_BASE_URL",
            help="The gateway's OpenAI base URL [default: http://127.0.0.1:8000/v1].",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="GROK_API_KEY", show_default=False, help="A key from `grok-api keys create`."),
    ] = None,
    system: Annotated[str | None, typer.Option("--system", "-s", help="A system prompt.")] = None,
    plain: Annotated[
        bool, typer.Option("--plain", help="Interactive: print text as it comes, no Markdown.")
    ] = False,
    reasoning: Annotated[bool, typer.Option(help="Interactive: show the model's reasoning, dimmed.")] = True,
) -> None:
    """Chat with Grok: interactive in a terminal, one-shot with a prompt or piped input."""
    import openai

    from .client import Grok, resolve_base_url

    url = resolve_base_url(base_url)
    try:
        grok = Grok(base_url=url, api_key=api_key)
    except openai.OpenAIError as exc:
        typer.echo(f"grok-api chat: {exc}", err=True)
        raise typer.Exit(2) from None
    convo = grok.conversation(model, system=system)
    with grok:
        if prompt is None and sys.stdin.isatty():
            from .chat_repl import Repl

            Repl(grok, convo, url, markdown=not plain, show_reasoning=reasoning).run()
            return
        piped = "" if sys.stdin.isatty() else sys.stdin.read()
        text = "\n\n".join(part for part in (prompt, piped.strip()) if part)
        if not text:
            typer.echo("grok-api chat: nothing to ask (give a prompt or pipe text in)", err=True)
            raise typer.Exit(2)
        raise typer.Exit(one_shot(convo, text, url))


def _client_only_app(missing: str | None) -> typer.Typer:
    """The commands that need no server; the others say how to install it (``missing``: why)."""
    app = typer.Typer(help="Grok-Api client (the gateway is not installed).", no_args_is_help=True)
    app.command()(chat)

    @app.command()
    def version() -> None:
        """Print the version."""
        typer.echo(__version__)

    def needs_server() -> None:
        typer.echo(
            f"this command needs the gateway, which is not installed (no module '{missing}'): "
            "pip install 'grok-api[server]'",
            err=True,
        )
        raise typer.Exit(1)

    extra = {"allow_extra_args": True, "ignore_unknown_options": True}
    for name in ("serve", "keys", "simulate", "doctor"):
        app.command(name, context_settings=extra, help="Needs the [server] extra.")(needs_server)
    return app


def entry() -> None:
    """The ``grok-api`` command: everything with the server installed, ``chat`` without it.

    ``grok-api chat …`` skips the server's imports either way, so it starts at once.
    """
    if sys.argv[1:2] == ["chat"]:
        _client_only_app(None)()
        return
    try:
        from .cli import main
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.startswith("grok_api"):
            raise
        _client_only_app(exc.name)()
        return
    main()
