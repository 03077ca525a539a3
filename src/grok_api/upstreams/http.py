"""The one place aiohttp sessions are made and aiohttp's exceptions become GatewayErrors."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

from ..errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable


@dataclass(slots=True, frozen=True)
class HTTPOptions:
    """How an upstream's connections are made: proxy, timeouts, pool size."""

    proxy: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    max_connections: int = 512


class PooledClient:
    """One pooled aiohttp session for an upstream's life; ``proxy`` goes with each request."""

    def __init__(self, options: HTTPOptions) -> None:
        self.session, self.proxy = make_session(
            proxy=options.proxy,
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            max_connections=options.max_connections,
        )

    async def aclose(self) -> None:
        await self.session.close()


async def read_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """The body's complete lines, one list per network read (the last may lack its newline)."""
    buf = b""
    async for data in chunks:
        buf += data
        if b"\n" not in data:
            continue
        lines = buf.split(b"\n")
        buf = lines.pop()
        yield lines
    if buf:
        yield [buf]


_LARGE_BODY = 1 << 20  # aiohttp warns above this that bytes "might lock the event loop"


def request_body(raw: bytes) -> bytes | io.BytesIO:
    """A request body for aiohttp: large ones as a stream, written in pieces."""
    return io.BytesIO(raw) if len(raw) >= _LARGE_BODY else raw


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

        # aiohttp_socks knows no socks5h:// scheme: it is socks5:// with the proxy resolving names
        remote_dns = proxy.startswith("socks5h://")
        connector: aiohttp.BaseConnector = ProxyConnector.from_url(
            proxy.replace("socks5h://", "socks5://", 1), limit=max_connections, rdns=remote_dns
        )
        request_proxy = None
    else:
        connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=300)
        request_proxy = proxy
    session = aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=True, raise_for_status=False
    )
    return session, request_proxy


class converted:  # used as a function: ``async with converted(name):``
    """Turns transport failures inside the block into the gateway's upstream errors.

    A class rather than an ``asynccontextmanager``: it wraps every upstream call, and a
    generator-based manager costs a generator, its frame and a ``throw`` on each.
    """

    __slots__ = ("upstream",)

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is None or isinstance(exc, GatewayError) or not isinstance(exc, Exception):
            return  # nothing, ours already, or not a failure (cancelled, generator closed): as it is
        upstream = self.upstream
        if isinstance(exc, (TimeoutError, aiohttp.ServerTimeoutError)):
            raise UpstreamTimeout(f"{upstream} did not answer in time") from exc
        if isinstance(exc, aiohttp.ClientConnectorError):
            raise UpstreamUnavailable(f"{upstream} is unreachable: {exc.os_error}") from exc
        if isinstance(exc, aiohttp.ClientPayloadError):
            raise UpstreamError(f"{upstream} ended the answer early") from exc
        if isinstance(
            exc, (aiohttp.ClientError, OSError, ValueError)
        ):  # ValueError: a request aiohttp refuses
            raise UpstreamError(f"{upstream} connection failed: {type(exc).__name__}") from exc
