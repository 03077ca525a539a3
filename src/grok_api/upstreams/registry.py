"""Builds the router from settings: which upstreams exist, which is the default, the aliases.

Each upstream is wrapped in a :class:`~grok_api.resilience.FailoverUpstream`: xAI's API gets
one target per base URL and credential (both may be comma-separated lists), grok.com one.

- xAI's API when ``XAI_API_KEY`` is set (or in demo mode, or when nothing else is configured,
  so that a request explains what is missing);
- grok.com when ``GROK_API_WEB_COOKIES`` is set (or in demo mode).

``GROK_API_DEFAULT_UPSTREAM=auto`` makes xAI's API the default when it has a key, grok.com
otherwise. ``<upstream>/<model>`` always picks one explicitly.
"""

from __future__ import annotations

from redis.asyncio import Redis

from ..config import Settings, public_url
from ..conversations import Conversations, MemoryConversations, RedisConversations
from ..resilience import FailoverUpstream, Policy
from ..router import Router
from .base import Upstream
from .http import HTTPOptions
from .web import WebOptions, WebUpstream, load_models
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
    policy = Policy(
        retries=settings.upstream_retries,
        backoff_base=settings.upstream_backoff_base,
        backoff_max=settings.upstream_backoff_max,
        first_byte=settings.upstream_first_byte_timeout,
        total=settings.upstream_total_timeout,
        breaker_threshold=settings.breaker_threshold,
        breaker_reset=settings.breaker_reset,
        cooldown_max=settings.upstream_cooldown_max,
    )
    if xai_key or not cookies:
        urls = [demo_url + "/v1"] if demo_url else _split(settings.xai_base_url)
        keys: list[str | None] = list(_split(xai_key)) if xai_key else [None]
        targets: list[tuple[str, Upstream]] = [
            (
                public_url(url) + (f" (key {i + 1})" if len(keys) > 1 else ""),
                XAIUpstream(base_url=url, api_key=key, http=http),
            )
            for url in urls
            for i, key in enumerate(keys)
        ]
        router.add(
            FailoverUpstream("xai", targets, policy), default=settings.default_upstream in ("auto", "xai")
        )
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
            options=WebOptions(
                protocol=settings.web_protocol,
                thinking=settings.web_thinking,
                sources=settings.web_sources,
                temporary=settings.web_temporary,
                heartbeat=settings.web_heartbeat,
                read_timeout=settings.upstream_read_timeout,
                upload_max_bytes=settings.web_upload_max_bytes,
                assets_url=demo_url or settings.web_assets_url,
                images=settings.web_images,
                public_url=settings.public_url or f"http://{settings.host}:{settings.port}",
                image_cache_bytes=settings.web_image_cache_bytes,
            ),
            http=http,
            impersonate=settings.web_impersonate,
        )
        web_failover = FailoverUpstream("web", [(public_url(web.base_url), web)], policy)
        router.add(web_failover, default=settings.default_upstream == "web" or not xai_key)
    return router


def _split(value: str) -> list[str]:
    """Several base URLs or credentials, comma-separated, for failover."""
    return [v.strip() for v in value.split(",") if v.strip()]
