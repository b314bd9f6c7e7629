"""Penalty decisions name the violation of the discretion standard they apply and the
illegal income found, for the discretion check (自由裁量).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if zone_has("penalty_cases"):
        with op.batch_alter_table("penalty_cases") as table:
            table.add_column(sa.Column("violation_code", sa.String(length=32), nullable=True))
            table.add_column(sa.Column("illegal_income", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    if zone_has("penalty_cases"):
        with op.batch_alter_table("penalty_cases") as table:
            table.drop_column("illegal_income")
            table.drop_column("violation_code")
