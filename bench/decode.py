"""Decoding speed on one core: upstream stream → Events → OpenAI SSE, per token.

    python bench/decode.py [--tokens 200000] [--lines-per-read 32] [--rounds 3]

For grok.com's chat gateway (WebSocket ``response.chunk`` frames, one frame a read, as the
socket delivers them), grok.com's REST NDJSON (``/responses`` line shape) and xAI's SSE chunks
alike, the same token stream is split into reads of N lines, decoded by the upstream's decoder
and encoded by the gateway's ChunkEncoder, as a served stream would be. xAI's Responses event
stream (an ``event:`` line, a ``data:`` line and a blank one per token) is decoded by its own
decoder and encoded by the ResponsesEncoder, and compared with xAI's chat chunks → chat SSE in
the same run; "prose" is text with newlines, quotes and non-ASCII letters in its deltas (JSON
escapes). No network: this is the CPU cost of the translation alone (the process's CPU time, so
that other work on a busy machine does not count).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import orjson

from grok_api.api.responses_encode import ResponsesEncoder
from grok_api.pipeline import Encoder
from grok_api.stream import ChunkEncoder
from grok_api.upstreams.base import Event
from grok_api.upstreams.web_answer import Answer, Display, absolute_link
from grok_api.upstreams.web_decode import WebDecoder
from grok_api.upstreams.web_ws_decode import GatewayDecoder
from grok_api.upstreams.xai import ChunkDecoder
from grok_api.upstreams.xai_responses import ResponsesDecoder

PROSE = ["Hello", ", ", "wörld", "!\n", '"quoted"', " 世界 ", "🎉", "\ttab", " back\\slash", " end.\n\n"]


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


def token(i: int, prose: bool) -> str:
    return PROSE[i % len(PROSE)] if prose else f"tok{i} "


def xai_lines(n: int, prose: bool = False, blank: bool = False) -> list[bytes]:
    """xAI's chat chunks of ``n`` tokens: a ``data:`` line each (and the blank line after it)."""
    head = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "grok-4.3"}
    out: list[bytes] = []
    for i in range(n):
        chunk = {**head, "choices": [{"index": 0, "delta": {"content": token(i, prose)}}]}
        out += [b"data: " + orjson.dumps(chunk), b""] if blank else [b"data: " + orjson.dumps(chunk)]
    out.append(b"data: [DONE]")
    return out


def xai_responses_lines(n: int, prose: bool = False) -> list[bytes]:
    """xAI's Responses stream of ``n`` text deltas: each an ``event:``, a ``data:`` and a blank line."""
    ids = {"item_id": "msg_r-1", "output_index": 0, "content_index": 0}
    events: list[dict[str, object]] = [
        {"type": "response.created", "response": {"id": "r-1", "status": "in_progress", "output": []}},
        {"type": "response.content_part.added", **ids, "part": {"type": "output_text", "text": ""}},
    ]
    events += [
        {"type": "response.output_text.delta", **ids, "delta": token(i, prose), "logprobs": []}
        for i in range(n)
    ]
    usage = {"input_tokens": 12, "output_tokens": n, "total_tokens": 12 + n}
    events.append({"type": "response.completed", "response": {"id": "r-1", "output": [], "usage": usage}})
    out: list[bytes] = []
    for seq, e in enumerate(events):
        out += [
            b"event: " + str(e["type"]).encode(),
            b"data: " + orjson.dumps({"sequence_number": seq, **e}),
            b"",
        ]
    return out


def run(
    lines: list[bytes],
    per_read: int,
    decode: Callable[[list[bytes]], list[Event]],
    tail: Callable[[], list[Event]],
    encoder: Encoder | None = None,
) -> float:
    encoder = encoder or ChunkEncoder("grok-4.3", include_usage=True)
    started = time.process_time()
    size = 0
    for i in range(0, len(lines), per_read):
        size += len(encoder.encode(decode(lines[i : i + per_read])))
    size += len(encoder.encode(tail())) + len(encoder.finish())
    assert size > 0
    return time.process_time() - started


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=200_000)
    p.add_argument("--lines-per-read", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3, help="Responses vs chat: the best of N runs")
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
    responses_vs_chat(n, per, a.rounds)


def responses_vs_chat(n: int, per: int, rounds: int) -> None:
    """xAI's Responses stream → Responses SSE beside xAI's chat chunks → chat SSE, a token per
    read and ``per`` tokens a read (3 lines a token in the Responses stream, 2 in chat's); the
    best of ``rounds`` interleaved runs of each."""
    print(f"  xAI Responses SSE → Responses SSE vs xAI chat SSE → chat SSE (best of {rounds}):")
    for prose in (False, True):
        chat_lines, responses_lines = xai_lines(n, prose, blank=True), xai_responses_lines(n, prose)
        for k in (1, per):
            t_chat = t_resp = float("inf")
            for _ in range(rounds):
                chat = ChunkDecoder("xai")
                t_chat = min(t_chat, run(chat_lines, 2 * k, chat.feed, lambda: []))
                responses = ResponsesDecoder("xai")
                encoder = ResponsesEncoder("grok-4.3", {}, stream=True)
                t_resp = min(t_resp, run(responses_lines, 3 * k, responses.feed, lambda: [], encoder))
                assert responses.done
                assert responses.error is None
            print(
                f"    {'prose' if prose else 'words'}, {k:>2} token(s)/read: Responses {n / t_resp:>10,.0f}"
                f" tokens/s, chat {n / t_chat:>10,.0f} tokens/s (Responses/chat {t_chat / t_resp:.0%})"
            )


if __name__ == "__main__":
    main()
