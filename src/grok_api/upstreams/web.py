"""grok.com's web chat, with the user's own browser session.

The adapter signs in with what the user copied from the browser they are signed in with —
the cookie header (``sso``, ``sso-rw``, ``cf_clearance``, ``x-userid``, …), the user agent
those cookies were issued to, and any extra headers — and nothing else: it generates no
anti-bot tokens, creates no accounts and rotates no identities or proxies. When grok.com
refuses, the client gets an error that says what to refresh.

Two protocols (``GROK_API_WEB_PROTOCOL``): ``ws`` (default), grok.com's WebSocket chat gateway
as its web app speaks it now (``web_ws.py``, decoded by ``web_ws_decode.py``); ``rest``, the
older ``/rest/app-chat/conversations`` NDJSON endpoints (``web_decode.py``), kept as a fallback.

Conversations continue upstream (see ``conversations.py``): a follow-up carries only the new
message, the conversation id and the ``parent_response_id`` it follows; anything else starts a
new conversation with the history folded into the first message. A continuation grok.com can
no longer load starts anew the same way.

Model ids map to grok.com's modes through data (``web_models.json``, overridable with
``GROK_API_WEB_MODELS_FILE``), since those names change often.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import orjson

from ..conversations import Conversations, Handle, Plan, fold
from ..errors import InvalidRequest, ModelNotFound, UpstreamError
from .base import ChatRequest, Event, ModelInfo
from .http import HTTPOptions, read_lines
from .web_answer import (
    SOURCE_MODES,
    THINKING_MODES,
    Answer,
    Display,
    absolute_link,
    cloudflare_error,
    error_from,
)
from .web_decode import WebDecoder
from .web_images import MAX_IMAGE_BYTES, ImageCache, session_host
from .web_imagine import PROMPT, generate
from .web_transport import WebResponse, make_transport
from .web_upload import images_in, upload
from .web_ws import Turn, fetch_user_id, gateway_url, open_socket, run_turn, user_id_from_cookies
from .web_ws_decode import ConversationGone, GatewayDecoder

DEFAULT_MODELS_FILE = Path(__file__).with_name("web_models.json")


@dataclass(slots=True, frozen=True)
class WebModel:
    mode: str = "auto"  # the gateway's ``session.model``
    model_name: str = "grok-4"  # REST ``modelName``
    model_mode: str | None = None  # REST ``modelMode``
    is_reasoning: bool = False  # REST ``isReasoning``
    image_count: int = 2  # images grok.com may generate in one answer


@dataclass(slots=True, frozen=True)
class WebOptions:
    """How the adapter speaks to grok.com and shows what it answers (see ``config.py``)."""

    protocol: str = "ws"
    thinking: str = "reasoning"
    sources: str = "inline"
    temporary: bool = True
    heartbeat: float = 25.0
    read_timeout: float = 600.0
    upload_max_bytes: int = 10 * 1024 * 1024
    assets_url: str = "https://assets.grok.com"
    images: str = "link"  # or "proxy": served by the gateway (web_images.py)
    public_url: str = "http://127.0.0.1:8000"
    image_cache_bytes: int = 64 * 1024 * 1024


def load_models(path: Path | None = None) -> dict[str, WebModel]:
    """The model map: ``{"grok-fast": {"mode": "fast", "modelName": …, "modelMode": …}}``."""
    raw = json.loads((path or DEFAULT_MODELS_FILE).read_text())
    return {
        model_id: WebModel(
            mode=str(spec.get("mode", "auto")),
            model_name=str(spec.get("modelName", "grok-4")),
            model_mode=spec.get("modelMode"),
            is_reasoning=bool(spec.get("isReasoning", False)),
            image_count=int(spec.get("imageGenerationCount", 2)),
        )
        for model_id, spec in raw.items()
        if not model_id.startswith("_")
    }


class WebUpstream:
    """An :class:`~grok_api.upstreams.base.Upstream` for grok.com's web chat."""

    def __init__(
        self,
        *,
        base_url: str,
        cookies: str,
        conversations: Conversations,
        user_agent: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        models: dict[str, WebModel] | None = None,
        options: WebOptions | None = None,
        image_link: Callable[[str], str] | None = None,
        http: HTTPOptions | None = None,
        impersonate: str | None = None,
        name: str = "web",
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.conversations = conversations
        self.models_map = models if models is not None else load_models()
        self.options = options or WebOptions()
        absolute = absolute_link(self.options.assets_url)
        self.images: ImageCache | None = None
        if self.options.images == "proxy":
            cache = self.images = ImageCache(
                self._fetch_asset,
                public_url=self.options.public_url,
                max_bytes=self.options.image_cache_bytes,
            )
            image_link = image_link or (lambda url: cache.link(absolute(url)))
        self.image_link = image_link or absolute
        self._cookies = cookies
        self._session = {"Cookie": cookies, **({"User-Agent": user_agent} if user_agent else {})}
        self._session.update(extra_headers or {})
        self._user_id = user_id_from_cookies(cookies)
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
        if request.kind == "image_edit":
            raise InvalidRequest(
                "The gateway does not edit images on grok.com: use one of xAI's image models "
                "(e.g. grok-imagine-image) for POST /v1/images/edits.",
                param="model",
                code="unsupported_model",
            )
        if request.kind == "image":
            yield await generate(
                request, model.image_count, self._drawer(model), self.image_link, self._image
            )
            return
        _refuse_tools(request.body)
        display = _display(request.body, self.options)
        if self.options.protocol == "rest":
            _refuse_images(request.messages)
            images = []
        else:
            images = images_in(request.messages, self.options.upload_max_bytes)
        key_id = request.key_id or ""
        plan = await self.conversations.plan(key_id, request.upstream_model, request.messages)
        if self.options.protocol == "rest":
            turns = self._rest(request, model, display, plan)
        else:
            ids = [await upload(self._transport, self.base_url, self._session, image) for image in images]
            turns = self._ws(request, model, display, plan, ids)
        handle: Handle | None = None
        answer = ""
        async with aclosing(turns):  # a client that leaves closes the socket (or response) now
            async for batch in turns:
                if isinstance(batch, tuple):
                    handle, answer = batch
                else:
                    yield batch
        if handle is not None:
            await self.conversations.remember(
                key_id, request.upstream_model, request.messages, answer, handle
            )

    def _drawer(self, model: WebModel) -> Callable[[str, int], Awaitable[list[str]]]:
        """Image generation's turn (``web_imagine.py``): the protocol's own, temporary, with the
        images it yields captured as they are linked."""

        async def draw(prompt: str, count: int) -> list[str]:
            drawn: list[str] = []

            def capture(url: str) -> str:
                drawn.append(url)
                return url

            request = ChatRequest(model="", upstream_model="", messages=[], stream=False, body={})
            plan = Plan(PROMPT.format(prompt=prompt), None)
            drawing = replace(model, image_count=count)
            display = Display(thinking="hidden", sources="none")
            if self.options.protocol == "rest":
                turns = self._rest(request, drawing, display, plan, capture)
            else:
                turns = self._ws(request, drawing, display, plan, [], capture)
            async with aclosing(turns):
                async for _ in turns:
                    pass
            return drawn

        return draw

    async def _image(self, path: str) -> bytes:
        return (await self._fetch_asset(absolute_link(self.options.assets_url)(path)))[0]

    async def _fetch_asset(self, url: str) -> tuple[bytes, str]:
        """A generated image, fetched with the user's session (``GROK_API_WEB_IMAGES=proxy``, or
        answered inline). The session goes only to grok.com's own hosts: a link elsewhere (an
        absolute URL in an answer) is refused, never fetched with the cookies."""
        if not session_host(url, self.base_url, self.options.assets_url):
            raise UpstreamError("an image link outside grok.com's hosts; not fetched with your session")
        resp = await self._transport.get(url, self._session)
        try:
            data = await resp.read(MAX_IMAGE_BYTES + 1)
            status, ctype = resp.status, resp.headers.get("Content-Type", "application/octet-stream")
        finally:
            await resp.close()
        if "html" in ctype and status >= 400:
            raise cloudflare_error(status)
        if status >= 400:
            raise error_from(
                status if status in (401, 403, 429) else 502, {"message": f"image fetch: HTTP {status}"}
            )
        if len(data) > MAX_IMAGE_BYTES:
            raise UpstreamError("grok.com's image is larger than the gateway serves")
        return data, ctype

    async def _ws(
        self,
        request: ChatRequest,
        model: WebModel,
        display: Display,
        plan: Plan,
        attachments: list[str],
        link: Callable[[str], str] | None = None,
    ) -> AsyncGenerator[list[Event] | tuple[Handle, str], None]:
        if self._user_id is None:
            self._user_id = await fetch_user_id(self._transport, self.base_url, self._session)
        url, origin = gateway_url(self.base_url, self._user_id)
        headers = {**self._session, "Origin": origin, "Cache-Control": "no-cache", "Pragma": "no-cache"}
        if user_id_from_cookies(self._cookies) is None:
            headers["Cookie"] = f"{self._cookies}; x-userid={self._user_id}"
        while True:
            answer = Answer(display, link or self.image_link, sent_chars=len(plan.message))
            decoder = GatewayDecoder(answer, f"evt_init_{uuid.uuid4()}")
            turn = Turn(
                model.mode, plan.message, plan.handle, self.options.temporary, model.image_count, attachments
            )
            socket = await open_socket(self._transport, url, headers)
            yielded = False
            try:
                async for batch in run_turn(
                    socket,
                    turn,
                    decoder,
                    heartbeat=self.options.heartbeat,
                    read_timeout=self.options.read_timeout,
                ):
                    yielded = True
                    yield batch
            except ConversationGone:
                if yielded or plan.handle is None:
                    raise
                plan = Plan(fold(request.messages), None)  # grok.com lost it: start again with the history
                continue
            finally:
                await socket.close()
            break
        yield answer.finish()
        conversation_id = decoder.conversation_id or (plan.handle.conversation_id if plan.handle else None)
        if conversation_id and decoder.response_id:
            yield Handle(conversation_id, decoder.response_id), answer.answer_text()

    async def _rest(
        self,
        request: ChatRequest,
        model: WebModel,
        display: Display,
        plan: Plan,
        link: Callable[[str], str] | None = None,
    ) -> AsyncGenerator[list[Event] | tuple[Handle, str], None]:
        decoder = WebDecoder(display, link or self.image_link, sent_chars=len(plan.message))
        resp = await self._post(plan, model)
        if resp.status == 404 and plan.handle is not None:
            # the conversation is gone upstream (deleted, expired): start again with the history
            await resp.close()
            plan = Plan(fold(request.messages), None)
            decoder = WebDecoder(display, link or self.image_link, sent_chars=len(plan.message))
            resp = await self._post(plan, model)
        try:
            if resp.status >= 400 or "html" in resp.headers.get("Content-Type", ""):
                raise await web_error(resp)
            async for lines in read_lines(resp.chunks()):
                events = decoder.feed(lines)
                if events:
                    yield events
        finally:
            await resp.close()
        yield decoder.finish()
        conversation_id = decoder.conversation_id or (plan.handle.conversation_id if plan.handle else None)
        if conversation_id and decoder.response_id:
            yield Handle(conversation_id, decoder.response_id), decoder.answer_text()

    async def _post(self, plan: Plan, model: WebModel) -> WebResponse:
        body: dict[str, Any] = {
            "message": plan.message,
            "modelName": model.model_name,
            "temporary": self.options.temporary,
            "fileAttachments": [],
            "imageAttachments": [],
            "disableSearch": False,
            "enableImageGeneration": model.image_count > 0,
            "imageGenerationCount": model.image_count,
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
        headers = {"Content-Type": "application/json", "Accept": "*/*", **self._session}
        return await self._transport.post(url, orjson.dumps(body), headers)


def _display(body: dict[str, Any], options: WebOptions) -> Display:
    mode = body.get("thinking_display", options.thinking)
    if mode not in THINKING_MODES:
        raise InvalidRequest(
            f"'thinking_display' must be one of {', '.join(THINKING_MODES)}.", param="thinking_display"
        )
    sources = body.get("sources_display", options.sources)
    if sources not in SOURCE_MODES:
        raise InvalidRequest(
            f"'sources_display' must be one of {', '.join(SOURCE_MODES)}.", param="sources_display"
        )
    return Display(thinking=str(mode), sources=str(sources))


def _refuse_tools(body: dict[str, Any]) -> None:
    if body.get("tools"):
        raise InvalidRequest(
            "grok.com cannot call tools (function calling); send requests with tools to an xAI API model.",
            param="tools",
        )


def _refuse_images(messages: list[dict[str, Any]]) -> None:
    for i, m in enumerate(messages):
        content = m.get("content")
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") != "text" for p in content
        ):
            raise InvalidRequest(
                "The grok.com REST protocol takes text only: use GROK_API_WEB_PROTOCOL=ws for images.",
                param=f"messages[{i}].content",
            )


async def web_error(resp: WebResponse) -> Exception:
    """grok.com's refusals, with what the user can do about each."""
    raw = await resp.read(64 * 1024)
    text = raw.decode("utf-8", "replace")
    if "html" in resp.headers.get("Content-Type", "") or "Just a moment" in text:
        return cloudflare_error(resp.status)
    try:
        err = (orjson.loads(raw) or {}).get("error") or {}
    except (orjson.JSONDecodeError, AttributeError):
        err = {"message": text[:300]}
    retry = resp.headers.get("Retry-After")
    return error_from(resp.status, err if isinstance(err, dict) else {"message": str(err)}, retry)
