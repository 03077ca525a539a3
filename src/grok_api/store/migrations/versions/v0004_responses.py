"""Stored Responses API answers, owned by the key that made them.

Revision ID: 0004_responses
Revises: 0003_images
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_responses"
down_revision = "0003_images"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "responses",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("upstream", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("response", sa.Text, nullable=False),
        sa.Column("history", sa.Text, nullable=False),
    )
    op.create_index("ix_responses_expires_at", "responses", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_responses_expires_at", "responses")
    op.drop_table("responses")
