"""usage.py directly, on a real SQLite usage store: what each kind of request is charged, the
hourly rows, token estimates, and flushes that keep the batch when the store is away."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from grok_api import usage as usage_module
from grok_api.config import Settings
from grok_api.store import Database, UsageRow, UsageStore
from grok_api.upstreams.base import Usage
from grok_api.usage import UsageRecorder, estimate_prompt_tokens, estimate_tokens

HOUR = 1_700_002_800  # a whole hour


class FlakyStore(UsageStore):
    """The real store; ``failures`` makes that many writes fail first."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.failures = 0
        self.writes: list[list[UsageRow]] = []

    async def add(self, rows: list[UsageRow]) -> None:
        if self.failures:
            self.failures -= 1
            raise OSError("store away")
        self.writes.append(rows)
        await super().add(rows)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FlakyStore]:
    db = await Database.open(Settings(_env_file=None, data_dir=tmp_path).resolved_database_url())  # type: ignore[call-arg]
    yield FlakyStore(db)
    await db.close()


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    now = SimpleNamespace(t=HOUR + 1800.0)
    monkeypatch.setattr(usage_module, "time", SimpleNamespace(time=lambda: now.t))
    return now


@pytest.mark.parametrize(
    ("chars", "tokens"), [(0, 0), (1, 1), (3, 1), (4, 1), (5, 2), (8, 2), (9, 3), (4000, 1000)]
)
def test_estimate_tokens_rounds_up(chars: int, tokens: int) -> None:
    assert estimate_tokens(chars) == tokens


def test_estimate_prompt_tokens() -> None:
    assert estimate_prompt_tokens([]) == 0
    assert estimate_prompt_tokens([{"role": "user", "content": "12345"}]) == 4 + 2
    parts = [{"type": "text", "text": "abcd"}, {"type": "image_url", "image_url": {"url": "x"}}]
    assert estimate_prompt_tokens([{"content": parts}, {"role": "assistant"}]) == (4 + 1) + 4


def row(**kw: int) -> dict[str, object]:
    base: dict[str, object] = dict.fromkeys(
        (
            "requests",
            "errors",
            "prompt_tokens",
            "completion_tokens",
            "reasoning_tokens",
            "cached_tokens",
            "estimated_requests",
            "images",
        ),
        0,
    )
    return base | {"key_id": "k", "model": "m", "hour": HOUR} | kw


# (usage, prompt estimate, delivered chars, error) -> (charged, the hour's row)
CASES = [
    (
        "reported usage",
        Usage(10, 20, 5, 3),
        99,
        999,
        False,
        30,
        row(requests=1, prompt_tokens=10, completion_tokens=20, reasoning_tokens=5, cached_tokens=3),
    ),
    (
        "reported, then the stream broke",
        Usage(10, 20),
        99,
        999,
        True,
        30,
        row(requests=1, errors=1, prompt_tokens=10, completion_tokens=20),
    ),
    (
        "estimated usage (grok.com)",
        Usage(7, 8, 2, 1, estimated=True),
        99,
        999,
        False,
        15,
        row(requests=1, prompt_tokens=7, completion_tokens=8, estimated_requests=1),
    ),
    (
        "no usage, answer delivered",
        None,
        12,
        9,
        False,
        15,
        row(requests=1, prompt_tokens=12, completion_tokens=3, estimated_requests=1),
    ),
    (
        "no usage, nothing delivered, no error",
        None,
        12,
        0,
        False,
        12,
        row(requests=1, prompt_tokens=12, estimated_requests=1),
    ),
    (
        "client left mid-stream",
        None,
        12,
        5,
        True,
        14,
        row(requests=1, errors=1, prompt_tokens=12, completion_tokens=2, estimated_requests=1),
    ),
    ("refused before anything was produced", None, 12, 0, True, 0, row(requests=1, errors=1)),
]


@pytest.mark.parametrize(
    ("name", "usage", "prompt", "chars", "error", "charged", "stored"), CASES, ids=[c[0] for c in CASES]
)
async def test_what_a_request_is_charged(
    store: FlakyStore,
    name: str,
    usage: Usage | None,
    prompt: int,
    chars: int,
    error: bool,
    charged: int,
    stored: dict[str, object],
) -> None:
    rec = UsageRecorder(store)
    assert rec.record("k", "m", usage, prompt_estimate=prompt, delivered_chars=chars, error=error) == charged
    assert rec.pending() == 1
    await rec.flush()
    assert rec.pending() == 0
    assert [r.as_dict() for r in store.writes[0]] == [stored]
    (reported,) = await store.report()  # and the store holds it
    assert reported["total_tokens"] == charged and reported["estimated"] is bool(stored["estimated_requests"])


