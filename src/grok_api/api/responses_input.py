"""The body of ``POST /v1/responses``: validated, and its ``input`` read as chat messages.

Fields the gateway knows are checked (a 400 names the first bad one); others are kept and
forwarded to an upstream that serves the Responses API itself. ``input`` is a string (one user
message) or a list of items: messages (``role`` + a string or ``input_text`` / ``input_image``
/ ``output_text`` parts), ``function_call`` and ``function_call_output`` items, and reasoning
or server-tool items from an earlier answer (kept for xAI, skipped when the conversation is
rebuilt as chat messages).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidRequest, NotFound
from ..store.responses import ITEM_ID_MAX
from .responses_encode import new_id
from .schemas import _param

_OPEN = ConfigDict(extra="allow")


class ReasoningParam(BaseModel):
    model_config = _OPEN
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None


class TextFormat(BaseModel):
    model_config = _OPEN
    type: Literal["text", "json_schema", "json_object"]


class TextParam(BaseModel):
    model_config = _OPEN
    format: TextFormat | None = None


class ResponsesRequest(BaseModel):
    """``POST /v1/responses``; unknown fields are forwarded to an upstream that speaks it."""

    model_config = _OPEN

    model: str = Field(min_length=1, max_length=256)
    input: str | Annotated[list[dict[str, Any]], Field(min_length=1)]
    instructions: str | None = None
    previous_response_id: str | None = Field(default=None, min_length=1, max_length=128)
    store: bool | None = True
    stream: bool | None = False
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningParam | None = None
    text: TextParam | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None


def validate_responses(body: Any) -> ResponsesRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    try:
        req = ResponsesRequest.model_validate(body, strict=True)
    except ValidationError as exc:
        err = max(exc.errors(include_url=False), key=lambda e: len(e["loc"]))
        param = _param(tuple(err["loc"]))
        missing = err["type"] == "missing"
        detail = "is required" if missing else f"is invalid: {err['msg']}"
        raise InvalidRequest(
            f"'{param or 'body'}' {detail}.",
            param=param or None,
            code="missing_field" if missing else "invalid_value",
        ) from None
    for i, tool in enumerate(req.tools or ()):
        if not isinstance(tool.get("type"), str):
            raise InvalidRequest("Each tool needs a 'type'.", param=f"tools[{i}].type", code="missing_field")
        if tool["type"] == "function" and not isinstance(tool.get("name"), str):
            raise InvalidRequest(
                "A function tool needs a 'name' (Responses tools are flat: name, parameters).",
                param=f"tools[{i}].name",
                code="missing_field",
            )
    return req


def to_messages(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``input`` as chat messages (the conversation as the chat surface would carry it)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        kind = item.get("type", "message")
        if kind == "message":
            out.append(_message(item, f"input[{i}]"))
        elif kind == "function_call":
            _call(item, out, f"input[{i}]")
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(item.get("call_id"), str) or not isinstance(output, str | list):
                raise InvalidRequest(
                    "A function_call_output item needs 'call_id' and 'output'.", param=f"input[{i}]"
                )
            text = output if isinstance(output, str) else _parts_text(output)
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
        # an item_reference is resolved (``resolve_references``) before the input is read
    return out


_ITEM_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def references(value: str | list[dict[str, Any]]) -> list[str]:
    """The ids the input's ``item_reference`` items name (what the Vercel AI SDK sends for the
    items of stored responses, in place of the items)."""
    ids = []
    for i, item in enumerate(() if isinstance(value, str) else value):
        if item.get("type") == "item_reference":
            ref = item.get("id")
            if not isinstance(ref, str) or not _ITEM_ID.fullmatch(ref):
                raise InvalidRequest(
                    "An item_reference needs the 'id' of an earlier item.", param=f"input[{i}].id"
                )
            ids.append(ref)
    return ids


async def resolve_references(
    value: list[dict[str, Any]], find: Callable[[list[str]], Awaitable[dict[str, dict[str, Any]]]]
) -> list[dict[str, Any]]:
    """The input with each ``item_reference`` replaced by the item it names, as the client would
    have sent it (reasoning items are left out: their ids are the gateway's, not an upstream's).
    ``find`` looks the ids up at once: the found items by id."""
    found = await find(references(value))
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        if item.get("type") != "item_reference":
            out.append(item)
            continue
        named = found.get(item["id"])
        if named is None:
            raise NotFound(f"Item with id '{item['id']}' not found.", param=f"input[{i}]")
        if named.get("type") == "message":
            parts = [p for p in named.get("content") or () if isinstance(p, dict)]
            content = [{"type": "output_text", "text": str(p.get("text", ""))} for p in parts]
            out.append({"type": "message", "role": "assistant", "content": content})
        elif named.get("type") == "function_call":
            out.append({k: named[k] for k in ("type", "call_id", "name", "arguments") if k in named})
    return out


_ID_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}


def stored_input(value: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``input`` as the items kept with a stored response: each with a ``type`` and an ``id`` (the
    client's, or a new one), otherwise as sent (``input_items`` lists them)."""
    if isinstance(value, str):
        return [{"id": new_id("msg"), "type": "message", "role": "user", "content": value}]
    out = []
    for item in value:
        kind = item.get("type", "message")
        given = item.get("id")
        ok = isinstance(given, str) and 0 < len(given) <= ITEM_ID_MAX
        out.append({**item, "type": kind, "id": given if ok else new_id(_ID_PREFIX.get(kind, "item"))})
    return out


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in ("user", "system", "developer", "assistant"):
        raise InvalidRequest(
            "A message's 'role' must be user, system, developer or assistant.", param=f"{where}.role"
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(
            "A message needs 'content': a string or a list of parts.", param=f"{where}.content"
        )
    return {"role": role, "content": [_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)]}


