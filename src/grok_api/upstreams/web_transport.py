"""How the grok.com adapter reaches grok.com: aiohttp (default), or curl_cffi presenting the
TLS and HTTP/2 fingerprint of the browser the session was issued to.

A session's cookies (``cf_clearance`` above all) belong to one browser; Cloudflare may also
check that the client *looks* like that browser at the TLS level, which aiohttp does not.
``GROK_API_WEB_IMPERSONATE=chrome`` (or ``chrome131``, ``safari``, ``firefox``…, whatever the
user's browser is) uses curl_cffi, an optional extra (``pip install 'grok-api[browser]'``), to
do so. It sends the same cookies, user agent and headers; it generates nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp

from ..errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from .http import HTTPOptions, PooledClient, converted


class WebResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def read(self, limit: int) -> bytes: ...

    async def close(self) -> None: ...


class Transport(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> WebResponse: ...

    async def aclose(self) -> None: ...


class _AiohttpResponse:
    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        async with converted("grok.com"):
            async for data in self._resp.content.iter_any():
                yield data

    async def read(self, limit: int) -> bytes:
        async with converted("grok.com"):
            return await self._resp.content.read(limit)

    async def close(self) -> None:
        self._resp.release()


class AiohttpTransport:
    def __init__(self, http: HTTPOptions) -> None:
        self._client = PooledClient(http)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> WebResponse:
        async with converted("grok.com"):
            resp = await self._client.session.post(url, data=body, headers=headers, proxy=self._client.proxy)
        return _AiohttpResponse(resp)

    async def aclose(self) -> None:
        await self._client.aclose()


def _curl_error(exc: Exception) -> GatewayError:
    from curl_cffi.requests import exceptions as ce

    if isinstance(exc, ce.Timeout):
        return UpstreamTimeout("grok.com did not answer in time")
    if isinstance(exc, ce.ConnectionError | ce.DNSError | ce.ProxyError):
        return UpstreamUnavailable(f"grok.com is unreachable: {type(exc).__name__}")
    return UpstreamError(f"grok.com connection failed: {type(exc).__name__}")


class _CurlResponse:
    def __init__(self, resp: Any) -> None:
        self._resp = resp
        self.status: int = resp.status_code
        self.headers: Mapping[str, str] = resp.headers

    async def chunks(self) -> AsyncIterator[bytes]:
        from curl_cffi.requests.exceptions import RequestException

        try:
            async for data in self._resp.aiter_content():
                yield data
        except RequestException as exc:
            raise _curl_error(exc) from exc

    async def read(self, limit: int) -> bytes:
        body = b""
        async for data in self.chunks():
            body += data
            if len(body) >= limit:
                break
        return body[:limit]

    async def close(self) -> None:
        await self._resp.aclose()


class CurlTransport:
    """curl_cffi's AsyncSession, impersonating the user's browser (TLS/HTTP2 fingerprint)."""

    def __init__(self, http: HTTPOptions, impersonate: str) -> None:
        try:
            from curl_cffi.requests import AsyncSession
        except ImportError as exc:  # the optional extra is missing: say how to get it
            raise RuntimeError(
                "GROK_API_WEB_IMPERSONATE needs curl_cffi: pip install 'grok-api[browser]'"
            ) from exc
        self._session: Any = AsyncSession(
            impersonate=impersonate,
            proxy=http.proxy,
            timeout=(http.connect_timeout, http.read_timeout),
            max_clients=http.max_connections,
        )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> WebResponse:
        from curl_cffi.requests.exceptions import RequestException

        try:
            resp = await self._session.post(url, data=body, headers=dict(headers), stream=True)
        except RequestException as exc:
            raise _curl_error(exc) from exc
        return _CurlResponse(resp)

    async def aclose(self) -> None:
        await self._session.close()


def make_transport(http: HTTPOptions, impersonate: str | None) -> Transport:
    return CurlTransport(http, impersonate) if impersonate else AiohttpTransport(http)
