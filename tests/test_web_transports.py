"""The grok.com chat gateway (WebSocket) through an operator's HTTP proxy, and through the
browser-impersonating transport (curl_cffi)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import openai
import pytest

from .helpers import Env, served_env, web_settings
from .servers import StreamServer, splice


class TunnelProxy(StreamServer):
    """A minimal HTTP proxy that relays raw bytes, so a WebSocket upgrade passes through too.

    It takes absolute-form requests (``GET http://host:port/path``, rewritten to origin form)
    and ``CONNECT host:port`` tunnels, and records the request line that opened each connection.
    Host names ending in ``.proxied.test`` exist only here (they are the loopback address), so a
    request that reaches one went through this proxy.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            line, _, rest = head.partition(b"\r\n")
            method, target, version = line.decode().split(" ", 2)
            self.seen.append(f"{method} {target}")
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                up_reader, up_writer = await asyncio.open_connection(_resolve(host), int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                url = urlsplit(target)
                up_reader, up_writer = await asyncio.open_connection(_resolve(url.hostname), url.port or 80)
                path = url.path + (f"?{url.query}" if url.query else "")
                up_writer.write(f"{method} {path} {version}\r\n".encode() + rest)
            await splice(reader, writer, up_reader, up_writer)
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()


def _resolve(host: str | None) -> str:
    return "127.0.0.1" if host and host.endswith(".proxied.test") else str(host)


@pytest.fixture
def proxy() -> Iterator[TunnelProxy]:
    with TunnelProxy() as p:
        yield p


def test_the_chat_gateway_goes_through_the_http_proxy(env: Env, tmp_path: Path, proxy: TunnelProxy) -> None:
    grok = f"http://grok.proxied.test:{env.sim.port}"  # reachable only through the proxy
    settings = web_settings(tmp_path, env.sim, proxy=proxy.url, web_base_url=grok)
    with served_env(settings, env.sim) as proxied:
        client = proxied.new_client()
        content = [
            {"type": "text", "text": "via proxy"},
            {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lGODlhAQABAAAAACw="}},
        ]
        r = client.chat.completions.create(
            model="web/grok-fast", messages=[{"role": "user", "content": content}]
        )
    assert r.choices[0].message.content == "[turn 1] You said: via proxy [attached: 1]"
    # the upload, the session lookup and the socket all reached grok.proxied.test: through the proxy
    assert proxy.seen[0] == f"POST {grok}/http/upload-file-v2/direct"


def test_the_chat_gateway_through_browser_impersonation(env: Env, tmp_path: Path) -> None:
    """GROK_API_WEB_IMPERSONATE: the WebSocket conversation and its refusals through curl_cffi."""
    settings = web_settings(tmp_path, env.sim, web_impersonate="chrome")
    with served_env(settings, env.sim) as impersonating:
        client = impersonating.new_client()
        messages: list[dict[str, str]] = []
        for turn in (1, 2):
            messages.append({"role": "user", "content": f"impersonated {turn}"})
            r = client.chat.completions.create(model="web/grok-fast", messages=messages)  # type: ignore[arg-type]
            answer = r.choices[0].message.content or ""
            assert answer == f"[turn {turn}] You said: impersonated {turn}"
            messages.append({"role": "assistant", "content": answer})
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(
                model="web/grok-fast", messages=[{"role": "user", "content": "x [sim fault=usage_words]"}]
            )
        assert info.value.status_code == 429
    refused = web_settings(tmp_path, env.sim, web_impersonate="chrome", web_cookies="sso=stale; x-userid=u")
    with served_env(refused, env.sim) as refusing:
        client = refusing.new_client()
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="web/grok-fast", messages=[{"role": "user", "content": "x"}])
        assert info.value.status_code == 502
        assert "cf_clearance" in info.value.message
