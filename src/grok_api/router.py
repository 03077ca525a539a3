"""Model id → upstream. Knows no HTTP framework.

Each upstream is added under its name. A model id ``<name>/<model>`` (e.g. ``web/grok-4``)
goes to that upstream explicitly; an alias from the route map (``GROK_API_ROUTES``, e.g.
``grok-4-web=web/grok-4``) goes where it points; any other id goes to the default upstream.
``models()`` is the union of what the upstreams list plus the aliases, cached for
``models_ttl`` seconds; an upstream that cannot list its models keeps its last good list.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .errors import GatewayError, InvalidRequest
from .upstreams.base import ModelInfo, Upstream

log = logging.getLogger(__name__)


class Router:
    def __init__(self, *, models_ttl: float = 300.0, aliases: dict[str, str] | None = None) -> None:
        self.aliases = dict(aliases or {})
        self.upstreams: dict[str, Upstream] = {}
        self.default: Upstream | None = None
        self.models_ttl = models_ttl
        self._models: dict[str, tuple[float, list[ModelInfo]]] = {}
        self._lock = asyncio.Lock()

    def add(self, upstream: Upstream, *, default: bool = False) -> None:
        self.upstreams[upstream.name] = upstream
        if default or self.default is None:
            self.default = upstream

    def route(self, model: str) -> tuple[Upstream, str]:
        """The upstream for ``model`` and the model id to ask it for."""
        model = self.aliases.get(model, model)
        prefix, sep, rest = model.partition("/")
        if sep and rest and prefix in self.upstreams:
            return self.upstreams[prefix], rest
        if self.default is None:
            raise InvalidRequest("No upstream is configured.", code="no_upstream")
        return self.default, model

    async def models(self) -> list[ModelInfo]:
        async with self._lock:
            now = time.monotonic()
            out: list[ModelInfo] = []
            for name, upstream in self.upstreams.items():
                cached = self._models.get(name)
                if cached is None or cached[0] <= now:
                    cached = await self._refresh(name, upstream, cached, now)
                out.extend(cached[1])
            owners = {m.id: m.owned_by for m in out}
            for alias, target in self.aliases.items():
                owner = owners.get(target) or owners.get(target.partition("/")[2]) or target.partition("/")[0]
                out.append(ModelInfo(id=alias, owned_by=owner))
            return out

    async def _refresh(
        self,
        name: str,
        upstream: Upstream,
        cached: tuple[float, list[ModelInfo]] | None,
        now: float,
    ) -> tuple[float, list[ModelInfo]]:
        try:
            listed = await upstream.models()
        except GatewayError as exc:
            log.warning("could not list models of upstream %s: %s", name, exc.message)
            # keep the stale list, and try again in a while rather than on every request
            entry = (now + min(self.models_ttl, 30.0), cached[1] if cached else [])
        else:
            entry = (now + self.models_ttl, listed)
        self._models[name] = entry
        return entry

    async def aclose(self) -> None:
        for upstream in self.upstreams.values():
            await upstream.aclose()
