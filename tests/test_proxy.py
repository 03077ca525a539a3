"""GROK_API_PROXY: upstream calls go through the operator's HTTP proxy."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from .helpers import Env, ServedApp, free_socket, gateway_settings, web_settings


class ForwardProxy:
    """A minimal HTTP forward proxy (absolute-form requests) that counts what it relays."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

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

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.relay)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    def __enter__(self) -> ForwardProxy:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as p:
        yield p


@pytest.mark.parametrize("stream", [False, True])
def test_upstream_calls_go_through_the_http_proxy(env: Env, proxy: ForwardProxy, stream: bool) -> None:
    settings = gateway_settings(env.settings.data_dir, env.sim, proxy=f"http://127.0.0.1:{proxy.port}")
    with ServedApp(settings) as served:
        _, key = env.create_key("proxied")
        client = env.client(key, base_url=served.base_url + "/v1")
        result = client.chat.completions.create(
            model="grok-4.20-non-reasoning",
            messages=[{"role": "user", "content": "via proxy"}],
            stream=stream,
        )
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in result if c.choices)  # type: ignore[union-attr]
        else:
            text = result.choices[0].message.content  # type: ignore[union-attr]
    assert text == "[turn 1] You said: via proxy"
    assert proxy.seen == [f"POST {env.sim.base_url}/v1/chat/completions"]


def test_grok_com_calls_go_through_the_http_proxy(env: Env, proxy: ForwardProxy) -> None:
    settings = web_settings(
        env.settings.data_dir, env.sim, proxy=f"http://127.0.0.1:{proxy.port}", web_protocol="rest"
    )  # the WebSocket protocol through a proxy: test_web_ws.py
    with ServedApp(settings) as served:
        _, key = env.create_key("proxied-web")
        client = env.client(key, base_url=served.base_url + "/v1")
        r = client.chat.completions.create(
            model="web/grok-4", messages=[{"role": "user", "content": "via proxy"}]
        )
    assert r.choices[0].message.content == "[turn 1] You said: via proxy"
    assert proxy.seen == [f"POST {env.sim.base_url}/rest/app-chat/conversations/new"]


class Socks5Proxy:
    """A minimal SOCKS5 server (no authentication, CONNECT only) that counts its tunnels."""

    def __init__(self) -> None:
        self.tunnels: list[tuple[str, int]] = []
        self.sock = free_socket()
        self.port = self.sock.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

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

            async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                dst.close()

            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)
        except (OSError, asyncio.IncompleteReadError):
            writer.close()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, sock=self.sock)

    def __enter__(self) -> Socks5Proxy:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_upstream_calls_go_through_a_socks5_proxy(env: Env) -> None:
    with Socks5Proxy() as socks:
        settings = gateway_settings(env.settings.data_dir, env.sim, proxy=f"socks5://127.0.0.1:{socks.port}")
        with ServedApp(settings) as served:
            _, key = env.create_key("socks")
            client = env.client(key, base_url=served.base_url + "/v1")
            r = client.chat.completions.create(
                model="grok-4.20-non-reasoning", messages=[{"role": "user", "content": "via socks"}]
            )
            chunks = list(
                client.chat.completions.create(
                    model="grok-4.20-non-reasoning",
                    messages=[{"role": "user", "content": "streamed"}],
                    stream=True,
                )
            )
    assert r.choices[0].message.content == "[turn 1] You said: via socks"
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "[turn 1] You said: streamed"
    )
    assert socks.tunnels
    assert all(t == ("127.0.0.1", env.sim.port) for t in socks.tunnels)
