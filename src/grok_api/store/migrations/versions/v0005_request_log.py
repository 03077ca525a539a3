"""The stored request log (GROK_API_REQUEST_LOG_RETENTION): one row per settled request.

Revision ID: 0005_request_log
Revises: 0004_responses
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_request_log"
down_revision = "0004_responses"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_log",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("started_us", sa.BigInteger, nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("model", sa.String(256), nullable=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
    )
    op.create_index("ix_request_log_started_us", "request_log", ["started_us"])
    op.create_index("ix_request_log_key_id", "request_log", ["key_id", "started_us"])
    op.create_index("ix_request_log_request_id", "request_log", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_request_log_request_id", "request_log")
    op.drop_index("ix_request_log_key_id", "request_log")
    op.drop_index("ix_request_log_started_us", "request_log")
    op.drop_table("request_log")
