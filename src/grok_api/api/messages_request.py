"""Anthropic's Messages request → the pipeline's ChatRequest body (OpenAI's chat shape).

Messages are translated rather than forwarded so that every upstream serves them (xAI's API
and grok.com alike): one encoder per surface, one decoder per upstream. What translates:

- ``system`` (a string or text blocks) → a first ``system`` message;
- ``text`` and ``image`` blocks (``base64`` or ``url`` sources) → text and ``image_url`` parts;
- ``tool_use`` blocks of an assistant turn → its ``tool_calls``; ``tool_result`` blocks of a
  user turn → ``tool`` messages (placed first, right after the calls they answer);
- ``thinking`` blocks of earlier turns are left out, as Anthropic itself does with them;
- ``tools`` (custom tools: ``name``, ``description``, ``input_schema``) → function tools;
  ``tool_choice`` ``auto``/``any``/``tool``/``none`` → ``auto``/``required``/the function/``none``,
  ``disable_parallel_tool_use`` → ``parallel_tool_calls: false``;
- ``max_tokens``, ``temperature``, ``top_p``, ``stop_sequences`` → their OpenAI names;
  ``metadata.user_id`` → ``user``.

What cannot be expressed upstream is refused with a 400 that says so, never dropped: ``top_k``,
Anthropic's server tools (``web_search_…``, ``bash_…``, …), ``document`` blocks, images inside
tool results, MCP servers and containers.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import InvalidRequest

_UNSUPPORTED_FIELDS = {
    "top_k": "xAI's and grok.com's models take no 'top_k'; use 'temperature' or 'top_p'.",
    "mcp_servers": "MCP servers are not supported by this gateway.",
    "container": "Containers are not supported by this gateway.",
}
_TOOL_CHOICES = ("auto", "any", "tool", "none")


def _bad(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _require_int(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if value is None:
        raise InvalidRequest(f"{name}: Field required", param=name, code="missing_field")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _bad(f"{name}: must be a positive integer", name)
    return value


def _number(body: dict[str, Any], name: str, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= high:
        raise _bad(f"{name}: must be a number between 0 and {high}", name)
    return float(value)


def system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        parts = []
        for i, block in enumerate(system):
            if (
                not isinstance(block, dict)
                or block.get("type") != "text"
                or not isinstance(block.get("text"), str)
            ):
                raise _bad("system: each block must be a text block", f"system.{i}")
            parts.append(block["text"])
        return "\n\n".join(parts)
    raise _bad("system: must be a string or a list of text blocks", "system")


def _image_part(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        raise _bad("image: 'source' is required", f"{where}.source")
    kind = source.get("type")
    if kind == "base64" and isinstance(source.get("data"), str) and isinstance(source.get("media_type"), str):
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif kind == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise _bad(
            "image: 'source' must be {type: base64, media_type, data} or {type: url, url}", f"{where}.source"
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _result_text(content: Any, where: str) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise _bad(
                    "tool_result: only text content can be passed on to the upstream "
                    "(images inside tool results are not supported)",
                    f"{where}.content.{i}",
                )
            texts.append(str(part.get("text", "")))
        return "\n".join(texts)
    raise _bad("tool_result: 'content' must be a string or text blocks", f"{where}.content")


def _user_turn(content: list[Any], where: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        at = f"{where}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image":
            parts.append(_image_part(block, at))
        elif kind == "tool_result" and isinstance(block.get("tool_use_id"), str):
            text = _result_text(block.get("content"), at)
            if block.get("is_error"):
                text = "Error: " + text
            results.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text})
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise _bad(f"{at}: unsupported or malformed content block {kind!r}", at)
    out = results
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        user = "\n".join(p["text"] for p in parts) if only_text else parts
        out = [*results, {"role": "user", "content": user}]
    return out


def _assistant_turn(content: list[Any], where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(content):
        at = f"{where}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use" and isinstance(block.get("id"), str) and isinstance(block.get("name"), str):
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": arguments},
                }
            )
        elif kind in ("thinking", "redacted_thinking"):
            continue  # earlier turns' thinking is not context (Anthropic strips it too)
        else:
            raise _bad(f"{at}: unsupported or malformed content block {kind!r}", at)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def translate_messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(
            "messages: Field required (a non-empty list)", param="messages", code="missing_field"
        )
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise _bad(f"{where}.role: must be 'user' or 'assistant'", f"{where}.role")
        content = m.get("content")
        if isinstance(content, str):
            out.append({"role": m["role"], "content": content})
        elif isinstance(content, list):
            if m["role"] == "user":
                turn = _user_turn(content, where)
                if not turn:  # as Anthropic: a user turn says something
                    raise _bad(
                        f"{where}.content: a user turn needs a text, image or tool_result block",
                        f"{where}.content",
                    )
                out.extend(turn)
            else:
                out.append(_assistant_turn(content, where))
        else:
            raise _bad(f"{where}.content: must be a string or a list of content blocks", f"{where}.content")
    return out


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _bad("tools: must be a list", "tools")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
            raise _bad(f"tools.{i}: a tool needs a 'name'", f"tools.{i}")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            raise _bad(
                f"tools.{i}: Anthropic's server tool {kind!r} is not available through this gateway; "
                "define it as a custom tool (name, description, input_schema) and run it yourself",
                f"tools.{i}.type",
            )
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise _bad(f"tools.{i}.input_schema: Field required", f"tools.{i}.input_schema")
        fn: dict[str, Any] = {"name": tool["name"], "parameters": schema}
        if isinstance(tool.get("description"), str):
            fn["description"] = tool["description"]
        out.append({"type": "function", "function": fn})
    return out


def _tool_choice(choice: Any, body: dict[str, Any]) -> None:
    if not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICES:
        raise _bad("tool_choice: must be {type: auto | any | tool | none}", "tool_choice")
    kind = choice["type"]
    if kind == "tool":
        if not isinstance(choice.get("name"), str):
            raise _bad("tool_choice.name: Field required for type 'tool'", "tool_choice.name")
        body["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        body["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    if choice.get("disable_parallel_tool_use"):
        body["parallel_tool_calls"] = False


def thinking_enabled(body: dict[str, Any]) -> bool:
    """Whether the client asked to see thinking (``thinking.type`` ``enabled`` or ``adaptive``)."""
    thinking = body.get("thinking")
    if thinking is None:
        return False
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled", "adaptive"):
        raise _bad("thinking: must be {type: enabled, budget_tokens} or {type: disabled}", "thinking")
    return bool(thinking["type"] != "disabled")


def to_chat(body: Any) -> dict[str, Any]:
    """The OpenAI-shaped chat body for an Anthropic Messages body; 400 for what cannot be sent."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    model = body.get("model")
    if not isinstance(model, str) or not model or len(model) > 256:
        raise InvalidRequest("model: Field required", param="model", code="missing_field")
    max_tokens = _require_int(body, "max_tokens")
    for name, why in _UNSUPPORTED_FIELDS.items():
        if body.get(name) is not None:
            raise _bad(f"{name}: {why}", name)
    messages = translate_messages(body.get("messages"))
    if body.get("system") is not None:
        messages.insert(0, {"role": "system", "content": system_text(body["system"])})
    chat: dict[str, Any] = {"model": model, "messages": messages, "max_tokens": max_tokens}
    for name, high in (("temperature", 1.0), ("top_p", 1.0)):
        value = _number(body, name, high)
        if value is not None:
            chat[name] = value
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _bad("stop_sequences: must be a list of strings", "stop_sequences")
        if stops:
            chat["stop"] = stops
    if body.get("tools"):
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        _tool_choice(body["tool_choice"], chat)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        chat["user"] = metadata["user_id"]
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise _bad("stream: must be a boolean", "stream")
    chat["stream"] = stream
    thinking_enabled(body)
    return chat
