"""Persistence: SQLAlchemy Core (async) on SQLite or PostgreSQL, migrated by Alembic."""

from .db import Database
from .keys import KeyRecord, KeyStore, Limits
from .usage import UsageRow, UsageStore

__all__ = ["Database", "KeyRecord", "KeyStore", "Limits", "UsageRow", "UsageStore"]
