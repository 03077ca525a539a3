"""Decoding speed on one core: upstream stream → Events → OpenAI SSE, per token.

    python bench/decode.py [--tokens 200000] [--lines-per-read 32]

For grok.com's chat gateway (WebSocket ``response.chunk`` frames, one frame a read, as the
socket delivers them), grok.com's REST NDJSON (``/responses`` line shape) and xAI's SSE chunks
alike, the same token stream is split into reads of N lines, decoded by the upstream's decoder
and encoded by the gateway's ChunkEncoder, as a served stream would be. No network: this is
the CPU cost of the translation alone.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import orjson

from grok_api.stream import ChunkEncoder
from grok_api.upstreams.base import Event
from grok_api.upstreams.web_answer import Answer, Display, absolute_link
from grok_api.upstreams.web_decode import WebDecoder
from grok_api.upstreams.web_ws_decode import GatewayDecoder
from grok_api.upstreams.xai import ChunkDecoder


def web_lines(n: int) -> list[bytes]:
    lines = [
        orjson.dumps(
            {
                "result": {
                    "token": f"tok{i} ",
                    "isThinking": False,
                    "isSoftStop": False,
                    "responseId": "r-1",
                    "messageTag": "final",
                }
            }
        )
        for i in range(n)
    ]
    lines.append(
        orjson.dumps(
            {"result": {"modelResponse": {"responseId": "r-1", "message": "…", "generatedImageUrls": []}}}
        )
    )
    return lines


def ws_frames(n: int) -> list[bytes]:
    out = [
        orjson.dumps(
            {
                "session_id": "c-1",
                "event": {
                    "type": "response.chunk",
                    "chunk": {
                        "metadata": {"step_id": 0},
                        "text": {"text": f"tok{i} ", "channel": "CHANNEL_ASSISTANT_RESPONSE"},
                    },
                },
            }
        )
        for i in range(n)
    ]
    out.append(
        orjson.dumps({"event": {"type": "response.done", "response": {"id": "r-1", "status": "completed"}}})
    )
    return out


def ws_decode(decoder: GatewayDecoder) -> Callable[[list[bytes]], list[Event]]:
    def decode(frames: list[bytes]) -> list[Event]:
        out: list[Event] = []
        for f in frames:
            out += decoder.feed(f)
        return out

    return decode


def xai_lines(n: int) -> list[bytes]:
    head = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "grok-4.3"}
    out = [
        b"data: " + orjson.dumps({**head, "choices": [{"index": 0, "delta": {"content": f"tok{i} "}}]})
        for i in range(n)
    ]
    out.append(b"data: [DONE]")
    return out


def run(
    lines: list[bytes],
    per_read: int,
    decode: Callable[[list[bytes]], list[Event]],
    tail: Callable[[], list[Event]],
) -> float:
    encoder = ChunkEncoder("grok-4.3", include_usage=True)
    started = time.perf_counter()
    size = 0
    for i in range(0, len(lines), per_read):
        size += len(encoder.encode(decode(lines[i : i + per_read])))
    size += len(encoder.encode(tail())) + len(encoder.finish())
    assert size > 0
    return time.perf_counter() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=200_000)
    p.add_argument("--lines-per-read", type=int, default=32)
    a = p.parse_args()
    n, per = a.tokens, a.lines_per_read
    print(f"{n:,} tokens, {per} lines a read, one core")
    gw = GatewayDecoder(Answer(Display(), absolute_link("https://assets.grok.com"), sent_chars=100))
    t = run(ws_frames(n), 1, ws_decode(gw), gw.answer.finish)
    print(f"  grok.com WebSocket → SSE, 1 frame/read: {n / t:>12,.0f} tokens/s")
    for per_read in (1, per):
        web = WebDecoder("reasoning", "https://assets.grok.com", sent_chars=100)
        t = run(web_lines(n), per_read, web.feed, web.finish)
        print(f"  grok.com NDJSON → SSE, {per_read:>2} line(s)/read: {n / t:>12,.0f} tokens/s")
        xai = ChunkDecoder("xai")
        t = run(xai_lines(n), per_read, xai.feed, lambda: [])
        print(f"  xAI SSE → SSE,        {per_read:>2} line(s)/read: {n / t:>12,.0f} tokens/s")


if __name__ == "__main__":
    main()
