"""Stored responses as links: each row keeps its own input and output, and the previous one's id.

A row stored before this migration holds its whole conversation in ``history``; it stays as it
is (a walk along ``previous_response_id`` ends there and takes that history). Its output items
are indexed here, and its ``size`` is its history's bytes.

Revision ID: 0006_response_items
Revises: 0005_request_log
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0006_response_items"
down_revision = "0005_request_log"
branch_labels = None
depends_on = None

_BATCH = 500
_ITEM_ID_MAX = 128

_rows = sa.table(
    "responses",
    sa.column("id", sa.String),
    sa.column("key_id", sa.String),
    sa.column("response", sa.Text),
    sa.column("history", sa.Text),
    sa.column("size", sa.BigInteger),
)
_items = sa.table(
    "response_items",
    sa.column("response_id", sa.String),
    sa.column("position", sa.Integer),
    sa.column("key_id", sa.String),
    sa.column("item_id", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("responses") as batch:
        batch.alter_column("history", existing_type=sa.Text, nullable=True)
        batch.add_column(sa.Column("previous_response_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("input", sa.Text, nullable=True))
        batch.add_column(sa.Column("size", sa.BigInteger, nullable=False, server_default="0"))
        batch.create_index("ix_responses_key_expires", ["key_id", "expires_at"])
    op.create_table(
        "response_items",
        sa.Column("response_id", sa.String(128), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("item_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("response_id", "position"),
    )
    op.create_index("ix_response_items_key_item", "response_items", ["key_id", "item_id"])
    _index_stored_rows(op.get_bind())


def _index_stored_rows(conn: sa.Connection) -> None:
    """Indexes the output items of the rows already stored and sets their sizes, in batches."""
    last = ""
    while True:
        batch = conn.execute(
            sa.select(_rows.c.id, _rows.c.key_id, _rows.c.response, _rows.c.history)
            .where(_rows.c.id > last)
            .order_by(_rows.c.id)
            .limit(_BATCH)
        ).all()
        if not batch:
            return
        items, sizes = [], []
        for rid, key_id, response, history in batch:
            items.extend(_output_ids(rid, key_id, response))
            sizes.append({"row": rid, "bytes": len((history or "").encode())})
        conn.execute(
            sa.update(_rows).where(_rows.c.id == sa.bindparam("row")).values(size=sa.bindparam("bytes")),
            sizes,
        )
        if items:
            conn.execute(sa.insert(_items), items)
        last = batch[-1][0]


def _output_ids(rid: str, key_id: str, response: str) -> list[dict[str, object]]:
    try:
        output = json.loads(response).get("output") or []
    except (ValueError, AttributeError):
        return []
    return [
        {"response_id": rid, "position": i, "key_id": key_id, "item_id": item["id"]}
        for i, item in enumerate(output)
        if isinstance(item, dict) and isinstance(item.get("id"), str) and 0 < len(item["id"]) <= _ITEM_ID_MAX
    ]


def downgrade() -> None:
    """Rows stored as links have no whole history for the older schema: they are removed."""
    op.execute(sa.delete(_rows).where(_rows.c.history.is_(None)))
    op.drop_index("ix_response_items_key_item", "response_items")
    op.drop_table("response_items")
    with op.batch_alter_table("responses") as batch:
        batch.drop_index("ix_responses_key_expires")
        batch.drop_column("size")
        batch.drop_column("input")
        batch.drop_column("previous_response_id")
        batch.alter_column("history", existing_type=sa.Text, nullable=False)
