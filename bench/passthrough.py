"""The reference point: a bare Starlette + aiohttp pass-through, no auth, no parsing.

It forwards the body bytes to the upstream and streams the answer back unchanged. The
gateway's figures are quoted as a ratio of this one's, measured in the same run.

    python bench/passthrough.py --port 8092 --upstream http://127.0.0.1:8091
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route


def build(upstream: str) -> Starlette:
    state: dict[str, aiohttp.ClientSession] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state["s"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=512))
        yield
        await state["s"].close()

    async def chat(request: Request) -> Response:
        body = await request.body()
        resp = await state["s"].post(
            upstream + "/v1/chat/completions", data=body, headers={"Content-Type": "application/json"}
        )
        if resp.headers.get("content-type", "").startswith("text/event-stream"):

            async def relay() -> AsyncIterator[bytes]:
                async with resp:
                    async for chunk in resp.content.iter_any():
                        yield chunk

            return StreamingResponse(relay(), media_type="text/event-stream")
        async with resp:
            return Response(await resp.read(), media_type="application/json")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])], lifespan=lifespan)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8092)
    p.add_argument("--upstream", default="http://127.0.0.1:8091")
    a = p.parse_args()
    uvicorn.run(build(a.upstream), host="127.0.0.1", port=a.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
