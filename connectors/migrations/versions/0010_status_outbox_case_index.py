"""The status-change outbox indexed by case number: the supervision pass reads each chunk's
licence and penalty decisions by case (without it, every chunk scanned the whole outbox).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

from connectors.migrate import zone_has

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if zone_has("status_outbox"):
        op.create_index("ix_status_outbox_case_number", "status_outbox", ["case_number"], unique=False)


def downgrade() -> None:
    if zone_has("status_outbox"):
        op.drop_index("ix_status_outbox_case_number", table_name="status_outbox")
