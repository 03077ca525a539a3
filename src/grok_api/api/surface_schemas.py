"""JSON Schemas of the Messages and image bodies, for the OpenAPI document only.

The surfaces validate by hand (their errors name the field, in their own shape); these schemas
describe the same bodies for ``/docs`` and for clients that generate code from the document.
"""

from __future__ import annotations

from typing import Any

_STR: dict[str, Any] = {"type": "string"}
_BLOCK: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": ["text", "image", "tool_use", "tool_result", "thinking"]}},
}
_MESSAGE_FIELDS: dict[str, Any] = {
    "model": _STR,
    "messages": {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["role", "content"],
            "properties": {
                "role": {"enum": ["user", "assistant"]},
                "content": {"oneOf": [_STR, {"type": "array", "items": _BLOCK}]},
            },
        },
    },
    "system": {"oneOf": [_STR, {"type": "array", "items": _BLOCK}]},
    "tools": {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["name", "input_schema"],
            "properties": {"name": _STR, "description": _STR, "input_schema": {"type": "object"}},
        },
    },
    "tool_choice": {
        "type": "object",
        "required": ["type"],
        "properties": {
            "type": {"enum": ["auto", "any", "tool", "none"]},
            "name": _STR,
            "disable_parallel_tool_use": {"type": "boolean"},
        },
    },
    "thinking": {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": ["enabled", "disabled"]}, "budget_tokens": {"type": "integer"}},
    },
}
MESSAGES: dict[str, Any] = {
    "type": "object",
    "required": ["model", "max_tokens", "messages"],
    "properties": {
        **_MESSAGE_FIELDS,
        "max_tokens": {"type": "integer", "minimum": 1},
        "stream": {"type": "boolean"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "stop_sequences": {"type": "array", "items": _STR},
        "metadata": {"type": "object", "properties": {"user_id": _STR}},
    },
}
COUNT_TOKENS: dict[str, Any] = {
    "type": "object",
    "required": ["model", "messages"],
    "properties": _MESSAGE_FIELDS,
}
IMAGES: dict[str, Any] = {
    "type": "object",
    "required": ["model", "prompt"],
    "properties": {
        "model": _STR,
        "prompt": {"type": "string", "minLength": 1},
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "response_format": {"enum": ["url", "b64_json"]},
        "size": _STR,
        "aspect_ratio": _STR,
        "resolution": {"enum": ["1k", "2k"]},
        "user": _STR,
    },
}


_SOURCE: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "description": "an http(s) URL or a data: URI of a PNG, JPEG or WebP"},
        {"type": "object", "required": ["url"], "properties": {"url": _STR, "type": {"enum": ["image_url"]}}},
    ]
}
_EDIT_FIELDS: dict[str, Any] = IMAGES["properties"]
IMAGE_EDITS: dict[str, Any] = {
    "type": "object",
    "required": ["model", "prompt"],
    "properties": {
        **_EDIT_FIELDS,
        "image": _SOURCE,
        "images": {"type": "array", "maxItems": 3, "items": _SOURCE},
    },
}
IMAGE_EDITS_FORM: dict[str, Any] = {
    "type": "object",
    "required": ["model", "prompt", "image"],
    "properties": {
        **_EDIT_FIELDS,
        "image": {"type": "array", "maxItems": 3, "items": {"type": "string", "format": "binary"}},
    },
}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is ``schema``."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def json_or_form_body(schema: dict[str, Any], form: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route that takes a JSON body or a ``multipart/form-data`` one."""
    content = {"application/json": {"schema": schema}, "multipart/form-data": {"schema": form}}
    return {"requestBody": {"required": True, "content": content}}
