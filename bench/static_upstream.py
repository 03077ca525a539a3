"""A cheap static upstream for benchmarks: canned xAI-format answers from a raw asyncio server.

It does no JSON work and no framework work, so that what a benchmark measures is the thing in
front of it. ``POST /v1/chat/completions`` answers one fixed completion, or a fixed stream of
N content chunks when the body asks for ``"stream":true`` (in one write, or with ``--split``
one write per frame, as a real token stream arrives); ``GET /v1/models`` lists one model.

    python bench/static_upstream.py --port 8091 --chunks 200
"""

from __future__ import annotations

import argparse
import asyncio
import re

import orjson

_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)


def _response(body: bytes, content_type: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def canned(chunks: int) -> tuple[bytes, list[bytes], bytes]:
    usage = {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks}
    completion = {
        "id": "static-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "grok-4.3",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! " * 20},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }
    head = {
        "id": "static-1",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "grok-4.3",
    }
    frames = [
        b"data: "
        + orjson.dumps({**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
    ]
    for i in range(chunks):
        delta = {"content": f"tok{i} "}
        frames.append(b"data: " + orjson.dumps({**head, "choices": [{"index": 0, "delta": delta}]}))
    frames.append(
        b"data: " + orjson.dumps({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    )
    frames.append(b"data: " + orjson.dumps({**head, "choices": [], "usage": usage}))
    frames.append(b"data: [DONE]")
    stream = [f + b"\n\n" for f in frames]
    head_bytes = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: "
        + str(sum(map(len, stream))).encode()
        + b"\r\n\r\n"
    )
    models = orjson.dumps(
        {"object": "list", "data": [{"id": "grok-4.3", "object": "model", "created": 1, "owned_by": "xai"}]}
    )
    return (
        _response(orjson.dumps(completion), b"application/json"),
        [head_bytes, *stream],
        _response(models, b"application/json"),
    )


class StaticProtocol(asyncio.Protocol):
    def __init__(self, answers: tuple[bytes, list[bytes], bytes], split: bool) -> None:
        self.answers = answers
        self.split = split
        self.stream_blob = b"".join(answers[1])
        self.tasks: set[asyncio.Task[None]] = set()
        self.buf = b""
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            m = _LENGTH.search(self.buf, 0, end + 2)
            length = int(m.group(1)) if m else 0
            total = end + 4 + length
            if len(self.buf) < total:
                return
            head, body = self.buf[:end], self.buf[end + 4 : total]
            self.buf = self.buf[total:]
            assert self.transport is not None
            if head.startswith(b"GET"):
                self.transport.write(self.answers[2])
            elif b'"stream":true' in body or b'"stream": true' in body:
                if self.split:
                    task = asyncio.ensure_future(self._dribble(self.transport))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                else:
                    self.transport.write(self.stream_blob)
            else:
                self.transport.write(self.answers[0])

    async def _dribble(self, transport: asyncio.WriteTransport) -> None:
        """Each frame in its own write, with a turn of the loop between: a token stream."""
        for frame in self.answers[1]:
            if transport.is_closing():
                return
            transport.write(frame)
            await asyncio.sleep(0)


async def serve(host: str, port: int, chunks: int, split: bool) -> None:
    answers = canned(chunks)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: StaticProtocol(answers, split), host, port, backlog=2048)
    print(f"static upstream on http://{host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8091)
    p.add_argument("--chunks", type=int, default=200)
    p.add_argument("--split", action="store_true", help="write each stream frame separately")
    a = p.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve(a.host, a.port, a.chunks, a.split))


if __name__ == "__main__":
    main()
