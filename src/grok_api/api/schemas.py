"""The request body of ``POST /v1/chat/completions``, validated strictly.

Fields the gateway knows are checked; fields it does not know are kept (``extra="allow"``)
and forwarded to the upstream untouched, so new OpenAI/xAI parameters work before the
gateway learns them. Validation reads the parsed JSON; the body forwarded is that same dict.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..conversations import text_of
from ..errors import InvalidRequest
from ..jsonbounds import deeper_than

_OPEN = ConfigDict(extra="allow")


class ImageURL(BaseModel):
    model_config = _OPEN
    url: str = Field(min_length=1)
    detail: Literal["auto", "low", "high"] | None = None


class ContentPart(BaseModel):
    model_config = _OPEN
    type: Literal["text", "image_url", "input_audio", "file"]
    text: str | None = None
    image_url: ImageURL | None = None

    @model_validator(mode="after")
    def _has_payload(self) -> ContentPart:
        if self.type == "text" and self.text is None:
            raise ValueError("a text part needs 'text'")
        if self.type == "image_url" and self.image_url is None:
            raise ValueError("an image_url part needs 'image_url'")
        return self


class FunctionCall(BaseModel):
    model_config = _OPEN
    name: str
    arguments: str


class ToolCall(BaseModel):
    model_config = _OPEN
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    model_config = _OPEN
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _role_rules(self) -> Message:
        if self.role in ("system", "developer", "user") and self.content is None:
            raise ValueError(f"a {self.role} message needs 'content'")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs 'tool_call_id'")
        if self.role == "assistant" and self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs 'content' or 'tool_calls'")
        return self


class FunctionDef(BaseModel):
    model_config = _OPEN
    name: str = Field(min_length=1, max_length=64)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    model_config = _OPEN
    type: Literal["function"]
    function: FunctionDef


class NamedFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function"]
    function: NamedFunction


class ResponseFormat(BaseModel):
    model_config = _OPEN
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class StreamOptions(BaseModel):
    model_config = _OPEN
    include_usage: bool | None = None


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``; unknown fields are forwarded upstream."""

    model_config = _OPEN

    model: str = Field(min_length=1, max_length=256)
    messages: list[Message] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    n: Annotated[int, Field(ge=1, le=1)] | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    seed: int | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    user: str | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[ContentPart]", "function-after[_role_rules(), Message]"):
            continue  # union branch names pydantic adds to locations
        elif part[:1].isupper():
            continue  # a model's class name, pydantic's tag for a union branch (NamedToolChoice)
        elif not part.startswith(("function-", "list[", "literal[", "constrained-")):
            out += ("." if out else "") + part
    return out


class Bounds(Protocol):
    max_messages: int
    max_content_chars: int
    max_json_depth: int


def _depth(obj: Any) -> int:
    """How deeply arrays and objects nest (iterative: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in node)
    return deepest


def check_bounds(body: dict[str, Any], bounds: Bounds, raw: bytes | None = None) -> None:
    """Refuses (400) bodies past the configured size limits, before any deeper work.

    The nesting is measured on the raw body's bytes when there is one (no walk in Python).
    """
    deep = (
        deeper_than(raw, bounds.max_json_depth) if raw is not None else _depth(body) > bounds.max_json_depth
    )
    if deep:
        raise InvalidRequest(
            f"The request body nests deeper than {bounds.max_json_depth} levels.", code="too_deep"
        )
    messages = body.get("messages")
    if isinstance(messages, list):
        if len(messages) > bounds.max_messages:
            raise InvalidRequest(
                f"Too many messages: {len(messages)} (at most {bounds.max_messages}).",
                param="messages",
                code="too_many_messages",
            )
        chars = sum(len(text_of(m.get("content"))) for m in messages if isinstance(m, dict))
        if chars > bounds.max_content_chars:
            raise InvalidRequest(
                f"The messages hold {chars} characters (at most {bounds.max_content_chars}).",
                param="messages",
                code="content_too_long",
            )


def validate_chat(body: Any, bounds: Bounds | None = None, raw: bytes | None = None) -> ChatCompletionRequest:
    """The validated request, or a 400 whose ``param`` names the first bad field."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_body")
    if bounds is not None:
        check_bounds(body, bounds, raw)
    try:
        return ChatCompletionRequest.model_validate(body, strict=True)
    except ValidationError as exc:
        # A union reports one error per branch; the deepest one is the specific complaint, and
        # of equally deep ones, the branch whose type matched (a list of 5 stops is too long,
        # not "not a string").
        err = max(
            exc.errors(include_url=False), key=lambda e: (len(e["loc"]), not e["type"].endswith("_type"))
        )
        param = _param(tuple(err["loc"]))
        missing = err["type"] == "missing"
        detail = "is required" if missing else f"is invalid: {err['msg']}"
        raise InvalidRequest(
            f"'{param or 'body'}' {detail}.",
            param=param or None,
            code="missing_field" if missing else "invalid_value",
        ) from None
