"""grok.com's generated images, served by the gateway (``GROK_API_WEB_IMAGES=proxy``).

grok.com's asset URLs only answer a request that carries the session, so a client given the
plain link often sees a dead image. In ``proxy`` mode each generated image gets an unguessable
link on the gateway instead (``<GROK_API_PUBLIC_URL>/v1/web/images/<token>``); the first request
for it fetches the image with the user's session, and the bytes stay in a cache capped at
``GROK_API_WEB_IMAGE_CACHE_BYTES`` (least recently used go first). Links live as long as this
process remembers them (the newest :data:`MAX_LINKS`); an image larger than the whole cache is
served but not kept. The links need no API key (Markdown renderers fetch them without one):
the token is the secret.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

MAX_LINKS = 50_000
MAX_IMAGE_BYTES = 32 * 1024 * 1024

Fetch = Callable[[str], Awaitable[tuple[bytes, str]]]


class ImageCache:
    def __init__(self, fetch: Fetch, *, public_url: str, max_bytes: int) -> None:
        self.fetch = fetch
        self.public_url = public_url.rstrip("/")
        self.max_bytes = max_bytes
        self._links: OrderedDict[str, str] = OrderedDict()  # token -> asset URL
        self._bytes: OrderedDict[str, tuple[bytes, str]] = OrderedDict()  # token -> (data, type)
        self._size = 0

    def link(self, asset_url: str) -> str:
        """The gateway's link for an (absolute) asset URL."""
        token = secrets.token_urlsafe(18)
        self._links[token] = asset_url
        while len(self._links) > MAX_LINKS:
            old, _ = self._links.popitem(last=False)
            self._drop(old)
        return f"{self.public_url}/v1/web/images/{token}"

    async def get(self, token: str) -> tuple[bytes, str] | None:
        """The image behind a link (fetched with the session on first use); None if unknown."""
        cached = self._bytes.get(token)
        if cached is not None:
            self._bytes.move_to_end(token)
            return cached
        url = self._links.get(token)
        if url is None:
            return None
        data, ctype = await self.fetch(url)
        if len(data) <= self.max_bytes:
            self._bytes[token] = (data, ctype)
            self._size += len(data)
            while self._size > self.max_bytes:
                old, _ = next(iter(self._bytes.items()))
                self._drop(old)
        return data, ctype

    def _drop(self, token: str) -> None:
        item = self._bytes.pop(token, None)
        if item is not None:
            self._size -= len(item[0])


def session_host(url: str, *own: str) -> bool:
    """Whether ``url`` is on one of the ``own`` URLs' hosts (or a subdomain of one): where the
    user's grok.com session may be sent."""
    host = (urlsplit(url).hostname or "").lower()
    for base in own:
        mine = (urlsplit(base).hostname or "").lower()
        if mine and (host == mine or host.endswith("." + mine)):
            return True
    return False


def find_cache(upstreams: Iterable[Any]) -> ImageCache | None:
    """The image cache of the first grok.com upstream that keeps one (behind its failover)."""
    for upstream in upstreams:
        for candidate in [upstream, *(t.upstream for t in getattr(upstream, "targets", []))]:
            cache = getattr(candidate, "images", None)
            if isinstance(cache, ImageCache):
                return cache
    return None
