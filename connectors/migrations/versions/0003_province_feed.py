"""The provincial feed (administration zone): per-record sync marks, batches, the scan
position per source, and the catalogue files pulled from the province.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CREATED = ["province_sync", "province_batches", "province_scan", "province_catalogue_files"]


def upgrade() -> None:
    if zone_has("province_sync"):
        op.create_table(
            "province_sync",
            sa.Column("kind", sa.String(length=24), nullable=False),
            sa.Column("record_key", sa.String(length=128), nullable=False),
            sa.Column("mark", sa.String(length=8), nullable=False),
            sa.Column("change_seq", sa.BigInteger(), nullable=False),
            sa.Column("digest", sa.String(length=64), nullable=False),
            sa.Column("record", sa.JSON(), nullable=False),
            sa.Column("changed_at", sa.String(length=40), nullable=False),
            sa.Column("batch_id", sa.String(length=40), nullable=True),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("updated_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("kind", "record_key"),
        )
        op.create_index("ix_province_sync_mark", "province_sync", ["mark", "change_seq"], unique=False)
        op.create_index("ix_province_sync_batch", "province_sync", ["batch_id"], unique=False)
    if zone_has("province_batches"):
        op.create_table(
            "province_batches",
            sa.Column("batch_id", sa.String(length=40), nullable=False),
            sa.Column("sequence", sa.BigInteger(), nullable=False),
            sa.Column("state", sa.String(length=16), nullable=False),
            sa.Column("created_at", sa.String(length=40), nullable=False),
            sa.Column("watermark_from", sa.BigInteger(), nullable=False),
            sa.Column("watermark_to", sa.BigInteger(), nullable=False),
            sa.Column("counts", sa.JSON(), nullable=False),
            sa.Column("manifest_sha256", sa.String(length=64), nullable=True),
            sa.Column("sent_at", sa.String(length=40), nullable=True),
            sa.Column("receipt_at", sa.String(length=40), nullable=True),
            sa.Column("accepted", sa.Integer(), nullable=True),
            sa.Column("rejected", sa.Integer(), nullable=True),
            sa.PrimaryKeyConstraint("batch_id"),
            sa.UniqueConstraint("sequence"),
        )
    if zone_has("province_scan"):
        op.create_table(
            "province_scan",
            sa.Column("kind", sa.String(length=24), nullable=False),
            sa.Column("scanned_to", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("kind"),
        )
    if zone_has("province_catalogue_files"):
        op.create_table(
            "province_catalogue_files",
            sa.Column("sha256", sa.String(length=64), nullable=False),
            sa.Column("remote_name", sa.String(length=255), nullable=False),
            sa.Column("stored_as", sa.String(length=255), nullable=False),
            sa.Column("state", sa.String(length=16), nullable=False),
            sa.Column("pulled_at", sa.String(length=40), nullable=False),
            sa.Column("applied_at", sa.String(length=40), nullable=True),
            sa.Column("report", sa.JSON(), nullable=True),
            sa.PrimaryKeyConstraint("sha256"),
        )


def downgrade() -> None:
    for name in reversed(CREATED):
        if zone_has(name):
            op.drop_table(name)
