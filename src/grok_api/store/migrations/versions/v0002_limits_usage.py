"""Per-key limits and budgets; hourly usage.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_LIMITS = ("rpm", "tpm", "concurrency", "budget_day", "budget_month", "budget_total")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        for name in _LIMITS:
            batch.add_column(sa.Column(name, sa.BigInteger, nullable=True))
    op.create_table(
        "usage_hourly",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("hour", sa.BigInteger, nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("errors", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("reasoning_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("cached_tokens", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("estimated_requests", sa.BigInteger, nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("key_id", "model", "hour"),
    )
    op.create_index("ix_usage_hourly_hour", "usage_hourly", ["hour"])


def downgrade() -> None:
    op.drop_index("ix_usage_hourly_hour", "usage_hourly")
    op.drop_table("usage_hourly")
    with op.batch_alter_table("api_keys") as batch:
        for name in _LIMITS:
            batch.drop_column(name)
