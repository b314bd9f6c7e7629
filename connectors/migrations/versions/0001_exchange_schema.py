"""The zone databases' first schema: ferry ledgers, provenance and quarantine in both
zones; the portal's intake claims in the internet zone; the exchange database (交换库) in
the administration zone, with the status-change outbox guarded against out-of-order ids
on PostgreSQL.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# PostgreSQL: every transaction that appends to the outbox first takes this transaction-
# scoped advisory lock, before any id is drawn from the sequence (a BEFORE STATEMENT
# trigger runs before the row defaults are evaluated). Writers are thereby serialised from
# id allocation to commit, so an id becomes visible only after every lower id has committed
# or rolled back, and "read after the last acknowledged id" can never skip a late commit.
OUTBOX_LOCK_FUNCTION = """
CREATE FUNCTION status_outbox_serialise() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('status_outbox'));
    RETURN NULL;
END
$$
"""
OUTBOX_LOCK_TRIGGER = """
CREATE TRIGGER status_outbox_serialise BEFORE INSERT ON status_outbox
FOR EACH STATEMENT EXECUTE FUNCTION status_outbox_serialise()
"""


def upgrade() -> None:
    if zone_has("alarms"):
        op.create_table(
            "alarms",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("kind", sa.String(length=40), nullable=False),
            sa.Column("detail", sa.JSON(), nullable=False),
            sa.Column("at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if zone_has("applications"):
        op.create_table(
            "applications",
            sa.Column("net_id", sa.String(length=64), nullable=False),
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("power_code", sa.String(length=100), nullable=False),
            sa.Column("power_version", sa.Integer(), nullable=False),
            sa.Column("agency_code", sa.String(length=10), nullable=False),
            sa.Column("case_name", sa.String(length=200), nullable=False),
            sa.Column("applicant_type", sa.String(length=16), nullable=False),
            sa.Column("applicant_name", sa.String(length=100), nullable=False),
            sa.Column("applicant_id_type", sa.String(length=16), nullable=False),
            sa.Column("applicant_id_number", sa.String(length=40), nullable=False),
            sa.Column("applicant_mobile", sa.String(length=20), nullable=True),
            sa.Column("applicant_address", sa.String(length=200), nullable=True),
            sa.Column("submitted_at", sa.String(length=40), nullable=False),
            sa.Column("registered_at", sa.String(length=40), nullable=False),
            sa.Column("bundle", sa.String(length=64), nullable=False),
            sa.Column("envelope", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("net_id"),
            sa.UniqueConstraint("case_number"),
        )
    if zone_has("case_materials"):
        op.create_table(
            "case_materials",
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("idx", sa.Integer(), nullable=False),
            sa.Column("material_code", sa.String(length=64), nullable=True),
            sa.Column("name", sa.String(length=200), nullable=False),
            sa.Column("sha256", sa.String(length=64), nullable=True),
            sa.Column("media_type", sa.String(length=100), nullable=True),
            sa.Column("size", sa.BigInteger(), nullable=True),
            sa.PrimaryKeyConstraint("case_number", "idx"),
        )
    if zone_has("case_results"):
        op.create_table(
            "case_results",
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("result", sa.Integer(), nullable=False),
            sa.Column("finished_at", sa.String(length=40), nullable=False),
            sa.Column("note", sa.Text(), nullable=False),
            sa.Column("fee_due", sa.Integer(), nullable=False),
            sa.Column("fee_paid", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("case_number"),
        )
    if zone_has("case_sequences"):
        op.create_table(
            "case_sequences",
            sa.Column("agency_code", sa.String(length=10), nullable=False),
            sa.Column("last_value", sa.BigInteger(), nullable=False),
            sa.PrimaryKeyConstraint("agency_code"),
        )
    if zone_has("case_steps"):
        op.create_table(
            "case_steps",
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("step_no", sa.Integer(), nullable=False),
            sa.Column("node", sa.String(length=64), nullable=False),
            sa.Column("department", sa.String(length=64), nullable=False),
            sa.Column("officer_code", sa.String(length=32), nullable=False),
            sa.Column("officer_name", sa.String(length=64), nullable=False),
            sa.Column("status", sa.Integer(), nullable=False),
            sa.Column("opinion", sa.Text(), nullable=False),
            sa.Column("started_at", sa.String(length=40), nullable=False),
            sa.Column("finished_at", sa.String(length=40), nullable=True),
            sa.PrimaryKeyConstraint("case_number", "step_no"),
        )
    if zone_has("cases"):
        op.create_table(
            "cases",
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("net_id", sa.String(length=64), nullable=False),
            sa.Column("state", sa.String(length=32), nullable=False),
            sa.Column("updated_at", sa.String(length=40), nullable=False),
            sa.Column("secret", sa.Boolean(), server_default="0", nullable=False),
            sa.Column("privacy", sa.Boolean(), server_default="0", nullable=False),
            sa.PrimaryKeyConstraint("case_number"),
            sa.UniqueConstraint("net_id"),
        )
    if zone_has("ferry_applied"):
        op.create_table(
            "ferry_applied",
            sa.Column("channel", sa.String(length=16), nullable=False),
            sa.Column("sequence", sa.BigInteger(), nullable=False),
            sa.Column("digest", sa.String(length=64), nullable=False),
            sa.Column("applied_at", sa.String(length=40), nullable=False),
            sa.Column("record_count", sa.Integer(), nullable=False),
            sa.PrimaryKeyConstraint("channel", "sequence"),
        )
    if zone_has("ferry_sent"):
        op.create_table(
            "ferry_sent",
            sa.Column("channel", sa.String(length=16), nullable=False),
            sa.Column("sequence", sa.BigInteger(), nullable=False),
            sa.Column("state", sa.String(length=16), nullable=False),
            sa.Column("created_at", sa.String(length=40), nullable=False),
            sa.Column("first_key", sa.BigInteger(), nullable=True),
            sa.Column("last_key", sa.BigInteger(), nullable=True),
            sa.Column("record_count", sa.Integer(), nullable=False),
            sa.Column("digest", sa.String(length=64), nullable=True),
            sa.Column("file_name", sa.String(length=128), nullable=True),
            sa.Column("catalogue_version", sa.String(length=64), nullable=False),
            sa.PrimaryKeyConstraint("channel", "sequence"),
        )
    if zone_has("inbound_records"):
        op.create_table(
            "inbound_records",
            sa.Column("channel", sa.String(length=16), nullable=False),
            sa.Column("sequence", sa.BigInteger(), nullable=False),
            sa.Column("idx", sa.Integer(), nullable=False),
            sa.Column("net_id", sa.String(length=64), nullable=False),
            sa.Column("payload", sa.Text(), nullable=False),
            sa.Column("state", sa.String(length=16), nullable=False),
            sa.Column("outcome", sa.String(length=16), nullable=True),
            sa.Column("received_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("channel", "sequence", "idx"),
        )
        op.create_index("ix_inbound_records_state", "inbound_records", ["state"], unique=False)
    if zone_has("penalty_cases"):
        op.create_table(
            "penalty_cases",
            sa.Column("case_number", sa.String(length=20), nullable=False),
            sa.Column("occurred_on", sa.String(length=10), nullable=False),
            sa.Column("source", sa.String(length=32), nullable=False),
            sa.Column("facts", sa.Text(), nullable=False),
            sa.Column("procedure", sa.Integer(), nullable=False),
            sa.Column("decision", sa.Integer(), nullable=False),
            sa.Column("penalty_kinds", sa.JSON(), nullable=False),
            sa.Column("fine_amount", sa.BigInteger(), nullable=False),
            sa.Column("confiscated_value", sa.BigInteger(), nullable=False),
            sa.Column("discretion_level", sa.String(length=16), nullable=False),
            sa.Column("decided_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("case_number"),
        )
    if zone_has("provenance"):
        op.create_table(
            "provenance",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("record_id", sa.String(length=64), nullable=False),
            sa.Column("stage", sa.String(length=32), nullable=False),
            sa.Column("outcome", sa.String(length=32), nullable=False),
            sa.Column("bundle", sa.String(length=64), nullable=True),
            sa.Column("detail", sa.JSON(), nullable=True),
            sa.Column("at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_provenance_record", "provenance", ["record_id"], unique=False)
    if zone_has("publish_held"):
        op.create_table(
            "publish_held",
            sa.Column("event_id", sa.Integer(), nullable=False),
            sa.Column("net_id", sa.String(length=64), nullable=False),
            sa.Column("reason", sa.String(length=40), server_default="SCANNER", nullable=False),
            sa.Column("findings", sa.JSON(), nullable=False),
            sa.Column("held_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("event_id"),
        )
    if zone_has("publish_withheld"):
        op.create_table(
            "publish_withheld",
            sa.Column("event_id", sa.Integer(), nullable=False),
            sa.Column("net_id", sa.String(length=64), nullable=False),
            sa.Column("reason", sa.String(length=16), nullable=False),
            sa.Column("withheld_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("event_id"),
        )
        op.create_index("ix_publish_withheld_net_id", "publish_withheld", ["net_id"], unique=False)
    if zone_has("quarantine"):
        op.create_table(
            "quarantine",
            sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("kind", sa.String(length=16), nullable=False),
            sa.Column("ref", sa.String(length=128), nullable=False),
            sa.Column("code", sa.String(length=40), nullable=False),
            sa.Column("detail", sa.Text(), nullable=False),
            sa.Column("stored_as", sa.String(length=255), nullable=False),
            sa.Column("record_ids", sa.JSON(), nullable=False),
            sa.Column("at", sa.String(length=40), nullable=False),
            sa.Column("state", sa.String(length=16), nullable=False),
            sa.PrimaryKeyConstraint("id"),
        )
    if zone_has("query_passwords"):
        op.create_table(
            "query_passwords",
            sa.Column("net_id", sa.String(length=64), nullable=False),
            sa.Column("case_number", sa.String(length=20), nullable=True),
            sa.Column("password", sa.String(length=16), nullable=False),
            sa.Column("kdf", sa.String(length=32), nullable=False),
            sa.Column("iterations", sa.Integer(), nullable=False),
            sa.Column("lookup", sa.String(length=64), nullable=False),
            sa.Column("created_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("net_id"),
            sa.UniqueConstraint("case_number"),
            sa.UniqueConstraint("lookup"),
        )
    if zone_has("rejections"):
        op.create_table(
            "rejections",
            sa.Column("net_id", sa.String(length=64), nullable=False),
            sa.Column("reasons", sa.JSON(), nullable=False),
            sa.Column("rejected_at", sa.String(length=40), nullable=False),
            sa.Column("bundle", sa.String(length=64), nullable=False),
            sa.Column("envelope", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("net_id"),
        )
    if zone_has("status_outbox"):
        op.create_table(
            "status_outbox",
            sa.Column("event_id", sa.Integer(), autoincrement=True, nullable=False),
            sa.Column("net_id", sa.String(length=64), nullable=False),
            sa.Column("case_number", sa.String(length=20), nullable=True),
            sa.Column("status", sa.String(length=32), nullable=False),
            sa.Column("at", sa.String(length=40), nullable=False),
            sa.Column("step", sa.String(length=64), nullable=True),
            sa.Column("opinion", sa.Text(), nullable=True),
            sa.Column("reasons", sa.JSON(), nullable=True),
            sa.Column("result", sa.JSON(), nullable=True),
            sa.PrimaryKeyConstraint("event_id"),
        )
        op.create_index("ix_status_outbox_net_id", "status_outbox", ["net_id"], unique=False)
    if zone_has("intake_claims"):
        op.create_table(
            "intake_claims",
            sa.Column("net_id", sa.String(length=64), nullable=False),
            sa.Column("sequence", sa.BigInteger(), nullable=False),
            sa.Column("claimed_at", sa.String(length=40), nullable=False),
            sa.PrimaryKeyConstraint("net_id"),
        )
        op.create_index("ix_intake_claims_sequence", "intake_claims", ["sequence"], unique=False)

    if zone_has("status_outbox") and op.get_bind().dialect.name == "postgresql":
        op.execute(OUTBOX_LOCK_FUNCTION)
        op.execute(OUTBOX_LOCK_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS status_outbox_serialise ON status_outbox")
        op.execute("DROP FUNCTION IF EXISTS status_outbox_serialise()")
    for name in reversed(CREATED):
        if zone_has(name):
            op.drop_table(name)


CREATED = [
    "alarms",
    "applications",
    "case_materials",
    "case_results",
    "case_sequences",
    "case_steps",
    "cases",
    "ferry_applied",
    "ferry_sent",
    "inbound_records",
    "penalty_cases",
    "provenance",
    "publish_held",
    "publish_withheld",
    "quarantine",
    "query_passwords",
    "rejections",
    "status_outbox",
    "intake_claims",
]
