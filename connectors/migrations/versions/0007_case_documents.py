"""Legal documents (法律文书) the hub renders: one row per document.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if zone_has("case_documents"):
        op.create_table(
            "case_documents",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("kind", sa.String(length=32), nullable=False),
            sa.Column("event_id", sa.Integer(), nullable=False),
            sa.Column("sha256", sa.String(length=64), nullable=False),
            sa.Column("file_name", sa.String(length=255), nullable=False),
            sa.Column("pages", sa.Integer(), nullable=False),
            sa.Column("template_version", sa.String(length=32), nullable=False),
            sa.Column("rendered_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("event_id", "kind", name="uq_case_documents_event_kind"),
        )
        op.create_index("ix_case_documents_case", "case_documents", ["case_number"], unique=False)


def downgrade() -> None:
    if zone_has("case_documents"):
        op.drop_table("case_documents")
