"""Key changes reach every instance: published on a Redis channel, each gateway drops its cache.

Without Redis, a change reaches running gateways when their key cache expires
(``GROK_API_KEY_CACHE_TTL``). With Redis, ``keys revoke``/``keys update`` (CLI or admin API)
publish the key id and every subscribed gateway forgets that key within a second.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

CHANNEL = "grok-api:key-changes"


async def publish(client: aioredis.Redis, key_id: str) -> None:
    await client.publish(CHANNEL, key_id)


async def publish_url(url: str, key_id: str) -> bool:
    """Publishes one change (for the CLI); False when Redis cannot be reached."""
    client = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        await publish(client, key_id)
        return True
    except (RedisError, OSError):
        log.warning("could not announce the key change on Redis; gateways see it within the key-cache TTL")
        return False
    finally:
        await client.aclose()


async def listen(
    client: aioredis.Redis, on_change: Callable[[str], None], *, ready: asyncio.Event | None = None
) -> None:
    """Calls ``on_change(key_id)`` for every change announced, reconnecting after failures."""
    delay = 0.5
    while True:
        try:
            async with client.pubsub() as pubsub:
                await pubsub.subscribe(CHANNEL)
                on_change("*")  # changes missed while not subscribed: forget everything once
                if ready is not None:
                    ready.set()
                delay = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        data = message["data"]
                        on_change(data.decode() if isinstance(data, bytes) else str(data))
        except (RedisError, OSError) as exc:
            log.warning("key-change channel lost (%s); retrying in %.1fs", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
