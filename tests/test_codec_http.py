"""upstreams/http.py directly: transport failures become the gateway's errors in one place, and
sessions are made the way each kind of proxy needs."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp_socks import ProxyConnector

from grok_api.errors import GatewayError, InvalidRequest, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from grok_api.upstreams.http import HTTPOptions, PooledClient, converted, make_session

from .recordings import connector_refused


@pytest.mark.parametrize(
    ("raised", "error", "message"),
    [
        (TimeoutError(), UpstreamTimeout, "up did not answer in time"),
        (aiohttp.ServerTimeoutError(), UpstreamTimeout, "up did not answer in time"),
        (connector_refused(), UpstreamUnavailable, "up is unreachable: [Errno 111] Connection refused"),
        (aiohttp.ClientPayloadError("x"), UpstreamError, "up ended the answer early"),
        (aiohttp.ServerDisconnectedError(), UpstreamError, "up connection failed: ServerDisconnectedError"),
        (ConnectionResetError(), UpstreamError, "up connection failed: ConnectionResetError"),
    ],
)
async def test_transport_failures_become_gateway_errors(
    raised: BaseException, error: type[GatewayError], message: str
) -> None:
    with pytest.raises(error) as info:
        async with converted("up"):
            raise raised
    assert type(info.value) is error and info.value.message == message and info.value.__cause__ is raised


async def test_gateway_errors_and_others_pass_through() -> None:
    own = InvalidRequest("mine")
    with pytest.raises(InvalidRequest) as info:
        async with converted("up"):
            raise own
    assert info.value is own
    with pytest.raises(KeyError):
        async with converted("up"):
            raise KeyError("a bug is not a transport failure")
    async with converted("up"):
        pass


async def test_sessions_per_proxy_kind() -> None:
    plain, proxy = make_session(proxy=None, connect_timeout=3, read_timeout=7, max_connections=9)
    http, http_proxy = make_session(
        proxy="http://p.test:3128", connect_timeout=3, read_timeout=7, max_connections=9
    )
    socks, socks_proxy = make_session(
        proxy="socks5://p.test:1080", connect_timeout=3, read_timeout=7, max_connections=9
    )
    remote, _ = make_session(
        proxy="socks5h://p.test:1080", connect_timeout=3, read_timeout=7, max_connections=9
    )
    try:
        assert (proxy, http_proxy, socks_proxy) == (None, "http://p.test:3128", None)
        for s in (plain, http):
            assert type(s.connector) is aiohttp.TCPConnector and s.connector.limit == 9
            assert s.connector._cached_hosts._ttl == 300  # type: ignore[union-attr]
        for s in (socks, remote):
            assert type(s.connector) is ProxyConnector and s.connector.limit == 9
        assert (socks.connector._rdns, remote.connector._rdns) == (False, True)  # type: ignore[union-attr]
        assert (remote.connector._proxy_host, remote.connector._proxy_port) == ("p.test", 1080)  # type: ignore[union-attr]
        assert (plain.timeout.total, plain.timeout.connect, plain.timeout.sock_read) == (None, 3, 7)
        assert plain.auto_decompress and not plain._raise_for_status
    finally:
        for s in (plain, http, socks, remote):
            await s.close()


async def test_pooled_client() -> None:
    client = PooledClient(
        HTTPOptions(proxy="http://p.test:1", connect_timeout=1, read_timeout=2, max_connections=3)
    )
    assert client.proxy == "http://p.test:1" and client.session.connector.limit == 3  # type: ignore[union-attr]
    assert (client.session.timeout.connect, client.session.timeout.sock_read) == (1, 2)
    await client.aclose()
    assert client.session.closed
    defaults = HTTPOptions()
    assert (defaults.proxy, defaults.connect_timeout, defaults.read_timeout, defaults.max_connections) == (
        None,
        10.0,
        600.0,
        512,
    )
