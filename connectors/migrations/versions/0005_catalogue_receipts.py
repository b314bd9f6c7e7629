"""Catalogue files from the province get a receipt back: when it was sent.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if zone_has("province_catalogue_files"):
        with op.batch_alter_table("province_catalogue_files") as table:
            table.add_column(sa.Column("receipt_sent_at", sa.String(length=40), nullable=True))


def downgrade() -> None:
    if zone_has("province_catalogue_files"):
        with op.batch_alter_table("province_catalogue_files") as table:
            table.drop_column("receipt_sent_at")
