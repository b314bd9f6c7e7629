"""Indexes on the inbound bundle of applications and rejections (administration zone), so
reconciliation reads one bundle's records at a time instead of every record of every day.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from alembic import op

from connectors.migrate import zone_has

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEXES = [("ix_applications_bundle", "applications"), ("ix_rejections_bundle", "rejections")]


def upgrade() -> None:
    for name, table in INDEXES:
        if zone_has(table):
            op.create_index(name, table, ["bundle"], unique=False)


def downgrade() -> None:
    for name, table in INDEXES:
        if zone_has(table):
            op.drop_index(name, table_name=table)
