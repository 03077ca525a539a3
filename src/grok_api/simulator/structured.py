"""Answers in a shape the request fixes, on the simulator's xAI side (chat and Responses).

- Function calls: ``[sim tool=N]`` asks for N calls (of the tools in turn) when
  ``tool_choice`` is ``auto`` (or absent) and the last message is not a tool's result;
  ``tool_choice: "required"`` makes at least one call, a named function at least one call of
  that function (a name not in ``tools`` is refused, as xAI does), ``"none"`` none; with
  ``parallel_tool_calls: false`` at most one, and never more than ``MAX_CALLS``. Each call's
  arguments are a JSON object that validates against the tool's ``parameters``
  (``schema_fake``), seeded by the prompt and the call's place, its strings the prompt
  without directives. A schema that is not one is refused (400), as xAI does.
- ``json_schema`` formats: the answer is JSON that validates against the schema;
  ``json_object``: ``{"answer": <the usual answer>}``. Streamed as pieces that add up.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from .schema_fake import Unworkable, fake
from .script import strip_directives

MAX_CALLS = 128  # calls in one answer, at most, whatever [sim tool=N] asks
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s]+)|\s+")  # a word or a run of punctuation, with its spaces


class BadRequest(ValueError):
    """What xAI refuses with a 400: a ``tool_choice`` naming no tool, a schema it cannot read."""


def planned_calls(
    functions: list[tuple[str, Any]], choice: Any, asked: int, answered: bool, parallel: bool
) -> list[tuple[str, Any]]:
    """The (name, parameters) of each call to make, from the request's function tools."""
    if not functions or choice == "none":
        return []
    named = _named(choice)
    pool, count = functions, 0 if answered else asked
    if named is not None:
        pool = [f for f in functions if f[0] == named]
        if not pool:
            raise BadRequest(f"tool_choice names the function '{named}', which is not in tools.")
        count = max(asked, 1)
    elif choice == "required":
        count = max(asked, 1)
    count = min(count, 1 if not parallel else MAX_CALLS)
    return [pool[k % len(pool)] for k in range(count)]


def _named(choice: Any) -> str | None:
    """The function a ``tool_choice`` names: chat's ``{function: {name}}`` or Responses' ``{name}``."""
    if not isinstance(choice, dict) or choice.get("type") != "function":
        return None
    name = choice.get("name") or as_dict(choice.get("function")).get("name")
    return str(name) if name else None


def call_arguments(parameters: Any, prompt: str, k: int) -> str:
    """The arguments of the ``k``-th call: a JSON object that the ``parameters`` schema accepts."""
    schema = parameters if isinstance(parameters, dict) else {}
    if "type" not in schema:  # arguments are an object, whatever else the schema leaves open
        schema = {**schema, "type": "object"}
    value = _made_up(schema, f"{prompt}\0call {k}", prompt)
    return orjson.dumps(value if isinstance(value, dict) else {}).decode()


def json_answer(kind: Any, schema: Any, prompt: str, plain: list[str]) -> list[str] | None:
    """The answer's pieces for a ``json_schema`` / ``json_object`` format, else None."""
    if kind == "json_schema":
        value = _made_up(schema if isinstance(schema, dict | bool) else {}, prompt, prompt)
    elif kind == "json_object":
        value = {"answer": "".join(plain)}
    else:
        return None
    return pieces(orjson.dumps(value).decode())


def _made_up(schema: Any, seed: str, prompt: str) -> Any:
    """A value for the schema; ``{}`` if none satisfies it; a schema that is not one is refused."""
    try:
        return fake(schema, seed, strip_directives(prompt))
    except Unworkable:
        return {}
    except (TypeError, ValueError, LookupError, AttributeError, ArithmeticError) as exc:
        raise BadRequest(f"Invalid JSON schema: {exc}") from exc


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is an object, else an empty one (for optional request fields)."""
    return value if isinstance(value, dict) else {}


def pieces(text: str) -> list[str]:
    """``text`` cut into token-like pieces (words, runs of punctuation) that join back to it."""
    return _PIECE.findall(text)
