"""The database: an async engine for SQLite (file, owner-only) or PostgreSQL, migrated on open."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

_MIGRATIONS = Path(__file__).parent / "migrations"
_PG_MIGRATION_LOCK = 0x6772_6F6B  # pg_advisory_lock id, so that workers migrate one at a time


class Database:
    """Owns the engine. ``await Database.open(url)`` creates, secures and migrates the store."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10) -> Database:
        engine = create_async_engine(url, **_engine_options(url, pool_size))
        db = cls(engine)
        if db.is_sqlite:
            _secure_sqlite_file(engine.url.database)
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        await db.migrate()
        return db

    async def migrate(self, revision: str = "head") -> None:
        """Brings the schema to the newest migration (or to ``revision``); processes sharing a
        store take turns (an advisory lock on PostgreSQL, a lock file beside a SQLite file)."""
        lock = _sqlite_lock_path(self.engine.url.database) if self.is_sqlite else None
        if lock is None:
            await self._migrate(revision)
            return
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            await self._migrate(revision)
        finally:
            os.close(fd)  # releases the lock

    async def _migrate(self, revision: str) -> None:
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                await conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})"))
            await conn.run_sync(_upgrade, revision)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


async def purge_every(interval: float, purge: Callable[[], Awaitable[int]], what: str) -> None:
    """A background task: ``purge()`` (which returns how many rows it removed) at once and then
    every ``interval`` seconds; a failure is logged and tried again at the next turn."""
    while True:
        try:
            removed = await purge()
            if removed:
                log.info("removed %d %s", removed, what)
        except Exception:
            log.warning("could not remove %s; will retry", what, exc_info=True)
        await asyncio.sleep(interval)


def _engine_options(url: str, pool_size: int) -> dict[str, object]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}, "hide_parameters": True}
    return {
        "hide_parameters": True,
        "pool_size": pool_size,
        "max_overflow": pool_size,
        "pool_pre_ping": True,
        "pool_recycle": 1800,
    }


def _secure_sqlite_file(database: str | None) -> None:
    """Creates the SQLite file (and its folder) readable by the owner only."""
    if not database or database == ":memory:":
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Never open (and close) an existing database file here: closing any descriptor of it
    # drops every POSIX lock this process holds on it, and SQLite's locking breaks.
    if not path.exists():
        with contextlib.suppress(FileExistsError):
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    os.chmod(path, 0o600)


def _sqlite_lock_path(database: str | None) -> Path | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).with_name(Path(database).name + ".migrate-lock")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """WAL lets the CLI write keys while a gateway reads them."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _upgrade(conn: Connection, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)