def _part(part: Any, where: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text", "text") and isinstance(part.get("text"), str):
        return {"type": "text", "text": part["text"]}
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return {"type": "text", "text": part["refusal"]}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise InvalidRequest(
                "An input_image part needs 'image_url' (an https URL or a base64 data URL).",
                param=f"{where}.image_url",
            )
        image: dict[str, Any] = {"url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    raise InvalidRequest(
        f"Unsupported content part type '{kind}' (use input_text or input_image).", param=f"{where}.type"
    )


def _call(item: dict[str, Any], out: list[dict[str, Any]], where: str) -> None:
    if not all(isinstance(item.get(k), str) for k in ("call_id", "name", "arguments")):
        raise InvalidRequest("A function_call item needs 'call_id', 'name' and 'arguments'.", param=where)
    call = {
        "id": item["call_id"],
        "type": "function",
        "function": {"name": item["name"], "arguments": item["arguments"]},
    }
    last = out[-1] if out else None
    if last is not None and last["role"] == "assistant" and "tool_calls" in last:
        last["tool_calls"].append(call)
    else:
        out.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _parts_text(parts: list[Any]) -> str:
    return "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))


def to_input(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat messages back as Responses input items (a stored conversation sent to xAI)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.get("role") == "tool":
            out.append({"type": "function_call_output", "call_id": m["tool_call_id"], "output": m["content"]})
            continue
        for call in m.get("tool_calls") or ():
            fn = call["function"]
            out.append(
                {
                    "type": "function_call",
                    "call_id": call["id"],
                    "name": fn["name"],
                    "arguments": fn["arguments"],
                }
            )
        content = m.get("content")
        if isinstance(content, list):
            content = [_back(p) for p in content]
        if content:
            out.append({"role": m["role"], "content": content})
    return out


def _back(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") == "image_url":
        return {"type": "input_image", "image_url": part["image_url"]["url"]}
    return {"type": "input_text", "text": part.get("text", "")}
