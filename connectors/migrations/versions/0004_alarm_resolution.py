"""Alarms are resolved, not only raised: when and how (automatically when the condition
cleared, or by an operator with a reason), and when the deployment's notifier was told.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if zone_has("alarms"):
        with op.batch_alter_table("alarms") as table:
            table.add_column(sa.Column("resolved_at", sa.String(length=40), nullable=True))
            table.add_column(sa.Column("resolution", sa.Text(), nullable=True))
            table.add_column(sa.Column("resolved_by", sa.String(length=64), nullable=True))
            table.add_column(sa.Column("notified_at", sa.String(length=40), nullable=True))
        op.create_index("ix_alarms_open", "alarms", ["kind", "resolved_at"], unique=False)


def downgrade() -> None:
    if zone_has("alarms"):
        op.drop_index("ix_alarms_open", table_name="alarms")
        with op.batch_alter_table("alarms") as table:
            for column in ("notified_at", "resolved_by", "resolution", "resolved_at"):
                table.drop_column(column)
