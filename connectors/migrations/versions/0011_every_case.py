"""Cases of every origin and approved corrections (第十六条, 第十九条): a case's origin, item,
agency and registration time on ``cases`` itself (backfilled from ``applications``); the
acceptor and time limit of 第十六条(二); ``case_registrations`` for the cases the
case-processing system opens itself; ``status_outbox.net_id`` optional (the case number
names such a case); ``case_corrections``; and triggers that refuse deleting case data
except inside a correction (``hub correct``).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Case data a correction may touch: rows are deleted only inside ``hub correct``.
GUARDED = ("cases", "case_registrations", "case_steps", "case_results", "penalty_cases", "case_pauses",
           "case_filings")
REFUSAL = "direct deletion refused: case data is corrected only through hub correct (第十九条)"
OUTBOX_REFUSAL = "status_outbox is append-only: its rows are never updated or deleted"


def upgrade() -> None:
    if not zone_has("cases"):
        return
    with op.batch_alter_table("cases") as table:
        table.alter_column("net_id", existing_type=sa.String(length=64), nullable=True)
        table.add_column(sa.Column("origin", sa.String(length=16), server_default="internet", nullable=False))
        table.add_column(sa.Column("power_code", sa.String(length=100), nullable=True))
        table.add_column(sa.Column("power_version", sa.Integer(), nullable=True))
        table.add_column(sa.Column("agency_code", sa.String(length=10), nullable=True))
        table.add_column(sa.Column("registered_at", sa.String(length=40), nullable=True))
        table.add_column(sa.Column("acceptor_code", sa.String(length=32), nullable=True))
        table.add_column(sa.Column("acceptor_name", sa.String(length=64), nullable=True))
        table.add_column(sa.Column("time_limit", sa.Integer(), nullable=True))
        table.add_column(sa.Column("time_limit_unit", sa.String(length=16), nullable=True))
    for column in ("power_code", "power_version", "agency_code", "registered_at"):
        op.execute(
            f"UPDATE cases SET {column} = (SELECT applications.{column} FROM applications "
            f"WHERE applications.case_number = cases.case_number)"
        )
    op.create_table(
        "case_registrations",
        sa.Column("case_number", sa.String(length=20), nullable=False),
        sa.Column("case_name", sa.String(length=200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("channel", sa.Integer(), nullable=False),
        sa.Column("applicant_type", sa.String(length=16), nullable=False),
        sa.Column("applicant_name", sa.String(length=100), nullable=False),
        sa.Column("applicant_id_type", sa.String(length=16), nullable=False),
        sa.Column("applicant_id_number", sa.String(length=40), nullable=False),
        sa.Column("applicant_mobile", sa.String(length=20), nullable=True),
        sa.Column("applicant_address", sa.String(length=200), nullable=True),
        sa.Column("submitted_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("case_number"),
    )
    op.create_table(
        "case_corrections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_number", sa.String(length=20), nullable=False),
        sa.Column("target", sa.String(length=32), nullable=False),
        sa.Column("record_key", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_case_corrections_case", "case_corrections", ["case_number"], unique=False)
    with op.batch_alter_table("status_outbox") as table:
        table.alter_column("net_id", existing_type=sa.String(length=64), nullable=True)
        table.create_check_constraint("ck_status_outbox_key", "net_id IS NOT NULL OR case_number IS NOT NULL")
    for statement in guard_statements(op.get_context().dialect.name):
        op.execute(statement)


def guard_statements(dialect: str) -> list[str]:
    """The triggers that refuse deleting case data outside a correction, and any change to
    the status outbox's rows."""
    applying = ("SELECT 1 FROM case_corrections WHERE case_corrections.state = 'applying' "
                "AND case_corrections.case_number = OLD.case_number")
    if dialect == "sqlite":
        statements = [
            f"CREATE TRIGGER {table}_refuse_delete BEFORE DELETE ON {table} "
            f"WHEN NOT EXISTS ({applying}) BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
            for table in GUARDED
        ]
        statements += [
            f"CREATE TRIGGER status_outbox_refuse_{event.lower()} BEFORE {event} ON status_outbox "
            f"BEGIN SELECT RAISE(ABORT, '{OUTBOX_REFUSAL}'); END"
            for event in ("UPDATE", "DELETE")
        ]
        return statements
    statements = [
        f"""CREATE FUNCTION case_data_refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS ({applying}) THEN
                RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN OLD;
        END $$""",
        f"""CREATE FUNCTION status_outbox_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '{OUTBOX_REFUSAL}' USING ERRCODE = 'insufficient_privilege';
        END $$""",
        ("CREATE TRIGGER status_outbox_refuse_change BEFORE UPDATE OR DELETE ON status_outbox "
         "FOR EACH ROW EXECUTE FUNCTION status_outbox_refuse_change()"),
    ]
    statements += [
        f"CREATE TRIGGER {table}_refuse_delete BEFORE DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION case_data_refuse_delete()"
        for table in GUARDED
    ]
    return statements


def downgrade() -> None:
    if not zone_has("cases"):
        return
    sqlite = op.get_context().dialect.name == "sqlite"
    for guarded in GUARDED:
        op.execute(f"DROP TRIGGER IF EXISTS {guarded}_refuse_delete" + ("" if sqlite else f" ON {guarded}"))
    if sqlite:
        op.execute("DROP TRIGGER IF EXISTS status_outbox_refuse_update")
        op.execute("DROP TRIGGER IF EXISTS status_outbox_refuse_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS status_outbox_refuse_change ON status_outbox")
        op.execute("DROP FUNCTION IF EXISTS status_outbox_refuse_change()")
        op.execute("DROP FUNCTION IF EXISTS case_data_refuse_delete()")
    with op.batch_alter_table("status_outbox") as table:
        table.drop_constraint("ck_status_outbox_key", type_="check")
        table.alter_column("net_id", existing_type=sa.String(length=64), nullable=False)
    op.drop_index("ix_case_corrections_case", table_name="case_corrections")
    op.drop_table("case_corrections")
    op.drop_table("case_registrations")
    with op.batch_alter_table("cases") as table:
        for column in ("time_limit_unit", "time_limit", "acceptor_name", "acceptor_code", "registered_at",
                       "agency_code", "power_version", "power_code", "origin"):
            table.drop_column(column)
        table.alter_column("net_id", existing_type=sa.String(length=64), nullable=False)
