"""The audit trail (痕迹管理) in both zones: leaf entries, stored hashes, the head and the
signed checkpoints of the zone's Merkle log (docs/audit.md); in the administration zone,
which outbound bundle carried which checkpoint; in the internet zone, the administration
zone's checkpoints it accepted and published.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if zone_has("audit_unfiled"):
        op.create_table(
            "audit_unfiled",
            sa.Column("lookup", sa.String(length=64), nullable=False),
            sa.Column("event_id", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("seq", sa.BigInteger(), nullable=False),
            sa.Column("entry", sa.Text(), nullable=False),
            sa.Column("at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("lookup", "event_id"),
        )
    if zone_has("audit_published"):
        op.create_table(
            "audit_published",
            sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("root", sa.LargeBinary(), nullable=False),
            sa.Column("note", sa.Text(), nullable=False),
            sa.Column("sequence", sa.BigInteger(), nullable=False),
            sa.Column("bundle", sa.String(length=64), nullable=False),
            sa.Column("at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("size"),
        )
    if zone_has("audit_sent"):
        op.create_table(
            "audit_sent",
            sa.Column("sequence", sa.BigInteger(), autoincrement=False, nullable=False),
            sa.Column("old_size", sa.BigInteger(), nullable=False),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("planned_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("sequence"),
        )
    if not zone_has("audit_entries"):
        return
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("source_key", sa.BigInteger(), nullable=False),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_audit_entries_source", "audit_entries", ["source", "source_key"], unique=False)
    op.create_table(
        "audit_hashes",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("suite", sa.String(length=8), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=True),
        sa.Column("started_after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # The one head row exists from the start, so every append can lock it.
    op.bulk_insert(head, [{"id": 1, "suite": None, "size": 0, "root": None, "started_after": None}])
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("root", sa.LargeBinary(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.Column("cosigned_note", sa.Text(), nullable=True),
        sa.Column("cosigned_at", sa.String(length=40), nullable=True),
        sa.PrimaryKeyConstraint("size"),
    )


def downgrade() -> None:
    if zone_has("audit_published"):
        op.drop_table("audit_published")
    if zone_has("audit_unfiled"):
        op.drop_table("audit_unfiled")
    if zone_has("audit_sent"):
        op.drop_table("audit_sent")
    if not zone_has("audit_entries"):
        return
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_head")
    op.drop_table("audit_hashes")
    op.drop_index("ix_audit_entries_source", table_name="audit_entries")
    op.drop_table("audit_entries")
