"""Ferry receipts, resends, heartbeats and quarantine actions (both zones); the power
catalogue and its publications (administration zone).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if zone_has("catalogue_items"):
        op.create_table(
            "catalogue_items",
            sa.Column("code", sa.String(length=100), nullable=False),
            sa.Column("version", sa.Integer(), nullable=False),
            sa.Column("state", sa.String(length=1), nullable=False),
            sa.Column("document", sa.JSON(), nullable=False),
            sa.Column("content_digest", sa.String(length=64), nullable=False),
            sa.Column("effective_from", sa.String(length=40), nullable=False),
            sa.Column("recorded_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("code", "version"),
        )
    if zone_has("catalogue_publications"):
        op.create_table(
            "catalogue_publications",
            sa.Column("sequence", sa.BigInteger(), nullable=False),
            sa.Column("catalogue_version", sa.String(length=64), nullable=False),
            sa.Column("records", sa.JSON(), nullable=False),
            sa.Column("planned_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("sequence"),
        )
    if zone_has("catalogue_transitions"):
        op.create_table(
            "catalogue_transitions",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("code", sa.String(length=100), nullable=False),
            sa.Column("action", sa.String(length=16), nullable=False),
            sa.Column("from_state", sa.String(length=1), nullable=True),
            sa.Column("to_state", sa.String(length=1), nullable=False),
            sa.Column("from_version", sa.Integer(), nullable=True),
            sa.Column("to_version", sa.Integer(), nullable=False),
            sa.Column("changed_by", sa.String(length=100), nullable=False),
            sa.Column("changed_at", sa.String(length=40), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("approvals", sa.JSON(), nullable=False),
            sa.Column("source", sa.String(length=255), nullable=False),
            sa.Column("recorded_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if zone_has("catalogue_transitions"):
        with op.batch_alter_table("catalogue_transitions", schema=None) as batch_op:
            batch_op.create_index("ix_catalogue_transitions_code", ["code"], unique=False)
    if zone_has("ferry_receipts"):
        op.create_table(
            "ferry_receipts",
            sa.Column("channel", sa.String(length=16), nullable=False),
            sa.Column("carrier", sa.String(length=64), nullable=False),
            sa.Column("carrier_sequence", sa.BigInteger(), nullable=False),
            sa.Column("receipt", sa.JSON(), nullable=False),
            sa.Column("received_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("channel"),
        )
    if zone_has("quarantine_actions"):
        op.create_table(
            "quarantine_actions",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("quarantine_id", sa.Integer(), nullable=False),
            sa.Column("action", sa.String(length=16), nullable=False),
            sa.Column("reason", sa.Text(), nullable=False),
            sa.Column("operator", sa.String(length=64), nullable=False),
            sa.Column("at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if zone_has("ferry_applied"):
        with op.batch_alter_table("ferry_applied", schema=None) as batch_op:
            batch_op.add_column(sa.Column("previous_digest", sa.String(length=64), nullable=True))
            batch_op.add_column(
                sa.Column("kind", sa.String(length=16), server_default="data", nullable=False)
            )
    if zone_has("ferry_sent"):
        with op.batch_alter_table("ferry_sent", schema=None) as batch_op:
            batch_op.add_column(
                sa.Column("kind", sa.String(length=16), server_default="data", nullable=False)
            )
            batch_op.add_column(sa.Column("receipt", sa.JSON(), nullable=True))
            batch_op.add_column(sa.Column("sent_at", sa.String(length=40), nullable=True))
            batch_op.add_column(sa.Column("acknowledged_at", sa.String(length=40), nullable=True))
            batch_op.add_column(
                sa.Column("resent_count", sa.Integer(), server_default="0", nullable=False)
            )
            batch_op.add_column(sa.Column("last_resent_at", sa.String(length=40), nullable=True))
            batch_op.add_column(sa.Column("pruned_at", sa.String(length=40), nullable=True))


def downgrade() -> None:
    for table, columns in (
        (
            "ferry_sent",
            (
                "pruned_at",
                "last_resent_at",
                "resent_count",
                "acknowledged_at",
                "sent_at",
                "receipt",
                "kind",
            ),
        ),
        ("ferry_applied", ("kind", "previous_digest")),
    ):
        with op.batch_alter_table(table) as batch_op:
            for column in columns:
                batch_op.drop_column(column)
    for table in (
        "quarantine_actions",
        "ferry_receipts",
        "catalogue_transitions",
        "catalogue_publications",
        "catalogue_items",
    ):
        if zone_has(table):
            op.drop_table(table)
