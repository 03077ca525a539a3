"""The batched log handler `serve` uses: a burst of lines is one write, nothing is held back long."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time

from grok_api import logs


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def _logger(stream: CountingStream, name: str) -> logging.Logger:
    log = logging.getLogger(name)
    log.handlers[:] = [logs.handler_for("json", stream, batched=True)]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


async def test_a_burst_of_lines_is_one_write_after_the_delay() -> None:
    stream = CountingStream()
    log = _logger(stream, "grok_api.test_batched_burst")
    for i in range(100):
        log.info("line %d", i)
    assert stream.writes == 0 and stream.getvalue() == ""  # held for the delay
    await asyncio.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert [line.split('"msg":"')[1].split('"')[0] for line in lines] == [f"line {i}" for i in range(100)]
    assert stream.writes == 1


async def test_warnings_and_a_full_batch_are_written_at_once() -> None:
    stream = CountingStream()
    log = _logger(stream, "grok_api.test_batched_now")
    log.info("before")
    log.warning("trouble")
    assert stream.getvalue().splitlines()[-1].find('"msg":"trouble"') > 0
    assert len(stream.getvalue().splitlines()) == 2  # the info line went out with it, in order
    handler = log.handlers[0]
    assert isinstance(handler, logs.BatchedStreamHandler)
    for i in range(handler.max_lines):
        log.info("fill %d", i)
    assert len(stream.getvalue().splitlines()) == 2 + handler.max_lines


def test_off_an_event_loop_each_line_is_written_at_once() -> None:
    stream = CountingStream()
    log = _logger(stream, "grok_api.test_batched_sync")
    log.info("no loop here")
    assert '"msg":"no loop here"' in stream.getvalue()


FIELDS = {
    "request_id": "req_1",
    "method": "POST",
    "path": "/v1/chat/completions",
    "status": 200,
    "note": 'a "q" é',
}


async def _access_both_ways(fmt: str) -> tuple[str, str]:
    """One access line written directly (serve's handler) and the same through `logging`
    (the handler wrapped so that the direct path does not recognise it)."""
    direct_out, slow_out = CountingStream(), CountingStream()
    direct = logging.getLogger(f"grok_api.test_access_direct_{fmt}")
    direct.handlers[:] = [logs.handler_for(fmt, direct_out, batched=True)]
    direct.propagate = False
    slow = logging.getLogger(f"grok_api.test_access_slow_{fmt}")
    slow_handler = logs.handler_for(fmt, slow_out, batched=True)
    slow_handler.addFilter(lambda record: True)  # an unknown filter: logging must run it
    slow.handlers[:] = [slow_handler]
    slow.propagate = False
    assert logs.AccessLog(direct)._direct() is not None and logs.AccessLog(slow)._direct() is None
    for log in (direct, slow):
        log.setLevel(logging.INFO)
        logs.AccessLog(log).write(1_700_000_000.25, FIELDS, lambda: "POST /v1/chat/completions 200 1.0ms")
        log.handlers[0].flush()
    return direct_out.getvalue(), slow_out.getvalue()


async def test_a_direct_json_access_line_is_what_logging_would_write() -> None:
    direct, slow = _parsed(*(await _access_both_ways("json")))
    assert direct.pop("ts") == "2023-11-14T22:13:20.250Z"
    slow.pop("ts")  # logging stamps it when written
    assert direct == slow
    assert direct == {
        "level": "info",
        "logger": logs.ACCESS_LOGGER,
        "msg": "POST /v1/chat/completions 200",  # in JSON the fields say the rest
        **FIELDS,
    }


def _parsed(direct: str, slow: str) -> tuple[dict[str, object], dict[str, object]]:
    assert direct.count("\n") == 1 and slow.count("\n") == 1
    return json.loads(direct), json.loads(slow)


async def test_a_direct_text_access_line_is_what_logging_would_write() -> None:
    direct, slow = await _access_both_ways("text")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1_700_000_000)) + ",250"
    assert direct == f"{stamp} INFO grok_api.access [req_1]: POST /v1/chat/completions 200 1.0ms\n"
    assert slow.split(" ", 2)[2] == direct.split(" ", 2)[2]  # all but the time it was written


def test_access_lines_reach_handlers_logging_knows_nothing_of() -> None:
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    log = logging.getLogger("grok_api.test_access_foreign")
    log.handlers[:] = [Keep()]
    log.propagate = False
    log.setLevel(logging.INFO)
    logs.AccessLog(log).write(time.time(), FIELDS, lambda: "GET /health 200 0.1ms")
    assert [r.getMessage() for r in seen] == ["GET /health 200 0.1ms"]
    assert vars(seen[0])["access"] == FIELDS and vars(seen[0])["request_id"] == "req_1"
    log.setLevel(logging.WARNING)
    logs.AccessLog(log).write(time.time(), FIELDS, lambda: "not written")
    assert len(seen) == 1


def test_stamps_match_strftime_across_seconds() -> None:
    for t in (0.0, 1_700_000_000.999, 1_700_000_001.0, 1_700_000_001.5004):
        second = int(t)
        ms = int((t - second) * 1000)
        assert logs.utc_stamp(t) == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{ms:03d}Z"
        assert logs.local_stamp(t) == time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) + f",{ms:03d}"
