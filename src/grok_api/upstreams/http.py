"""The one place aiohttp sessions are made and aiohttp's exceptions become GatewayErrors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from ..errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable


def make_session(
    *,
    proxy: str | None,
    connect_timeout: float,
    read_timeout: float,
    max_connections: int,
) -> tuple[aiohttp.ClientSession, str | None]:
    """A pooled session for one upstream's life, and the per-request ``proxy`` to pass.

    SOCKS proxies live in the connector; HTTP proxies are given per request, as aiohttp wants.
    """
    timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout, sock_read=read_timeout)
    if proxy and proxy.startswith("socks"):
        from aiohttp_socks import ProxyConnector

        connector: aiohttp.BaseConnector = ProxyConnector.from_url(
            proxy, limit=max_connections, rdns=proxy.startswith("socks5h")
        )
        request_proxy = None
    else:
        connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=300)
        request_proxy = proxy
    session = aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=True, raise_for_status=False
    )
    return session, request_proxy


@asynccontextmanager
async def converted(upstream: str) -> AsyncIterator[None]:
    """Turns transport failures inside the block into the gateway's upstream errors."""
    try:
        yield
    except GatewayError:
        raise
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamTimeout(f"{upstream} did not answer in time") from exc
    except aiohttp.ClientConnectorError as exc:
        raise UpstreamUnavailable(f"{upstream} is unreachable: {exc.os_error}") from exc
    except aiohttp.ClientPayloadError as exc:
        raise UpstreamError(f"{upstream} ended the answer early") from exc
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamError(f"{upstream} connection failed: {type(exc).__name__}") from exc