async def test_requests_add_up_per_key_model_and_hour(store: FlakyStore, clock: SimpleNamespace) -> None:
    rec = UsageRecorder(store)
    for key, model in (("k", "m"), ("k", "m"), ("k", "other"), ("j", "m")):
        rec.record(key, model, Usage(1, 2), prompt_estimate=0, delivered_chars=0, error=False)
    clock.t = HOUR + 3600.0  # the next hour
    rec.record("k", "m", Usage(1, 2), prompt_estimate=0, delivered_chars=0, error=False)
    assert rec.pending() == 4
    await rec.flush()
    got = {
        (r.key_id, r.model, r.hour): (r.requests, r.prompt_tokens, r.completion_tokens)
        for r in store.writes[0]
    }
    assert got == {
        ("k", "m", HOUR): (2, 2, 4),
        ("k", "other", HOUR): (1, 1, 2),
        ("j", "m", HOUR): (1, 1, 2),
        ("k", "m", HOUR + 3600): (1, 1, 2),
    }


async def test_a_failed_flush_keeps_the_batch_and_merges_it_into_the_next(store: FlakyStore) -> None:
    errors: list[int] = []
    rec = UsageRecorder(store, on_flush_error=lambda: errors.append(1))
    await rec.flush()  # nothing to write: the store is not asked
    assert store.writes == []
    rec.record("k", "m", Usage(1, 1), prompt_estimate=0, delivered_chars=0, error=False)
    store.failures = 1
    await rec.flush()
    assert errors == [1] and rec.pending() == 1 and store.writes == []
    rec.record("k", "m", Usage(2, 2), prompt_estimate=0, delivered_chars=0, error=True)  # same row, meanwhile
    rec.record("j", "m", Usage(5, 5), prompt_estimate=0, delivered_chars=0, error=False)
    await rec.flush()
    assert rec.pending() == 0 and len(store.writes) == 1
    got = {r["key_id"]: (r["requests"], r["errors"], r["prompt_tokens"]) for r in await store.report()}
    assert got == {"k": (2, 1, 3), "j": (1, 0, 5)}


async def test_the_recorder_flushes_every_interval(store: FlakyStore) -> None:
    rec = UsageRecorder(store)
    rec.record("k", "m", Usage(1, 1), prompt_estimate=0, delivered_chars=0, error=False)
    task = asyncio.ensure_future(rec.run(0.01))
    deadline = time.monotonic() + 30
    while rec.pending() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task  # stopped before the store closes
    assert rec.pending() == 0 and len(store.writes) == 1


async def test_one_rows_counters_add_up(store: FlakyStore) -> None:
    rec = UsageRecorder(store)
    for _ in range(2):
        rec.record("k", "m", Usage(1, 2, 3, 4), prompt_estimate=0, delivered_chars=0, error=True)
        rec.record("k", "m", Usage(1, 1, estimated=True), prompt_estimate=0, delivered_chars=0, error=False)
        rec.record("k", "m", None, prompt_estimate=2, delivered_chars=4, error=False, images=3)
    await rec.flush()
    assert [r.as_dict() for r in store.writes[0]] == [
        row(
            requests=6,
            errors=2,
            prompt_tokens=8,
            completion_tokens=8,
            reasoning_tokens=6,
            cached_tokens=8,
            estimated_requests=4,
            images=6,
        )
    ]


async def test_a_request_recorded_during_a_failed_flush_is_merged(
    store: FlakyStore, caplog: pytest.LogCaptureFixture
) -> None:
    rec = UsageRecorder(store)
    rec.record("k", "m", Usage(1, 1), prompt_estimate=0, delivered_chars=0, error=False)
    gate = asyncio.Event()
    original = store.add

    async def slow_failure(rows: list[UsageRow]) -> None:
        await gate.wait()
        raise OSError("store away")

    store.add = slow_failure  # type: ignore[method-assign]
    flushing = asyncio.ensure_future(rec.flush())
    await asyncio.sleep(0.01)
    rec.record("k", "m", Usage(2, 2), prompt_estimate=0, delivered_chars=0, error=False)  # meanwhile
    with caplog.at_level("WARNING", logger="grok_api.usage"):
        gate.set()
        await flushing
    (record,) = caplog.records
    assert record.getMessage() == "could not write usage (1 rows); will retry"
    assert record.exc_info is not None and isinstance(record.exc_info[1], OSError)
    store.add = original  # type: ignore[method-assign]
    await rec.flush()
    assert [r.as_dict() for r in store.writes[0]] == [row(requests=2, prompt_tokens=3, completion_tokens=3)]
