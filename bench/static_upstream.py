"""A cheap static upstream for benchmarks: canned xAI-format answers from a raw asyncio server.

It does no JSON work and no framework work, so that what a benchmark measures is the thing in
front of it. ``POST /v1/chat/completions`` answers one fixed completion, or a fixed stream of
N content chunks when the body asks for ``"stream":true`` (in one write, or with ``--split``
one write per frame, as a real token stream arrives); ``POST /v1/responses`` answers the same
N tokens as xAI's Responses event stream; ``GET /v1/models`` lists one model.

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


def responses_stream(chunks: int) -> list[bytes]:
    """The N tokens as xAI streams a Responses answer: one ``data:`` event per token."""
    rid, mid = "static-1", "msg_static-1"
    base = {"id": rid, "object": "response", "model": "grok-4.3", "created_at": 1_700_000_000}
    ids = {"item_id": mid, "output_index": 0, "content_index": 0}
    text = "".join(f"tok{i} " for i in range(chunks))
    part = {"type": "output_text", "text": text, "logprobs": [], "annotations": []}
    item = {"id": mid, "type": "message", "role": "assistant", "status": "completed", "content": [part]}
    usage = {"input_tokens": 12, "output_tokens": chunks, "total_tokens": 12 + chunks}
    events: list[dict[str, object]] = [
        {"type": "response.created", "response": {**base, "status": "in_progress", "output": []}},
        {"type": "response.in_progress", "response": {**base, "status": "in_progress", "output": []}},
        {"type": "response.output_item.added", "output_index": 0, "item": {**item, "content": []}},
        {"type": "response.content_part.added", **ids, "part": {**part, "text": ""}},
    ]
    events += [
        {"type": "response.output_text.delta", **ids, "delta": f"tok{i} ", "logprobs": []}
        for i in range(chunks)
    ]
    events += [
        {"type": "response.output_text.done", **ids, "text": text},
        {"type": "response.content_part.done", **ids, "part": part},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {
            "type": "response.completed",
            "response": {**base, "status": "completed", "output": [item], "usage": usage},
        },
    ]
    frames = [
        b"event: "
        + str(e["type"]).encode()
        + b"\ndata: "
        + orjson.dumps({"sequence_number": n, **e})
        + b"\n\n"
        for n, e in enumerate(events)
    ]
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: "
        + str(sum(map(len, frames))).encode()
        + b"\r\n\r\n"
    )
    return [head, *frames]


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
    def __init__(
        self, answers: tuple[bytes, list[bytes], bytes], split: bool, responses: list[bytes]
    ) -> None:
        self.answers = answers
        self.split = split
        self.stream_blob = b"".join(answers[1])
        self.responses = responses
        self.responses_blob = b"".join(responses)
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
            elif head.startswith(b"POST /v1/responses"):
                self._stream(self.responses, self.responses_blob)
            elif b'"stream":true' in body or b'"stream": true' in body:
                self._stream(self.answers[1], self.stream_blob)
            else:
                self.transport.write(self.answers[0])

    def _stream(self, frames: list[bytes], blob: bytes) -> None:
        assert self.transport is not None
        if self.split:
            task = asyncio.ensure_future(self._dribble(self.transport, frames))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        else:
            self.transport.write(blob)

    async def _dribble(self, transport: asyncio.WriteTransport, frames: list[bytes]) -> None:
        """Each frame in its own write, with a turn of the loop between: a token stream."""
        for frame in frames:
            if transport.is_closing():
                return
            transport.write(frame)
            await asyncio.sleep(0)


async def serve(host: str, port: int, chunks: int, split: bool) -> None:
    answers = canned(chunks)
    responses = responses_stream(chunks)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: StaticProtocol(answers, split, responses), host, port, backlog=2048
    )
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
