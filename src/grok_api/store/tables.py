"""The schema as SQLAlchemy Core tables. Changes to it are Alembic migrations, never edits alone."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

LIMIT_FIELDS = ("rpm", "tpm", "concurrency", "budget_day", "budget_month", "budget_total")

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("key_prefix", sa.String(16), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("revoked_at", sa.BigInteger, nullable=True),
    sa.Column("last_used_at", sa.BigInteger, nullable=True),
    sa.Column("models", sa.Text, nullable=True),
    *(sa.Column(name, sa.BigInteger, nullable=True) for name in LIMIT_FIELDS),
)

USAGE_COUNTERS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "estimated_requests",
    "images",
)

usage_hourly = sa.Table(
    "usage_hourly",
    metadata,
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("hour", sa.BigInteger, nullable=False),
    *(sa.Column(name, sa.BigInteger, nullable=False, server_default="0") for name in USAGE_COUNTERS),
    sa.PrimaryKeyConstraint("key_id", "model", "hour"),
    sa.Index("ix_usage_hourly_hour", "hour"),
)

responses = sa.Table(
    "responses",
    metadata,
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("model", sa.String(256), nullable=False),
    sa.Column("upstream", sa.String(64), nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Column("response", sa.Text, nullable=False),
    # a row stored before 0006 holds its whole conversation here (and no input)
    sa.Column("history", sa.Text, nullable=True),
    sa.Column("previous_response_id", sa.String(128), nullable=True),
    sa.Column("input", sa.Text, nullable=True),  # this turn's own input items
    sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),  # bytes of its conversation
    sa.Index("ix_responses_expires_at", "expires_at"),
    sa.Index("ix_responses_key_expires", "key_id", "expires_at"),
)

# The output items of stored responses by their ids (what an ``item_reference`` names).
response_items = sa.Table(
    "response_items",
    metadata,
    sa.Column("response_id", sa.String(128), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),  # in the response's ``output``
    sa.Column("key_id", sa.String(32), nullable=False),
    sa.Column("item_id", sa.String(128), nullable=False),
    sa.PrimaryKeyConstraint("response_id", "position"),
    sa.Index("ix_response_items_key_item", "key_id", "item_id"),
)

# Every settled request's record (GROK_API_REQUEST_LOG_RETENTION): the columns a filter reads,
# and the record's fields (never a key) as one JSON document.
request_log = sa.Table(
    "request_log",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
    ),
    sa.Column("started_us", sa.BigInteger, nullable=False),  # when it arrived, epoch microseconds
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("key_id", sa.String(32), nullable=True),
    sa.Column("model", sa.String(256), nullable=True),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("fields", sa.Text, nullable=False),
    sa.Index("ix_request_log_started_us", "started_us"),
    sa.Index("ix_request_log_key_id", "key_id", "started_us"),
    sa.Index("ix_request_log_request_id", "request_id"),
)
