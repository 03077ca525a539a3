"""The batched log handler `serve` uses: a burst of lines is one write, nothing is held back long."""

from __future__ import annotations

import asyncio
import io
import logging

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
