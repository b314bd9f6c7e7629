"""The sealing key of each case's public status document, derived with its lookup name from
the case number and query password (``rules.query_password.status_keys``). Kept beside
the password, which gives it anyway; rows from before hold none and are derived again when
their next change is published.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if zone_has("query_passwords"):
        op.add_column("query_passwords", sa.Column("seal_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    if zone_has("query_passwords"):
        with op.batch_alter_table("query_passwords") as batch:
            batch.drop_column("seal_key")
