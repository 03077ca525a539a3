"""GROK_API_PROXY: upstream calls go through the operator's HTTP proxy."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from .conftest import Env, ServedApp, free_socket, gateway_settings


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
            model="grok-3", messages=[{"role": "user", "content": "via proxy"}], stream=stream
        )
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in result if c.choices)  # type: ignore[union-attr]
        else:
            text = result.choices[0].message.content  # type: ignore[union-attr]
    assert text == "[turn 1] You said: via proxy"
    assert proxy.seen == [f"POST {env.sim.base_url}/v1/chat/completions"]


def test_grok_com_calls_go_through_the_http_proxy(env: Env, proxy: ForwardProxy) -> None:
    from .conftest import WEB_AGENT, WEB_COOKIES

    settings = gateway_settings(
        env.settings.data_dir,
        env.sim,
        proxy=f"http://127.0.0.1:{proxy.port}",
        web_cookies=WEB_COOKIES,
        web_user_agent=WEB_AGENT,
        web_base_url=env.sim.base_url,
    )
    with ServedApp(settings) as served:
        _, key = env.create_key("proxied-web")
        client = env.client(key, base_url=served.base_url + "/v1")
        r = client.chat.completions.create(
            model="web/grok-4", messages=[{"role": "user", "content": "via proxy"}]
        )
    assert r.choices[0].message.content == "[turn 1] You said: via proxy"
    assert proxy.seen == [f"POST {env.sim.base_url}/rest/app-chat/conversations/new"]
