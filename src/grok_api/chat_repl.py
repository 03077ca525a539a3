"""The interactive side of ``grok-api chat``: a read–answer loop with slash commands.

Answers stream as Markdown (reasoning dimmed above them), with a spinner until the first
token and the token usage after. Ctrl-C stops an answer (what arrived stays in the history)
and clears a half-typed line; Ctrl-D leaves. A line ending in ``\\`` continues on the next,
and a block between two lines of ``\"\"\"`` is sent as one message. Input history is kept in
``$XDG_STATE_HOME/grok-api/chat_history``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import openai
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.spinner import Spinner
from rich.text import Text

from .cli_chat import describe_error
from .client import Conversation, Delta, Grok

__all__ = ["Repl", "conversation_markdown"]

HELP = """\
/model [ID]     show or switch the model (the history stays)
/models         list the models this key may use
/new            start a new conversation
/system [TEXT]  show or set the system prompt (/system off: none)
/think          show or hide the model's reasoning
/save FILE      save the conversation (.json: JSON, otherwise Markdown)
/help           this list;  Ctrl-C stops an answer;  Ctrl-D (or /exit) leaves
End a line with \\ to continue it, or put a message between two lines of \"\"\"."""


def history_file() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(state) / "grok-api" / "chat_history"


def conversation_markdown(convo: Conversation) -> str:
    lines = [f"# Conversation with {convo.model}", ""]
    if convo.system:
        lines += [f"**System:** {convo.system}", ""]
    for m in convo.history:
        lines += ["## You" if m["role"] == "user" else f"## {convo.model}", "", m["content"], ""]
    return "\n".join(lines)


