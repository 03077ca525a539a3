"""GROK_API_PROXY: upstream calls go through the operator's HTTP proxy."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from .helpers import Env, gateway_settings, served_env, streamed_text, web_settings
from .servers import StreamServer, WebServer, splice


class ForwardProxy(WebServer):
    """A minimal HTTP forward proxy (absolute-form requests) that counts what it relays."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/{tail:.*}", self.relay)

    async def relay(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(f"{request.method} {request.url}")
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, str(request.url), data=await request.read(), headers=request.headers
            ) as upstream,
        ):
            resp = web.StreamResponse(status=upstream.status, headers={"Content-Type": upstream.content_type})
            await resp.prepare(request)
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as p:
        yield p


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_calls_go_through_the_http_proxy(env: Env, proxy: ForwardProxy, stream: bool) -> None:
    settings = gateway_settings(env.settings.data_dir, env.sim, proxy=proxy.url)
    with served_env(settings, env.sim) as proxied:
        result = proxied.new_client("proxied").chat.completions.create(
            model="grok-4.20-non-reasoning",
            messages=[{"role": "user", "content": "via proxy"}],
            stream=stream,
        )
        text = streamed_text(result) if stream else result.choices[0].message.content  # type: ignore[union-attr]
    assert text == "[turn 1] You said: via proxy"
    assert proxy.seen == [f"POST {env.sim.base_url}/v1/chat/completions"]


def test_grok_com_calls_go_through_the_http_proxy(env: Env, proxy: ForwardProxy) -> None:
    settings = web_settings(
        env.settings.data_dir, env.sim, proxy=proxy.url, web_protocol="rest"
    )  # the WebSocket protocol through a proxy: test_web_transports.py
    with served_env(settings, env.sim) as proxied:
        r = proxied.new_client("proxied-web").chat.completions.create(
            model="web/grok-4", messages=[{"role": "user", "content": "via proxy"}]
        )
    assert r.choices[0].message.content == "[turn 1] You said: via proxy"
    assert proxy.seen == [f"POST {env.sim.base_url}/rest/app-chat/conversations/new"]


class Socks5Proxy(StreamServer):
    """A minimal SOCKS5 server (no authentication, CONNECT only) that counts its tunnels."""

    def __init__(self) -> None:
        super().__init__()
        self.tunnels: list[tuple[str, int]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            _version, n = await reader.readexactly(2)
            await reader.readexactly(n)
            writer.write(b"\x05\x00")  # no authentication
            _v, _cmd, _rsv, kind = await reader.readexactly(4)
            if kind == 1:
                host = socket.inet_ntoa(await reader.readexactly(4))
            else:
                host = (await reader.readexactly((await reader.readexactly(1))[0])).decode()
            port = int.from_bytes(await reader.readexactly(2), "big")
            self.tunnels.append((host, port))
            up_reader, up_writer = await asyncio.open_connection(host, port)
            writer.write(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + port.to_bytes(2, "big"))
            await splice(reader, writer, up_reader, up_writer)
        except (OSError, asyncio.IncompleteReadError):
            writer.close()


def test_upstream_calls_go_through_a_socks5_proxy(env: Env) -> None:
    with Socks5Proxy() as socks:
        settings = gateway_settings(env.settings.data_dir, env.sim, proxy=f"socks5://127.0.0.1:{socks.port}")
        with served_env(settings, env.sim) as proxied:
            client = proxied.new_client("socks")
            r = client.chat.completions.create(
                model="grok-4.20-non-reasoning", messages=[{"role": "user", "content": "via socks"}]
            )
            streamed = streamed_text(
                client.chat.completions.create(
                    model="grok-4.20-non-reasoning",
                    messages=[{"role": "user", "content": "streamed"}],
                    stream=True,
                )
            )
    assert r.choices[0].message.content == "[turn 1] You said: via socks"
    assert streamed == "[turn 1] You said: streamed"
    assert socks.tunnels
    assert all(t == ("127.0.0.1", env.sim.port) for t in socks.tunnels)
