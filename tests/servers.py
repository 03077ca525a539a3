"""Stand-in servers the tests run beside the gateway (an upstream that answers one way, a proxy,
a trace collector): each on a free port, on an event loop of its own in a thread, and a context
manager. A subclass says what it serves; the loop, the thread and the port are shared here.

(The gateway itself is served by :class:`tests.helpers.ServedApp`, the upstreams' simulator by
``grok_api.simulator``.)
"""

from __future__ import annotations

import asyncio
import threading
from typing import Self

from aiohttp import web

from .helpers import free_socket


class LoopServer:
    """A server run on its own event loop in a thread; ``start`` and ``stop`` run on that loop."""

    def __init__(self) -> None:
        self.sock = free_socket()
        self.port: int = self.sock.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class WebServer(LoopServer):
    """An aiohttp application; a subclass adds its handlers in :meth:`routes`."""

    def routes(self, router: web.UrlDispatcher) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        app = web.Application()
        self.routes(app.router)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    async def stop(self) -> None:
        await self.runner.cleanup()


class StreamServer(LoopServer):
    """A plain TCP server; a subclass handles each connection in :meth:`handle`."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self.writers: set[asyncio.StreamWriter] = set()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.writers.add(writer)
            try:
                await self.handle(reader, writer)
            finally:
                writer.close()
                self.writers.discard(writer)

        self.server = await asyncio.start_server(serve, sock=self.sock)

    async def stop(self) -> None:
        """Closes the server and every connection still open, and lets their handlers end:
        a connection left to the garbage collector after the loop closed is a ResourceWarning
        (an error in the tests) in whatever test runs then."""
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await self.server.wait_closed()
        await asyncio.sleep(0)  # the closed transports finish closing


async def splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Relays bytes both ways between a client and an upstream until each side has ended."""

    async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
        dst.close()

    try:
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)
    finally:
        writer.close()
        up_writer.close()
