"""grok.com's web chat, with the user's own browser session.

The adapter signs in with what the user copied from the browser they are signed in with —
the cookie header (``sso``, ``sso-rw``, ``cf_clearance``, …), the user agent those cookies
were issued to, and any extra headers — and nothing else: it generates no anti-bot tokens,
creates no accounts and rotates no identities or proxies. When grok.com refuses, the client
gets an error that says what to refresh.

Conversations continue upstream (see ``conversations.py``): a follow-up goes to
``/rest/app-chat/conversations/{id}/responses`` with only the new message and the
``parentResponseId`` it follows; anything else starts ``/conversations/new`` with the history
folded into the first message. The answer is NDJSON; ``web_decode.py`` turns it into Events.

Model ids map to grok.com's ``modelName``/``modelMode`` through data (``web_models.json``,
overridable with ``GROK_API_WEB_MODELS_FILE``), since those names change often.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..conversations import Conversations, Handle, Plan, fold
from ..errors import GatewayError, InvalidRequest, ModelNotFound, UpstreamError
from .base import ChatRequest, Event, ModelInfo
from .http import HTTPOptions, read_lines
from .web_decode import REFRESH, THINKING_MODES, WebDecoder, error_from
from .web_transport import WebResponse, make_transport

DEFAULT_MODELS_FILE = Path(__file__).with_name("web_models.json")


@dataclass(slots=True, frozen=True)
class WebModel:
    model_name: str
    model_mode: str | None = None
    is_reasoning: bool = False


def load_models(path: Path | None = None) -> dict[str, WebModel]:
    """The model map: ``{"grok-4": {"modelName": …, "modelMode": …, "isReasoning": false}}``."""
    raw = json.loads((path or DEFAULT_MODELS_FILE).read_text())
    return {
        model_id: WebModel(spec["modelName"], spec.get("modelMode"), bool(spec.get("isReasoning", False)))
        for model_id, spec in raw.items()
        if not model_id.startswith("_")
    }


def session_headers(cookies: str, user_agent: str | None, extra: Mapping[str, str]) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": "*/*",
        "Cookie": cookies,
    }
    if user_agent:
        headers["User-Agent"] = user_agent
    headers.update(extra)
    return headers


class WebUpstream:
    """An :class:`~grok_api.upstreams.base.Upstream` for grok.com's conversation protocol."""

    def __init__(
        self,
        *,
        base_url: str,
        cookies: str,
        conversations: Conversations,
        user_agent: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        models: dict[str, WebModel] | None = None,
        assets_url: str = "https://assets.grok.com",
        thinking: str = "reasoning",
        http: HTTPOptions | None = None,
        impersonate: str | None = None,
        name: str = "web",
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.conversations = conversations
        self.models_map = models if models is not None else load_models()
        self.assets_url = assets_url.rstrip("/")
        self.thinking = thinking
        self._headers = session_headers(cookies, user_agent, extra_headers or {})
        self._transport = make_transport(http or HTTPOptions(max_connections=64), impersonate)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def models(self) -> list[ModelInfo]:
        return [ModelInfo(id=f"{self.name}/{model_id}", owned_by="grok.com") for model_id in self.models_map]

    async def stream(self, request: ChatRequest) -> AsyncIterator[Sequence[Event]]:
        model = self.models_map.get(request.upstream_model)
        if model is None:
            raise ModelNotFound(
                f"grok.com has no model '{request.upstream_model}' here; known: {', '.join(self.models_map)}.",
                param="model",
            )
        _refuse_images(request.messages)
        display = _display(request.body, self.thinking)
        key_id = request.key_id or ""
        plan = await self.conversations.plan(key_id, request.upstream_model, request.messages)
        decoder = WebDecoder(display, self.assets_url, sent_chars=len(plan.message))
        resp = await self._post(plan, model)
        if resp.status == 404 and plan.handle is not None:
            # the conversation is gone upstream (deleted, expired): start again with the history
            await resp.close()
            plan = Plan(fold(request.messages), None)
            decoder = WebDecoder(display, self.assets_url, sent_chars=len(plan.message))
            resp = await self._post(plan, model)
        try:
            if resp.status >= 400 or "html" in resp.headers.get("Content-Type", ""):
                raise await web_error(resp)
            async for batch in _lines(resp, decoder):
                yield batch
        finally:
            await resp.close()
        conversation_id = decoder.conversation_id or (plan.handle.conversation_id if plan.handle else None)
        if conversation_id and decoder.response_id:
            handle = Handle(conversation_id, decoder.response_id)
            await self.conversations.remember(
                key_id, request.upstream_model, request.messages, decoder.answer_text(), handle
            )

    async def _post(self, plan: Plan, model: WebModel) -> WebResponse:
        body: dict[str, Any] = {
            "message": plan.message,
            "modelName": model.model_name,
            "temporary": False,
            "fileAttachments": [],
            "imageAttachments": [],
            "disableSearch": False,
            "enableImageGeneration": True,
            "imageGenerationCount": 2,
            "returnImageBytes": False,
            "sendFinalMetadata": True,
            "isReasoning": model.is_reasoning,
            "toolOverrides": {},
        }
        if model.model_mode:
            body["modelMode"] = model.model_mode
        if plan.handle is None:
            url = f"{self.base_url}/rest/app-chat/conversations/new"
        else:
            url = f"{self.base_url}/rest/app-chat/conversations/{plan.handle.conversation_id}/responses"
            body["parentResponseId"] = plan.handle.response_id
        return await self._transport.post(url, orjson.dumps(body), self._headers)


async def _lines(resp: WebResponse, decoder: WebDecoder) -> AsyncIterator[list[Event]]:
    async for lines in read_lines(resp.chunks()):
        events = decoder.feed(lines)
        if events:
            yield events
    yield decoder.finish()


def _display(body: dict[str, Any], default: str) -> str:
    mode = body.get("thinking_display", default)
    if mode not in THINKING_MODES:
        raise InvalidRequest(
            f"'thinking_display' must be one of {', '.join(THINKING_MODES)}.", param="thinking_display"
        )
    return str(mode)


def _refuse_images(messages: list[dict[str, Any]]) -> None:
    for i, m in enumerate(messages):
        content = m.get("content")
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") != "text" for p in content
        ):
            raise InvalidRequest(
                "The grok.com upstream takes text only; send images to an xAI API model.",
                param=f"messages[{i}].content",
            )


async def web_error(resp: WebResponse) -> GatewayError:
    """grok.com's refusals, with what the user can do about each."""
    raw = await resp.read(64 * 1024)
    text = raw.decode("utf-8", "replace")
    if "html" in resp.headers.get("Content-Type", "") or "Just a moment" in text:
        return UpstreamError(
            f"grok.com answered with a Cloudflare challenge (HTTP {resp.status}): the session's "
            f"cf_clearance cookie is missing, expired or was issued to another browser. {REFRESH}",
            code="web_session_refused",
        )
    try:
        err = (orjson.loads(raw) or {}).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        err = {"message": text[:300]}
    retry = resp.headers.get("Retry-After")
    return error_from(resp.status, err if isinstance(err, dict) else {"message": str(err)}, retry)
