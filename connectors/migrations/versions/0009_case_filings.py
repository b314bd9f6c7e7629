"""Major-case filings (重大案件报备).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if zone_has("case_filings"):
        op.create_table(
            "case_filings",
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("authority", sa.String(length=100), nullable=False),
            sa.Column("document_no", sa.String(length=64), nullable=False),
            sa.Column("filed_at", sa.String(length=40), nullable=False),
            sa.Column("filed_by", sa.String(length=64), nullable=False),
            sa.Column("recorded_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("case_number"),
        )


def downgrade() -> None:
    if zone_has("case_filings"):
        op.drop_table("case_filings")
