"""The front database (前置库) of the internet zone: the public portal's submissions, read
by intake by keyset and marked carried in the transaction that plans their bundle.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if zone_has("portal_submissions"):
        op.create_table(
            "portal_submissions",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("net_id", sa.String(length=64), nullable=False),
            sa.Column("submitted_at", sa.String(length=40), nullable=False),
            sa.Column("envelope", sa.Text(), nullable=False),
            sa.Column("state", sa.String(length=16), server_default="new", nullable=False),
            sa.Column("sequence", sa.BigInteger(), nullable=True),
            sa.Column("handled_at", sa.String(length=40), nullable=True),
            sa.Column("reason_code", sa.String(length=40), nullable=True),
            sa.Column("reason_detail", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("net_id", name="uq_portal_submissions_net_id"),
        )
        op.create_index("ix_portal_submissions_state_id", "portal_submissions", ["state", "id"], unique=False)
        op.create_index("ix_portal_submissions_sequence", "portal_submissions", ["sequence"], unique=False)


def downgrade() -> None:
    if zone_has("portal_submissions"):
        op.drop_table("portal_submissions")
