"""How the grok.com adapter reaches grok.com: aiohttp (default), or curl_cffi presenting the
TLS and HTTP/2 fingerprint of the browser the session was issued to.

A session's cookies (``cf_clearance`` above all) belong to one browser; Cloudflare may also
check that the client *looks* like that browser at the TLS level, which aiohttp does not.
``GROK_API_WEB_IMPERSONATE=chrome`` (or ``chrome131``, ``safari``, ``firefox``…, whatever the
user's browser is) uses curl_cffi, an optional extra (``pip install 'grok-api[browser]'``), to
do so. It sends the same cookies, user agent and headers; it generates nothing.

Both transports speak HTTP (``get``/``post``) and WebSocket (``ws``, for grok.com's chat
gateway). A WebSocket handshake that grok.com refuses is raised as :class:`HandshakeRefused`
with its status and content type, for ``web_answer`` to explain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp

from ..errors import GatewayError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from .http import HTTPOptions, PooledClient, converted, request_body


class WebResponse(Protocol):
    status: int
    headers: Mapping[str, str]

    def chunks(self) -> AsyncIterator[bytes]: ...

    async def read(self, limit: int) -> bytes: ...

    async def close(self) -> None: ...


class WebSocket(Protocol):
    async def send(self, text: str) -> None: ...

    async def receive(self, wait: float) -> bytes | str | None:
        """The next text frame, ``None`` once the socket is closed; ``TimeoutError`` if none came."""
        ...

    async def close(self) -> None: ...


class HandshakeRefused(Exception):
    def __init__(self, status: int, content_type: str = "") -> None:
        super().__init__(f"WebSocket handshake refused: HTTP {status}")
        self.status = status
        self.content_type = content_type


class Transport(Protocol):
    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> WebResponse: ...

    async def get(self, url: str, headers: Mapping[str, str]) -> WebResponse: ...

    async def ws(self, url: str, headers: Mapping[str, str]) -> WebSocket: ...

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


class _AiohttpSocket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse[Any]) -> None:
        self._ws = ws

    async def send(self, text: str) -> None:
        async with converted("grok.com"):
            await self._ws.send_str(text)

    async def receive(self, wait: float) -> bytes | str | None:
        while True:
            try:
                msg = await self._ws.receive(timeout=wait)
            except TimeoutError:
                raise
            except (aiohttp.ClientError, OSError) as exc:
                raise UpstreamError(
                    f"grok.com's chat gateway connection failed: {type(exc).__name__}"
                ) from exc
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                data: bytes | str = msg.data
                return data
            if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return None
            if msg.type == aiohttp.WSMsgType.ERROR:
                raise UpstreamError("grok.com's chat gateway connection failed")

    async def close(self) -> None:
        await self._ws.close()


class AiohttpTransport:
    def __init__(self, http: HTTPOptions) -> None:
        self._client = PooledClient(http)

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> WebResponse:
        async with converted("grok.com"):
            resp = await self._client.session.post(
                url, data=request_body(body), headers=headers, proxy=self._client.proxy
            )
        return _AiohttpResponse(resp)

    async def get(self, url: str, headers: Mapping[str, str]) -> WebResponse:
        async with converted("grok.com"):
            resp = await self._client.session.get(url, headers=headers, proxy=self._client.proxy)
        return _AiohttpResponse(resp)

    async def ws(self, url: str, headers: Mapping[str, str]) -> WebSocket:
        try:
            async with converted("grok.com"):
                ws = await self._client.session.ws_connect(
                    url,
                    headers=headers,
                    proxy=self._client.proxy,
                    autoping=True,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                    max_msg_size=16 * 1024 * 1024,
                    decode_text=False,
                )
        except UpstreamError as exc:
            cause = exc.__cause__
            if isinstance(cause, aiohttp.WSServerHandshakeError):
                ctype = cause.headers.get("Content-Type", "") if cause.headers else ""
                raise HandshakeRefused(cause.status, ctype) from None
            raise
        return _AiohttpSocket(ws)

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

    async def get(self, url: str, headers: Mapping[str, str]) -> WebResponse:
        from curl_cffi.requests.exceptions import RequestException

        try:
            resp = await self._session.get(url, headers=dict(headers), stream=True)
        except RequestException as exc:
            raise _curl_error(exc) from exc
        return _CurlResponse(resp)

    async def ws(self, url: str, headers: Mapping[str, str]) -> WebSocket:
        from curl_cffi import CurlError

        try:
            ws = await self._session.ws_connect(url, headers=dict(headers), max_message_size=16 * 1024 * 1024)
        except CurlError as exc:
            status = _status_in(str(exc))
            if status:
                raise HandshakeRefused(status) from None
            raise UpstreamUnavailable(
                f"grok.com's chat gateway is unreachable: {type(exc).__name__}"
            ) from exc
        return _CurlSocket(ws)

    async def aclose(self) -> None:
        await self._session.close()


def _status_in(message: str) -> int:
    """The HTTP status a refused curl WebSocket handshake reports in its message (0 if none)."""
    import re

    m = re.search(r"\b([45]\d\d)\b", message)
    return int(m.group(1)) if m else 0


class _CurlSocket:
    def __init__(self, ws: Any) -> None:
        self._ws = ws

    async def send(self, text: str) -> None:
        from curl_cffi import CurlError

        try:
            await self._ws.send_str(text)
        except CurlError as exc:
            raise UpstreamError(f"grok.com's chat gateway connection failed: {type(exc).__name__}") from exc

    async def receive(self, wait: float) -> bytes | str | None:
        from curl_cffi import CurlError
        from curl_cffi.requests.websockets import WebSocketClosed, WebSocketTimeout

        try:
            data, _flags = await self._ws.recv(timeout=wait)
        except WebSocketTimeout:
            raise TimeoutError from None
        except WebSocketClosed:
            return None
        except CurlError as exc:
            raise UpstreamError(f"grok.com's chat gateway connection failed: {type(exc).__name__}") from exc
        return bytes(data)

    async def close(self) -> None:
        await self._ws.close()


def make_transport(http: HTTPOptions, impersonate: str | None) -> Transport:
    return CurlTransport(http, impersonate) if impersonate else AiohttpTransport(http)
