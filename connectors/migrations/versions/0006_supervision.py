"""Electronic supervision (电子监察): the working-day calendar, case pauses, clocks,
alerts, supervision orders (督办) and the pass's positions; a case's acceptance time and a
step's promised time.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CREATED = [
    "calendar_years", "calendar_exceptions", "case_pauses", "supervision_clocks",
    "supervision_alerts", "supervision_orders", "supervision_dirty", "supervision_positions",
]


def upgrade() -> None:
    if zone_has("cases"):
        with op.batch_alter_table("cases") as table:
            table.add_column(sa.Column("accepted_at", sa.String(length=40), nullable=True))
    if zone_has("case_steps"):
        with op.batch_alter_table("case_steps") as table:
            table.add_column(sa.Column("time_limit", sa.Integer(), nullable=True))
            table.add_column(sa.Column("time_limit_unit", sa.String(length=16), nullable=True))
    if zone_has("calendar_years"):
        op.create_table(
            "calendar_years",
            sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
            sa.Column("source", sa.String(length=255), nullable=False),
            sa.Column("recorded_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("year"),
        )
    if zone_has("calendar_exceptions"):
        op.create_table(
            "calendar_exceptions",
            sa.Column("day", sa.String(length=10), nullable=False),
            sa.Column("kind", sa.String(length=8), nullable=False),
            sa.Column("note", sa.String(length=64), nullable=False),
            sa.Column("source", sa.String(length=255), nullable=False),
            sa.Column("recorded_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("day"),
        )
    if zone_has("case_pauses"):
        op.create_table(
            "case_pauses",
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("pause_no", sa.Integer(), nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("started_at", sa.String(length=40), nullable=False),
            sa.Column("ended_at", sa.String(length=40), nullable=True),
            sa.Column("note", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("case_number", "pause_no"),
        )
    if zone_has("supervision_clocks"):
        op.create_table(
            "supervision_clocks",
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("step_no", sa.Integer(), nullable=False),
            sa.Column("basis", sa.String(length=10), nullable=False),
            sa.Column("limit_value", sa.Integer(), nullable=False),
            sa.Column("unit", sa.String(length=16), nullable=False),
            sa.Column("department", sa.String(length=64), nullable=False),
            sa.Column("power_code", sa.String(length=100), nullable=False),
            sa.Column("started_at", sa.String(length=40), nullable=False),
            sa.Column("due_at", sa.String(length=40), nullable=False),
            sa.Column("finished_at", sa.String(length=40), nullable=True),
            sa.Column("used_seconds", sa.BigInteger(), nullable=False),
            sa.Column("paused_seconds", sa.BigInteger(), nullable=False),
            sa.Column("remaining_seconds", sa.BigInteger(), nullable=False),
            sa.Column("limit_seconds", sa.BigInteger(), nullable=False),
            sa.Column("state", sa.String(length=20), nullable=False),
            sa.Column("level", sa.String(length=10), nullable=True),
            sa.Column("next_check_at", sa.String(length=40), nullable=True),
            sa.Column("read_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("case_number", "step_no", "basis"),
        )
        op.create_index("ix_supervision_clocks_next_check", "supervision_clocks", ["next_check_at"], unique=False)
    if zone_has("supervision_alerts"):
        op.create_table(
            "supervision_alerts",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("rule", sa.String(length=40), nullable=False),
            sa.Column("level", sa.String(length=10), nullable=False),
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("step_no", sa.Integer(), nullable=False),
            sa.Column("department", sa.String(length=64), nullable=False),
            sa.Column("power_code", sa.String(length=100), nullable=False),
            sa.Column("state", sa.String(length=8), nullable=False),
            sa.Column("raised_at", sa.String(length=40), nullable=False),
            sa.Column("escalated_at", sa.String(length=40), nullable=True),
            sa.Column("lifted_at", sa.String(length=40), nullable=True),
            sa.Column("closed_at", sa.String(length=40), nullable=True),
            sa.Column("detail", sa.Text(), nullable=False),
            sa.Column("open_key", sa.String(length=80), nullable=True),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("open_key"),
        )
        op.create_index("ix_supervision_alerts_case", "supervision_alerts", ["case_number"], unique=False)
    if zone_has("supervision_orders"):
        op.create_table(
            "supervision_orders",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("issued_by", sa.String(length=64), nullable=False),
            sa.Column("instruction", sa.Text(), nullable=False),
            sa.Column("deadline", sa.String(length=40), nullable=False),
            sa.Column("issued_at", sa.String(length=40), nullable=False),
            sa.Column("state", sa.String(length=10), nullable=False),
            sa.Column("answered_by", sa.String(length=64), nullable=True),
            sa.Column("answer", sa.Text(), nullable=True),
            sa.Column("answered_at", sa.String(length=40), nullable=True),
            sa.Column("closed_by", sa.String(length=64), nullable=True),
            sa.Column("close_note", sa.Text(), nullable=True),
            sa.Column("closed_at", sa.String(length=40), nullable=True),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_supervision_orders_case", "supervision_orders", ["case_number"], unique=False)
    if zone_has("supervision_dirty"):
        op.create_table(
            "supervision_dirty",
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("since", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("case_number"),
        )
    if zone_has("supervision_positions"):
        op.create_table(
            "supervision_positions",
            sa.Column("name", sa.String(length=32), nullable=False),
            sa.Column("value", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("name"),
        )


def downgrade() -> None:
    for name in reversed(CREATED):
        if zone_has(name):
            op.drop_table(name)
    if zone_has("case_steps"):
        with op.batch_alter_table("case_steps") as table:
            table.drop_column("time_limit_unit")
            table.drop_column("time_limit")
    if zone_has("cases"):
        with op.batch_alter_table("cases") as table:
            table.drop_column("accepted_at")
