"""Builds the router from settings: which upstreams exist, which is the default, the aliases.

- xAI's API when ``XAI_API_KEY`` is set (or in demo mode, or when nothing else is configured,
  so that a request explains what is missing);
- grok.com when ``GROK_API_WEB_COOKIES`` is set (or in demo mode).

``GROK_API_DEFAULT_UPSTREAM=auto`` makes xAI's API the default when it has a key, grok.com
otherwise. ``<upstream>/<model>`` always picks one explicitly.
"""

from __future__ import annotations

from redis.asyncio import Redis

from ..config import Settings
from ..conversations import Conversations, MemoryConversations, RedisConversations
from ..router import Router
from .http import HTTPOptions
from .web import WebUpstream, load_models
from .xai import XAIUpstream


def build_router(settings: Settings, *, demo_url: str | None = None, redis: Redis | None = None) -> Router:
    router = Router(models_ttl=settings.models_cache_ttl, aliases=settings.route_map())
    xai_key = (
        "demo" if demo_url else (settings.xai_api_key.get_secret_value() if settings.xai_api_key else None)
    )
    cookies = (
        "sso=demo"
        if demo_url
        else (settings.web_cookies.get_secret_value() if settings.web_cookies else None)
    )
    http = HTTPOptions(
        proxy=settings.proxy,
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        max_connections=settings.upstream_max_connections,
    )
    if xai_key or not cookies:
        xai = XAIUpstream(
            base_url=(demo_url + "/v1") if demo_url else settings.xai_base_url,
            api_key=xai_key,
            http=http,
        )
        router.add(xai, default=settings.default_upstream in ("auto", "xai"))
    if cookies:
        store = (
            RedisConversations(redis, ttl=settings.conversation_ttl)
            if redis is not None
            else MemoryConversations(ttl=settings.conversation_ttl)
        )
        web = WebUpstream(
            base_url=demo_url or settings.web_base_url,
            cookies=cookies,
            conversations=Conversations(store),
            user_agent=settings.web_user_agent,
            extra_headers=settings.web_extra_headers(),
            models=load_models(settings.web_models_file),
            assets_url=settings.web_assets_url,
            thinking=settings.web_thinking,
            http=http,
        )
        router.add(web, default=settings.default_upstream == "web" or not xai_key)
    return router
