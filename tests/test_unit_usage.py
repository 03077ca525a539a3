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
from sqlalchemy import exc as sa_exc

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


# --- rows the store refuses, and the cap on rows waiting (the hardening's own code) ---


class SQLState(Exception):
    def __init__(self, sqlstate: object) -> None:
        super().__init__("refused")
        self.sqlstate = sqlstate


def statement_error(orig: BaseException | None) -> sa_exc.StatementError:
    return sa_exc.StatementError("refused", "INSERT", {}, orig)  # type: ignore[arg-type]


def caused(sqlstate: str) -> Exception:
    """asyncpg's way: the driver's error is the DBAPI error's cause."""
    outer = Exception("wrapped")
    outer.__cause__ = SQLState(sqlstate)
    return outer


@pytest.mark.parametrize(
    ("exc", "refused"),
    [
        (sa_exc.DataError("INSERT", {}, Exception("22003")), True),
        (sa_exc.IntegrityError("INSERT", {}, Exception("23505")), True),
        (sa_exc.OperationalError("INSERT", {}, Exception("gone")), False),
        (OSError("store away"), False),
        (ValueError("not a statement error"), False),
        (statement_error(ValueError("bad value")), True),
        (statement_error(UnicodeEncodeError("utf-8", "\udc80", 0, 1, "surrogates")), True),
        (statement_error(SQLState("22003")), True),  # numeric value out of range
        (statement_error(SQLState("23502")), True),  # not-null violation
        (statement_error(SQLState("08006")), False),  # connection failure: retry later
        (statement_error(SQLState("2")), False),
        (statement_error(SQLState(22003)), False),
        (statement_error(SQLState(None)), False),
        (statement_error(caused("22P02")), True),
        (statement_error(caused("57P01")), False),  # admin shutdown
        (statement_error(Exception("no state")), False),
        (statement_error(None), False),
    ],
)
def test_what_counts_as_a_row_the_store_refuses(exc: BaseException, refused: bool) -> None:
    assert usage_module._refused_as_data(exc) is refused


class RefusingStore(FlakyStore):
    """The real store, which refuses (as PostgreSQL would an out-of-range value) any write holding
    a row of model ``bad``, and goes away for the writes listed in ``away`` (by write number)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.attempts = 0
        self.away: set[int] = set()

    async def add(self, rows: list[UsageRow]) -> None:
        self.attempts += 1
        if self.attempts in self.away:
            raise OSError("store away")
        if any(r.model == "bad" for r in rows):
            orig = SQLState("22003")  # numeric value out of range
            raise sa_exc.DBAPIError("INSERT", {}, orig) from orig
        await super().add(rows)


@pytest.fixture
async def refusing(store: FlakyStore) -> RefusingStore:
    return RefusingStore(store.db)


def record_models(rec: UsageRecorder, *models: str) -> None:
    for n, model in enumerate(models, 1):
        rec.record("k", model, Usage(n, n), prompt_estimate=0, delivered_chars=0, error=False)


async def stored(store: UsageStore) -> dict[str, tuple[int, int]]:
    return {r["model"]: (r["requests"], r["prompt_tokens"]) for r in await store.report()}


async def test_a_row_the_store_refuses_is_dropped_and_the_others_are_written(
    refusing: RefusingStore, caplog: pytest.LogCaptureFixture
) -> None:
    dropped: list[int] = []
    errors: list[int] = []
    rec = UsageRecorder(
        refusing, on_dropped=lambda: dropped.append(1), on_flush_error=lambda: errors.append(1)
    )
    record_models(rec, "a", "bad", "c")
    rec.record("k", "bad", Usage(5, 6), prompt_estimate=0, delivered_chars=0, error=False)
    with caplog.at_level("WARNING", logger="grok_api.usage"):
        await rec.flush()
    assert rec.pending() == 0 and dropped == [1] and errors == []
    assert [[r.model for r in w] for w in refusing.writes] == [["a"], ["c"]]  # one by one, after the batch
    assert await stored(refusing) == {"a": (1, 1), "c": (1, 3)}
    (record,) = caplog.records
    assert record.levelname == "ERROR"
    assert record.getMessage() == (
        "usage row refused by the store and dropped: key k, 2 requests, 15 tokens (SQLState)"
    )


async def test_the_store_going_away_while_writing_row_by_row_keeps_the_rest(
    refusing: RefusingStore, caplog: pytest.LogCaptureFixture
) -> None:
    dropped: list[int] = []
    errors: list[int] = []
    rec = UsageRecorder(
        refusing, on_dropped=lambda: dropped.append(1), on_flush_error=lambda: errors.append(1)
    )
    record_models(rec, "a", "bad", "c", "d")
    refusing.away = {4}  # the batch is refused, "a" written, "bad" dropped, then the store is away
    with caplog.at_level("WARNING", logger="grok_api.usage"):
        await rec.flush()
    assert dropped == [1] and errors == [1] and rec.pending() == 2
    assert [r.getMessage() for r in caplog.records][1:] == ["could not write usage; will retry"]
    kept = caplog.records[1]
    assert kept.levelname == "WARNING" and kept.exc_info and isinstance(kept.exc_info[1], OSError)
    record_models(rec, "c")  # meanwhile: merged into the kept row
    await rec.flush()
    assert rec.pending() == 0 and dropped == [1]
    assert await stored(refusing) == {"a": (1, 1), "c": (2, 4), "d": (1, 4)}


async def test_past_max_pending_new_models_fold_into_one_row_per_key(store: FlakyStore) -> None:
    folded: list[int] = []
    rec = UsageRecorder(store, max_pending=2, on_folded=lambda: folded.append(1))
    record_models(rec, "a", "b")
    assert folded == [] and rec.pending() == 2
    record_models(rec, "c", "d", "a")  # c and d fold; a has its own row already
    rec.record("j", "e", Usage(7, 7), prompt_estimate=0, delivered_chars=0, error=False)
    assert folded == [1, 1, 1] and rec.pending() == 4
    await rec.flush()
    got = {(r["key_id"], r["model"]): (r["requests"], r["prompt_tokens"]) for r in await store.report()}
    assert got == {
        ("k", "a"): (2, 4),
        ("k", "b"): (1, 2),
        ("k", usage_module.OVERFLOW_MODEL): (2, 3),
        ("j", usage_module.OVERFLOW_MODEL): (1, 7),
    }


class SlowStore(FlakyStore):
    """A store whose writes wait until ``go`` is set."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.go = asyncio.Event()

    async def add(self, rows: list[UsageRow]) -> None:
        await self.go.wait()
        await super().add(rows)


async def test_a_flush_returns_only_once_a_flush_under_way_has_written(store: FlakyStore) -> None:
    """What the admin API relies on: after ``await flush()`` the usage is readable, also when the
    background flush had just taken the rows and was still writing them."""
    slow = SlowStore(store.db)
    rec = UsageRecorder(slow)
    record_models(rec, "m")
    background = asyncio.create_task(rec.flush())
    await asyncio.sleep(0)  # the background flush has taken the rows and waits on the store
    reader = asyncio.create_task(rec.flush())
    await asyncio.sleep(0.05)
    assert not reader.done()  # it waits for the write under way instead of returning at once
    slow.go.set()
    await reader
    assert await stored(slow) == {"m": (1, 1)}
    await background
