"""API keys: issued once, stored only as a SHA-256 hash, looked up by that hash.

A key is ``gk-`` followed by 43 URL-safe characters (256 random bits). Because keys carry that
much entropy, one fast hash is the right store (a slow password hash adds nothing against
guessing and would cost every cache miss); the lookup is by the hash, and the record's hash is
compared again in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
import sqlalchemy as sa

from .db import Database
from .tables import LIMIT_FIELDS, api_keys

KEY_PREFIX = "gk-"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True, frozen=True)
class Limits:
    """A key's limits; ``None`` is unlimited. Budgets count tokens (prompt + completion)."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    budget_day: int | None = None
    budget_month: int | None = None
    budget_total: int | None = None

    @property
    def any(self) -> bool:
        return not (
            self.rpm is None
            and self.tpm is None
            and self.concurrency is None
            and self.budget_day is None
            and self.budget_month is None
            and self.budget_total is None
        )

    def as_dict(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in LIMIT_FIELDS}


NO_LIMITS = Limits()


@dataclass(slots=True, frozen=True)
class KeyRecord:
    id: str
    name: str
    key_hash: str
    key_prefix: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None
    last_used_at: int | None = None
    models: frozenset[str] | None = None
    limits: Limits = NO_LIMITS

    def status(self, now: float | None = None) -> str:
        now = time.time() if now is None else now
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models

    def public(self) -> dict[str, object]:
        """What ``keys list --json`` and the admin API show: never the hash."""
        return {
            "id": self.id,
            "name": self.name,
            "prefix": self.key_prefix,
            "status": self.status(),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "last_used_at": self.last_used_at,
            "models": sorted(self.models) if self.models is not None else None,
            "limits": self.limits.as_dict(),
        }


def _record(row: sa.Row[tuple[object, ...]]) -> KeyRecord:
    m = row._mapping
    models = orjson.loads(m["models"]) if m["models"] else None
    return KeyRecord(
        id=m["id"],
        name=m["name"],
        key_hash=m["key_hash"],
        key_prefix=m["key_prefix"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        revoked_at=m["revoked_at"],
        last_used_at=m["last_used_at"],
        models=frozenset(models) if models is not None else None,
        limits=Limits(**{name: m[name] for name in LIMIT_FIELDS}),
    )


def _models_column(models: frozenset[str] | None) -> str | None:
    return orjson.dumps(sorted(models)).decode() if models is not None else None


# What ``KeyStore.update`` may change; ``UNSET`` leaves a field as it is.
UNSET: object = object()


class KeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        name: str,
        *,
        expires_in: float | None = None,
        models: Iterable[str] | None = None,
        limits: Limits = NO_LIMITS,
    ) -> tuple[KeyRecord, str]:
        """A new key: its record and the key itself, which is never stored."""
        key = new_key()
        now = int(time.time())
        record = KeyRecord(
            id="key_" + secrets.token_hex(8),
            name=name,
            key_hash=hash_key(key),
            key_prefix=key[:8],
            created_at=now,
            expires_at=int(now + expires_in) if expires_in else None,
            models=frozenset(models) if models is not None else None,
            limits=limits,
        )
        async with self.db.engine.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    id=record.id,
                    name=record.name,
                    key_hash=record.key_hash,
                    key_prefix=record.key_prefix,
                    created_at=record.created_at,
                    expires_at=record.expires_at,
                    models=_models_column(record.models),
                    **limits.as_dict(),
                )
            )
        return record, key

    async def update(
        self,
        key_id: str,
        *,
        name: object = UNSET,
        expires_at: object = UNSET,
        models: object = UNSET,
        limits: dict[str, int | None] | None = None,
    ) -> KeyRecord | None:
        """Changes the given fields (``None`` clears a limit, expiry or model list)."""
        values: dict[str, object] = dict(limits or {})
        unknown = set(values) - set(LIMIT_FIELDS)
        if unknown:
            raise ValueError(f"unknown limits: {sorted(unknown)}")
        if name is not UNSET:
            values["name"] = name
        if expires_at is not UNSET:
            values["expires_at"] = expires_at
        if models is not UNSET:
            values["models"] = _models_column(frozenset(models) if models is not None else None)  # type: ignore[call-overload]
        if values:
            async with self.db.engine.begin() as conn:
                await conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(**values))
        return await self.get(key_id)

    async def by_key(self, key: str) -> KeyRecord | None:
        return await self.by_hash(hash_key(key))

    async def by_hash(self, digest: str) -> KeyRecord | None:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(api_keys.select().where(api_keys.c.key_hash == digest))).first()
        if row is None:
            return None
        record = _record(row)
        return record if hmac.compare_digest(record.key_hash, digest) else None

    async def get(self, key_id: str) -> KeyRecord | None:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(api_keys.select().where(api_keys.c.id == key_id))).first()
        return _record(row) if row is not None else None

    async def list(self) -> list[KeyRecord]:
        async with self.db.engine.connect() as conn:
            rows = (
                await conn.execute(api_keys.select().order_by(api_keys.c.created_at, api_keys.c.id))
            ).all()
        return [_record(r) for r in rows]

    async def revoke(self, key_id: str) -> KeyRecord | None:
        """Revokes a key (idempotent); ``None`` if there is no such key."""
        async with self.db.engine.begin() as conn:
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=int(time.time()))
            )
        return await self.get(key_id)

    async def delete(self, key_id: str) -> None:
        async with self.db.engine.begin() as conn:
            await conn.execute(api_keys.delete().where(api_keys.c.id == key_id))

    async def touch(self, last_used: dict[str, int]) -> None:
        """Records when keys were last used: one batch for many requests, off the hot path."""
        if not last_used:
            return
        stmt = (
            api_keys.update()
            .where(api_keys.c.id == sa.bindparam("key_id"))
            .values(last_used_at=sa.bindparam("ts"))
        )
        async with self.db.engine.begin() as conn:
            await conn.execute(stmt, [{"key_id": k, "ts": ts} for k, ts in last_used.items()])