class Repl:
    """One interactive session: a conversation, a console, and the display switches."""

    def __init__(
        self, grok: Grok, convo: Conversation, base_url: str, *, markdown: bool, show_reasoning: bool
    ):
        self.grok, self.convo, self.base_url = grok, convo, base_url
        self.markdown, self.show_reasoning = markdown, show_reasoning
        self.console = Console(highlight=False)

    def run(self) -> None:
        self._load_history()
        self.console.print(
            f"[bold]grok-api chat[/] · {self.convo.model} · {self.base_url} · /help for commands, Ctrl-D to leave"
        )
        while True:
            try:
                text = self._read()
            except KeyboardInterrupt:
                self.console.print()
                continue
            except EOFError:
                self.console.print()
                break
            if not text.strip():
                continue
            if text.startswith("/"):
                if not self._command(text.strip()):
                    break
                continue
            self._answer(text)
        self._save_history()

    def _read(self) -> str:
        first = input("you> ")
        if first.strip() == '"""':
            block: list[str] = []
            while (line := input("... ")).strip() != '"""':
                block.append(line)
            return "\n".join(block)
        lines = [first]
        while lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1]
            lines.append(input("... "))
        return "\n".join(lines)

    def _answer(self, text: str) -> None:
        started = time.monotonic()
        deltas = self.convo.deltas_of(text)
        try:
            if self.markdown:
                self._stream_markdown(deltas)
            else:
                self._stream_plain(deltas)
        except KeyboardInterrupt:
            deltas.close()  # now, so that what arrived is in the history before the next turn
            self.console.print("\n[yellow]stopped[/] (what arrived is kept)")
            return
        except openai.OpenAIError as exc:
            self._error(describe_error(exc, self.base_url))
            return
        except Exception as exc:  # e.g. the connection dropped mid-answer: a line, not a traceback
            self._error(f"the answer failed: {type(exc).__name__}: {exc}")
            return
        usage = self.convo.usage
        tokens = f"{usage.prompt_tokens} in + {usage.completion_tokens} out tokens · " if usage else ""
        self.console.print(f"[dim]{tokens}{time.monotonic() - started:.1f} s[/]")

    def _stream_markdown(self, deltas: Generator[Delta]) -> None:
        """Re-renders the whole answer as it grows (rich's Live), reasoning dimmed above it."""
        parts: dict[str, list[str]] = {"text": [], "reasoning": []}
        spinner = Spinner("dots", text=Text("waiting for the first token…", style="dim"))
        with Live(spinner, console=self.console, refresh_per_second=12, vertical_overflow="visible") as live:
            for delta in deltas:
                parts[delta.kind].append(delta.text)
                live.update(self._render(parts))

    def _stream_plain(self, deltas: Generator[Delta]) -> None:
        """Writes each piece as it comes: nothing is redrawn, so any length scrolls cleanly."""
        with self.console.status(Text("waiting for the first token…", style="dim")):
            first = next(deltas, None)
        last = None
        for delta in itertools.chain([first] if first else [], deltas):
            if delta.kind == "reasoning" and not self.show_reasoning:
                continue
            if last == "reasoning" and delta.kind == "text":
                self.console.print()
            style = "dim italic" if delta.kind == "reasoning" else ""
            self.console.print(delta.text, end="", style=style, markup=False, highlight=False, soft_wrap=True)
            last = delta.kind
        self.console.print()

    def _error(self, message: str) -> None:
        self.console.print(Text.assemble(("error: ", "red"), message))

    def _render(self, parts: dict[str, list[str]]) -> RenderableType:
        shown: list[RenderableType] = []
        if self.show_reasoning and parts["reasoning"]:
            shown.append(Text("".join(parts["reasoning"]), style="dim italic"))
        answer = "".join(parts["text"])
        if answer:
            shown.append(Markdown(answer))
        return Group(*shown)

    def _command(self, line: str) -> bool:
        """Runs one slash command; False means leave."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        handlers: dict[str, Any] = {
            "/model": self._model,
            "/models": self._models,
            "/new": self._new,
            "/system": self._system,
            "/think": self._think,
            "/save": self._save,
            "/help": lambda _: self.console.print(HELP, markup=False),
        }
        if name in ("/exit", "/quit"):
            return False
        handler = handlers.get(name)
        if handler is None:
            self.console.print(f"unknown command {name}; /help lists them", markup=False)
        else:
            handler(arg)
        return True

    def _model(self, arg: str) -> None:
        if arg:
            self.convo.model = arg
        self.console.print(f"model: {self.convo.model}", markup=False)

    def _models(self, _: str) -> None:
        try:
            ids = self.grok.models()
        except openai.OpenAIError as exc:
            self._error(describe_error(exc, self.base_url))
            return
        for mid in ids:
            self.console.print(("* " if mid == self.convo.model else "  ") + mid, markup=False)

    def _new(self, _: str) -> None:
        self.convo.reset()
        self.console.print("new conversation")

    def _system(self, arg: str) -> None:
        if arg:
            self.convo.system = None if arg == "off" else arg
        self.console.print(f"system prompt: {self.convo.system or '(none)'}", markup=False)

    def _think(self, _: str) -> None:
        self.show_reasoning = not self.show_reasoning
        self.console.print(f"reasoning {'shown' if self.show_reasoning else 'hidden'}")

    def _save(self, arg: str) -> None:
        if not arg:
            self.console.print("usage: /save FILE (.json for JSON, otherwise Markdown)")
            return
        path = Path(arg).expanduser()
        if path.suffix == ".json":
            data = {"model": self.convo.model, "system": self.convo.system, "messages": self.convo.history}
            body = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        else:
            body = conversation_markdown(self.convo)
        try:
            path.write_text(body, encoding="utf-8")
        except OSError as exc:
            self._error(f"cannot write {path}: {exc.strerror}")
            return
        self.console.print(f"saved {len(self.convo.history)} messages to {path}", markup=False)

    def _load_history(self) -> None:
        with contextlib.suppress(ImportError, OSError):
            import readline

            readline.read_history_file(history_file())

    def _save_history(self) -> None:
        with contextlib.suppress(ImportError, OSError):
            import readline

            history_file().parent.mkdir(parents=True, exist_ok=True)
            readline.set_history_length(1000)
            readline.write_history_file(history_file())
