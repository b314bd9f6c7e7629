"""The zone databases: the exchange database (交换库) of the administration zone and the
small zone database of the internet zone, both through SQLAlchemy Core.

Tables shared by both zones (ferry ledgers, provenance, quarantine) sit beside the
tables only one zone has. The schema is created and changed only by the Alembic
migrations in ``connectors/migrations`` (``connectors.migrate``); a test checks that the
migrated schema equals these tables on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    String,
    Table,
    Text,
    UniqueConstraint,
    and_,
    bindparam,
    create_engine,
    event,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import OperationalError

from schemas.exceptions import TransientError

metadata = MetaData()

# --- shared by both zones -------------------------------------------------------------

ferry_sent = Table(
    "ferry_sent",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("sequence", BigInteger, primary_key=True),
    Column("state", String(16), nullable=False),  # planned | sent
    Column("created_at", String(40), nullable=False),
    Column("first_key", BigInteger),  # first outbox id carried (outbound)
    Column("last_key", BigInteger),  # last outbox id carried (outbound)
    Column("record_count", Integer, nullable=False),
    Column("digest", String(64)),
    Column("file_name", String(128)),
    Column("catalogue_version", String(64), nullable=False),
    Column("kind", String(16), nullable=False, server_default="data"),  # data | heartbeat
    Column("receipt", JSON),  # the reverse channel's receipt, fixed when planned
    Column("sent_at", String(40)),
    Column("acknowledged_at", String(40)),  # first receipt that covered it
    Column("resent_count", Integer, nullable=False, server_default="0"),
    Column("last_resent_at", String(40)),
    Column("pruned_at", String(40)),  # outbox copy deleted after the retention period
)

ferry_applied = Table(
    "ferry_applied",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("sequence", BigInteger, primary_key=True),
    Column("digest", String(64), nullable=False),
    Column("applied_at", String(40), nullable=False),
    Column("record_count", Integer, nullable=False),
    Column("previous_digest", String(64)),
    Column("kind", String(16), nullable=False, server_default="data"),  # data | heartbeat
)

# The latest receipt received for a channel this zone sends on (from the reverse channel).
ferry_receipts = Table(
    "ferry_receipts",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("carrier", String(64), nullable=False),  # the reverse-channel bundle it came in
    Column("carrier_sequence", BigInteger, nullable=False),
    Column("receipt", JSON, nullable=False),
    Column("received_at", String(40), nullable=False),
)

provenance = Table(
    "provenance",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("record_id", String(64), nullable=False),
    Column("stage", String(32), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("bundle", String(64)),
    Column("detail", JSON),
    Column("at", String(40), nullable=False),
    Index("ix_provenance_record", "record_id"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # submission | bundle
    Column("ref", String(128), nullable=False),
    Column("code", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Column("stored_as", String(255), nullable=False),
    Column("record_ids", JSON, nullable=False),
    Column("at", String(40), nullable=False),
    Column("state", String(16), nullable=False, default="held"),
)

alarms = Table(
    "alarms",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("at", String(40), nullable=False),
    # Open until resolved: automatically when its condition cleared (resolved_by "hub"),
    # or by an operator with a written reason (connectors.alarms).
    Column("resolved_at", String(40)),
    Column("resolution", Text),
    Column("resolved_by", String(64)),
    Column("notified_at", String(40)),
    Index("ix_alarms_open", "kind", "resolved_at"),
)

# Operator actions on quarantined items (release, discard), kept as an audit trail.
quarantine_actions = Table(
    "quarantine_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("quarantine_id", Integer, nullable=False),
    Column("action", String(16), nullable=False),  # release | discard
    Column("reason", Text, nullable=False),
    Column("operator", String(64), nullable=False),
    Column("at", String(40), nullable=False),
)

# --- the audit trail (痕迹管理), both zones: an append-only Merkle log (docs/audit.md) ------
# One leaf per audited row version (connectors.audit.SOURCES), appended in the transaction
# that writes the row. (Migration 0012.)

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),  # the leaf index
    Column("source", String(40), nullable=False),  # the audited table
    Column("source_key", BigInteger, nullable=False),  # its row's integer key
    Column("entry", Text, nullable=False),  # the leaf entry: canonical JSON, hashed as UTF-8
    Column("at", String(40), nullable=False),
    Index("ix_audit_entries_source", "source", "source_key"),
)

# The stored hashes of the tree (docs/audit.md §2), in pages of AUDIT_HASH_PAGE: page N holds
# the 32-byte hashes of stored-hash indexes [N·AUDIT_HASH_PAGE, (N+1)·AUDIT_HASH_PAGE)
# concatenated, the last page partial. A row per hash cost more than the rest of an append
# (two rows a leaf, each with its key); a page is one row per 128 leaves. (Migration 0015.)
AUDIT_HASH_PAGE = 256
audit_hash_pages = Table(
    "audit_hash_pages",
    metadata,
    Column("page", BigInteger, primary_key=True, autoincrement=False),
    Column("hashes", LargeBinary, nullable=False),
)

# One row (id 1): the tree's size and root. Appends lock it (FOR UPDATE on PostgreSQL), so
# leaves are numbered in commit order; its suite (the tree hash) is fixed when the log starts.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("suite", String(8)),
    Column("size", BigInteger, nullable=False),
    Column("root", LargeBinary),
    # The highest key of each audited table when the log started (a deployment upgraded to
    # migration 0012 has rows from before): those rows predate the log and have no leaf.
    Column("started_after", JSON),
)

# Signed checkpoints (C2SP signed note), one per task run that appended; a witness's
# cosigned note when it arrives (the province, docs/audit.md).
audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
    Column("at", String(40), nullable=False),
    Column("cosigned_note", Text),
    Column("cosigned_at", String(40)),
)

AUDIT = (audit_entries, audit_hash_pages, audit_head, audit_checkpoints)

SHARED = (
    ferry_sent, ferry_applied, ferry_receipts, provenance, quarantine, alarms, quarantine_actions
) + AUDIT

# --- internet zone --------------------------------------------------------------------

intake_claims = Table(
    "intake_claims",
    metadata,
    Column("net_id", String(64), primary_key=True),
    Column("sequence", BigInteger, nullable=False),
    Column("claimed_at", String(40), nullable=False),
    Index("ix_intake_claims_sequence", "sequence"),
)

# The administration zone's audit-log checkpoints this zone accepted (opened with that zone's
# keys, each extending the one before), published under public/audit/. (Migration 0012.)
audit_published = Table(
    "audit_published",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary, nullable=False),
    Column("note", Text, nullable=False),
    Column("sequence", BigInteger, nullable=False),  # the outbound bundle that carried it
    Column("bundle", String(64), nullable=False),
    Column("at", String(40), nullable=False),
)

# Leaves of published status changes that came before their status document (a checkpoint
# bundle applied before a resent status bundle), kept under the file layout before the public
# status store: moved into the store, plain, by the first checkpoint bundle applied once the
# change each is filed under is published (connectors.audit_feed._file_leaves).
audit_unfiled = Table(
    "audit_unfiled",
    metadata,
    Column("lookup", String(64), primary_key=True),
    Column("event_id", BigInteger, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("entry", Text, nullable=False),
    Column("at", String(40), nullable=False),
)

# The front database (前置库): the public portal inserts one row per complete submission
# (attachments first, into its content-addressed store); intake reads them by keyset and
# sets ``state``, ``sequence`` and ``handled_at`` in the transaction that plans their bundle
# (docs/front-database.md). The portal never updates a row after inserting it.
portal_submissions = Table(
    "portal_submissions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the keyset
    Column("net_id", String(64), nullable=False),
    Column("submitted_at", String(40), nullable=False),
    Column("envelope", Text, nullable=False),  # the application envelope, JSON text
    Column("state", String(16), nullable=False, server_default="new"),  # new | carried | quarantined | discarded
    Column("sequence", BigInteger),  # the inbound bundle that carries it
    Column("handled_at", String(40)),  # when intake carried or quarantined it
    Column("reason_code", String(40)),  # why it is quarantined
    Column("reason_detail", Text),
    UniqueConstraint("net_id", name="uq_portal_submissions_net_id"),
    Index("ix_portal_submissions_state_id", "state", "id"),
    Index("ix_portal_submissions_sequence", "sequence"),
)

INTERNET = SHARED + (intake_claims, portal_submissions, audit_published, audit_unfiled)

# --- administration zone: the exchange database ---------------------------------------

inbound_records = Table(
    "inbound_records",
    metadata,
    Column("channel", String(16), primary_key=True),
    Column("sequence", BigInteger, primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("net_id", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("state", String(16), nullable=False),  # received | loaded
    Column("outcome", String(16)),  # accepted | rejected | duplicate
    Column("received_at", String(40), nullable=False),
    Index("ix_inbound_records_state", "state"),
)

applications = Table(
    "applications",
    metadata,
    Column("net_id", String(64), primary_key=True),
    Column("case_number", String(20), nullable=False, unique=True),
    Column("power_code", String(100), nullable=False),
    Column("power_version", Integer, nullable=False),
    Column("agency_code", String(10), nullable=False),
    Column("case_name", String(200), nullable=False),
    Column("applicant_type", String(16), nullable=False),
    Column("applicant_name", String(100), nullable=False),
    Column("applicant_id_type", String(16), nullable=False),
    Column("applicant_id_number", String(40), nullable=False),
    Column("applicant_mobile", String(20)),
    Column("applicant_address", String(200)),
    Column("submitted_at", String(40), nullable=False),
    Column("registered_at", String(40), nullable=False),
    Column("bundle", String(64), nullable=False),
    Column("envelope", Text, nullable=False),
)

rejections = Table(
    "rejections",
    metadata,
    Column("net_id", String(64), primary_key=True),
    Column("reasons", JSON, nullable=False),
    Column("rejected_at", String(40), nullable=False),
    Column("bundle", String(64), nullable=False),
    Column("envelope", Text, nullable=False),
)

case_sequences = Table(
    "case_sequences",
    metadata,
    Column("agency_code", String(10), primary_key=True),
    Column("last_value", BigInteger, nullable=False),
)

# Every case, whatever its origin (CASE_ORIGINS): an internet application handed over by the
# hub (``net_id`` set, its party in ``applications``), or a case the case-processing system
# registered itself, from a counter application (网下申请) or ex officio (依职权), with its
# party in ``case_registrations`` (docs/exchange-db.md "Cases of every origin").
cases = Table(
    "cases",
    metadata,
    Column("case_number", String(20), primary_key=True),
    Column("net_id", String(64), unique=True),
    Column("state", String(32), nullable=False),
    Column("updated_at", String(40), nullable=False),
    # Set by the case-processing system: a case under state or business secret, or
    # protected for privacy, is never published (DOMAIN "Publication").
    Column("secret", Boolean, nullable=False, default=False, server_default="0"),
    Column("privacy", Boolean, nullable=False, default=False, server_default="0"),
    # When the case was accepted (受理): the time limits count from the working day after.
    Column("accepted_at", String(40)),
    Column("origin", String(16), nullable=False, default="internet", server_default="internet"),
    Column("power_code", String(100)),
    Column("power_version", Integer),
    Column("agency_code", String(10)),
    Column("registered_at", String(40)),
    # 第十六条(二): who accepted the case (受理人) and the time limit it runs under, set with
    # the acceptance; ``accepted_at`` is the acceptance time.
    Column("acceptor_code", String(32)),
    Column("acceptor_name", String(64)),
    Column("time_limit", Integer),
    Column("time_limit_unit", String(16)),
)

# The registration record of a case the case-processing system opened itself (origin
# ``counter`` or ``ex_officio``): what ``applications`` holds for an internet case.
case_registrations = Table(
    "case_registrations",
    metadata,
    Column("case_number", String(20), primary_key=True),
    Column("case_name", String(200), nullable=False),
    Column("summary", Text, nullable=False),
    Column("channel", Integer, nullable=False),  # DOMAIN application channel 0..7
    Column("applicant_type", String(16), nullable=False),  # person | organisation
    Column("applicant_name", String(100), nullable=False),
    Column("applicant_id_type", String(16), nullable=False),
    Column("applicant_id_number", String(40), nullable=False),
    Column("applicant_mobile", String(20)),
    Column("applicant_address", String(200)),
    Column("submitted_at", String(40), nullable=False),  # applied at the counter, or opened (立案)
)

case_materials = Table(
    "case_materials",
    metadata,
    Column("case_number", String(20), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("material_code", String(64)),
    Column("name", String(200), nullable=False),
    Column("sha256", String(64)),
    Column("media_type", String(100)),
    Column("size", BigInteger),
)

# The query password (查询密码) of each application: generated here, handed to the
# applicant by the case-processing system, published only as the derived lookup name.
query_passwords = Table(
    "query_passwords",
    metadata,
    Column("net_id", String(64), primary_key=True),
    Column("case_number", String(20), unique=True),
    Column("password", String(16), nullable=False),
    Column("kdf", String(32), nullable=False),
    Column("iterations", Integer, nullable=False),
    Column("lookup", String(64), nullable=False, unique=True),
    Column("created_at", String(40), nullable=False),
    # Hex of the key the case's public status records are sealed under (rules.status_seal);
    # None for rows from before 0014, derived again from the password when needed.
    Column("seal_key", String(64)),
)

penalty_cases = Table(
    "penalty_cases",
    metadata,
    Column("case_number", String(20), primary_key=True),
    Column("occurred_on", String(10), nullable=False),
    Column("source", String(32), nullable=False),
    Column("facts", Text, nullable=False),
    Column("procedure", Integer, nullable=False),  # 1 summary, 2 general
    Column("decision", Integer, nullable=False),  # 1 penalty, 2 other, 3 revoked, 4 referred
    Column("penalty_kinds", JSON, nullable=False),
    Column("fine_amount", BigInteger, nullable=False, default=0),  # in fen (0.01 yuan)
    Column("confiscated_value", BigInteger, nullable=False, default=0),
    Column("discretion_level", String(16), nullable=False),  # light | ordinary | serious
    Column("decided_at", String(40), nullable=False),
    # The violation of the item's discretion standard applied, and the illegal income found
    # (fen): what the discretion check needs (rules.discretion).
    Column("violation_code", String(32)),
    Column("illegal_income", BigInteger),
)

case_steps = Table(
    "case_steps",
    metadata,
    Column("case_number", String(20), primary_key=True),
    Column("step_no", Integer, primary_key=True),
    Column("node", String(64), nullable=False),
    Column("department", String(64), nullable=False),
    Column("officer_code", String(32), nullable=False),
    Column("officer_name", String(64), nullable=False),
    Column("status", Integer, nullable=False),  # DOMAIN step status 1..7
    Column("opinion", Text, nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    # The promised time of the step (岗位承诺时限), when the case-processing system sets one.
    Column("time_limit", Integer),
    Column("time_limit_unit", String(16)),
)

case_results = Table(
    "case_results",
    metadata,
    Column("case_number", String(20), primary_key=True),
    Column("result", Integer, nullable=False),  # 1 not accepted, 2 granted, 3 refused
    Column("finished_at", String(40), nullable=False),
    Column("note", Text, nullable=False),
    Column("fee_due", Integer, nullable=False, default=0),
    Column("fee_paid", Integer, nullable=False, default=0),
)

status_outbox = Table(
    "status_outbox",
    metadata,
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    # The NET_ID of an internet application; empty for a case of another origin, which the
    # case number names (one of the two is always given).
    Column("net_id", String(64)),
    Column("case_number", String(20)),
    Column("status", String(32), nullable=False),
    Column("at", String(40), nullable=False),
    Column("step", String(64)),
    Column("opinion", Text),
    Column("reasons", JSON),
    Column("result", JSON),
    Index("ix_status_outbox_net_id", "net_id"),
    # The supervision pass reads a chunk's decisions by case (migration 0010).
    Index("ix_status_outbox_case_number", "case_number"),
    CheckConstraint("net_id IS NOT NULL OR case_number IS NOT NULL", name="ck_status_outbox_key"),
)

publish_held = Table(
    "publish_held",
    metadata,
    Column("event_id", Integer, primary_key=True),
    Column("net_id", String(64), nullable=False),
    Column("reason", String(40), nullable=False, server_default="SCANNER"),
    Column("findings", JSON, nullable=False),
    Column("held_at", String(40), nullable=False),
)

# Status changes of cases that are never published (minors, secrets, privacy).
publish_withheld = Table(
    "publish_withheld",
    metadata,
    Column("event_id", Integer, primary_key=True),
    Column("net_id", String(64), nullable=False),
    Column("reason", String(16), nullable=False),  # minor | secret | privacy
    Column("withheld_at", String(40), nullable=False),
    Index("ix_publish_withheld_net_id", "net_id"),
)

# The power catalogue as imported from the provincial platform: every version of every
# item, and every transition with who, when, why and the approval chain.
catalogue_items = Table(
    "catalogue_items",
    metadata,
    Column("code", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("state", String(1), nullable=False),
    Column("document", JSON, nullable=False),
    Column("content_digest", String(64), nullable=False),
    Column("effective_from", String(40), nullable=False),
    Column("recorded_at", String(40), nullable=False),
)

catalogue_transitions = Table(
    "catalogue_transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("code", String(100), nullable=False),
    Column("action", String(16), nullable=False),  # create | revise | suspend | resume | abolish
    Column("from_state", String(1)),
    Column("to_state", String(1), nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer, nullable=False),
    Column("changed_by", String(100), nullable=False),
    Column("changed_at", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("approvals", JSON, nullable=False),
    Column("source", String(255), nullable=False),
    Column("recorded_at", String(40), nullable=False),
    Index("ix_catalogue_transitions_code", "code"),
)

# Which outbound bundle carried which public catalogue (the records, so a resend after a
# crash rebuilds the same bytes).
catalogue_publications = Table(
    "catalogue_publications",
    metadata,
    Column("sequence", BigInteger, primary_key=True),
    Column("catalogue_version", String(64), nullable=False),
    Column("records", JSON, nullable=False),
    Column("planned_at", String(40), nullable=False),
)

# Which outbound bundle carried which audit checkpoint, and the size sent before it (so a
# resend after a crash rebuilds the same bytes). (Migration 0012.)
audit_sent = Table(
    "audit_sent",
    metadata,
    Column("sequence", BigInteger, primary_key=True, autoincrement=False),
    Column("old_size", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("planned_at", String(40), nullable=False),
)

ADMIN: tuple[Table, ...] = SHARED + (
    audit_sent,
    catalogue_items,
    catalogue_transitions,
    catalogue_publications,
    inbound_records,
    applications,
    rejections,
    case_sequences,
    cases,
    case_registrations,
    case_materials,
    query_passwords,
    case_steps,
    case_results,
    penalty_cases,
    status_outbox,
    publish_held,
    publish_withheld,
)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # The wait first: switching to WAL takes a lock, and a second process opening the
    # database at the same moment must wait for it, not fail "database is locked".
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _json_loads(text: Any) -> Any:
    """``json.loads`` for JSON columns, without parsing a stored ``null``: most status
    changes have no reasons and no result, and parsing those two nulls was about an eighth
    of reading the changes to publish. (Not orjson: it reads an integer beyond 64 bits as a
    float, another value.)"""
    return None if text == "null" else json.loads(text)


@cache
def engine_for(url: str) -> Engine:
    """One engine per database URL per process; SQLite files get WAL and a busy timeout."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, json_deserializer=_json_loads)
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, json_deserializer=_json_loads)
    return engine


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One database transaction; a locked or unreachable database is a transient error."""
    try:
        with engine.begin() as connection:
            yield connection
    except OperationalError as error:
        raise TransientError(f"exchange database unavailable: {error.orig}") from error


PLACEHOLDER_BY_PARAMSTYLE = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def bulk_insert(connection: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows`` into ``table`` in one executemany through the driver, converting
    each value as the column's type would (JSON, booleans).

    The hub's large inserts (a batch of applications, cases, status changes) go this way:
    SQLAlchemy's per-row parameter building costs more than the insert itself. A column a
    row leaves out gets the column's scalar default, or NULL; unlike an executemany of
    Core's ``insert()``, which takes its columns from the first row only and silently
    drops values the others add.
    """
    if not rows:
        return 0
    keys: dict[str, None] = dict.fromkeys(chain.from_iterable(rows))  # every row's keys, in order met
    unknown = set(keys) - set(table.c.keys())
    if unknown:
        raise KeyError(f"{table.name} has no column {', '.join(sorted(unknown))}")
    for column in table.columns:
        default = column.default
        if column.name not in keys and default is not None:
            if not getattr(default, "is_scalar", False):
                raise ValueError(f"{table.name}.{column.name} has a computed default; give it in every row")
            keys[column.name] = None
    names = list(keys)
    fill = {
        n: (table.c[n].default.arg if table.c[n].default is not None else None)  # type: ignore[union-attr]
        for n in names
    }
    pick = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
    width = len(names)
    if not all(len(row) == width for row in rows):
        rows = [fill | row for row in rows]  # a row that leaves a column out: over the defaults
    return insert_rows(connection, table, names, map(pick, rows))


def insert_rows(connection: Connection, table: Table, names: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> int:
    """Insert ``rows``, tuples of plain values in the order of ``names``, into ``table`` in
    one executemany through the driver; each value is converted as its column's type would
    convert it (JSON to text, booleans). :func:`bulk_insert` for rows as dicts."""
    return insert_values(connection, table, names, _converted(connection.dialect, table, names, rows))



def insert_values(connection: Connection, table: Table, names: Sequence[str], values: list[tuple[Any, ...]]) -> int:
    """Insert ``values``, tuples already converted for the driver (``insert_rows`` converts),
    in the caller's transaction: on PostgreSQL by ``COPY ... FROM STDIN`` through the same
    DBAPI connection (psycopg2's executemany sends one statement per row, a round trip
    each), elsewhere (and for a value COPY's text format is not written for here) by one
    executemany. The COPY is announced to the engine's ``before_cursor_execute`` listeners
    as any statement is."""
    if not values:
        return 0
    dialect = connection.dialect
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(n) for n in names)
    if dialect.name == "postgresql":
        data = _copy_text(values)
        if data is not None:
            statement = f"COPY {quote(table.name)} ({columns}) FROM STDIN"
            cursor = connection.connection.cursor()
            try:
                connection.dispatch.before_cursor_execute(connection, cursor, statement, None, None, False)
                cursor.copy_expert(statement, io.StringIO(data))
            finally:
                cursor.close()
            return len(values)
    placeholder = PLACEHOLDER_BY_PARAMSTYLE.get(dialect.paramstyle)
    if placeholder is None:
        connection.execute(table.insert(), [dict(zip(names, row)) for row in values])
        return len(values)
    statement = f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({', '.join([placeholder] * len(names))})"
    connection.exec_driver_sql(statement, values)
    return len(values)


def select_rows(connection: Connection, query: Select[Any], params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and rows of ``query`` (bound parameters by name, as ``bindparam``
    names them), read through the driver's cursor in the caller's transaction: plain tuples,
    each column converted as its type converts results (JSON parsed, booleans).

    For the hub's large reads: SQLAlchemy's row objects and per-row processing cost more
    than the read itself. :func:`select_chunks` hands the rows over a chunk at a time."""
    columns, chunks = select_chunks(connection, query, params)
    return columns, [row for chunk in chunks for row in chunk]


# Rows per chunk of ``select_chunks``: only a chunk of a large read's rows is alive at once.
SELECT_CHUNK = 512


def select_chunks(
    connection: Connection, query: Select[Any], params: dict[str, Any], chunk: int = SELECT_CHUNK,
) -> tuple[list[str], Iterator[list[tuple[Any, ...]]]]:
    """:func:`select_rows` a chunk at a time: the statement runs now, the rows are fetched
    ``chunk`` at a time as the iterator is read, and each chunk is converted column by
    column. The caller may run other statements on ``connection`` between chunks.

    The statement is announced to the engine's ``before_cursor_execute`` listeners as any
    statement is."""
    dialect = connection.dialect
    compiled = query.compile(dialect=dialect)
    bound = compiled.construct_params(params)
    arguments: Any = (
        [bound[name] for name in compiled.positiontup] if compiled.positional and compiled.positiontup else bound
    )
    statement = compiled.string
    cursor = connection.connection.cursor()
    try:
        connection.dispatch.before_cursor_execute(connection, cursor, statement, arguments, compiled, False)
        cursor.execute(statement, arguments)
    except BaseException:
        cursor.close()
        raise
    selected = list(query.selected_columns)
    processors = [
        (index, process) for index, column in enumerate(selected)
        if (process := column.type.dialect_impl(dialect).result_processor(dialect, None)) is not None
    ]

    def chunks() -> Iterator[list[tuple[Any, ...]]]:
        try:
            while rows := list(cursor.fetchmany(chunk)):
                if processors:
                    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
                    for index, process in processors:
                        columns[index] = [None if item is None else process(item) for item in columns[index]]
                    rows = list(zip(*columns, strict=True))
                yield rows
        finally:
            cursor.close()

    return [str(column.key) for column in selected], chunks()


class _NotCopyable(Exception):
    """A value whose COPY text this module does not write (the rows go by executemany)."""


def _copy_field(value: Any) -> str:
    """One value in PostgreSQL's COPY text format: NULL as ``\\N``; backslash, newline,
    carriage return and tab escaped; booleans ``t``/``f``; bytes as bytea hex."""
    kind = type(value)
    if kind is str:
        if "\\" in value or "\n" in value or "\r" in value or "\t" in value:
            return str(value.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t"))
        return str(value)
    if value is None:
        return "\\N"
    if kind is int:
        return str(value)
    if kind is bool:
        return "t" if value else "f"
    if kind is bytes or kind is bytearray or kind is memoryview:
        return "\\\\x" + bytes(value).hex()  # bytea hex input, its backslash escaped for COPY
    raise _NotCopyable(kind.__name__)


def _copy_text(values: list[tuple[Any, ...]]) -> str | None:
    """``values`` as COPY text (one line per row), or None if a value has another type."""
    field = _copy_field
    try:
        return "".join(["\t".join(map(field, row)) + "\n" for row in values])
    except _NotCopyable:
        return None


def bulk_update(connection: Connection, table: Table, rows: list[dict[str, Any]], *, keys: Sequence[str]) -> int:
    """Update one row of ``table`` per item of ``rows`` in one executemany through the
    driver, as :func:`bulk_insert` inserts: the columns named in ``keys`` find the row (all
    of them must be given), every other key of the first row is set. Values are converted
    as the column's type would convert them."""
    if not rows:
        return 0
    dialect = connection.dialect
    settable = [n for n in rows[0] if n not in keys]
    if not settable or not keys:
        raise ValueError(f"an update of {table.name} needs key columns and columns to set")
    unknown = (set(settable) | set(keys)) - set(table.c.keys())
    if unknown:
        raise KeyError(f"{table.name} has no column {', '.join(sorted(unknown))}")
    placeholder = PLACEHOLDER_BY_PARAMSTYLE.get(dialect.paramstyle)
    if placeholder is None:
        statement = (
            update(table)
            .where(and_(*(table.c[k] == bindparam(f"k_{k}") for k in keys)))
            .values({n: bindparam(f"v_{n}") for n in settable})
        )
        connection.execute(statement, [
            {**{f"k_{k}": row[k] for k in keys}, **{f"v_{n}": row[n] for n in settable}} for row in rows
        ])
        return len(rows)
    names = [*settable, *keys]
    values = _converted(dialect, table, names, (itemgetter(*names)(row) for row in rows))
    quote = dialect.identifier_preparer.quote
    update_sql = (
        f"UPDATE {quote(table.name)} SET {', '.join(f'{quote(n)} = {placeholder}' for n in settable)} "
        f"WHERE {' AND '.join(f'{quote(k)} = {placeholder}' for k in keys)}"
    )
    connection.exec_driver_sql(update_sql, values)
    return len(rows)


def _converted(dialect: Dialect, table: Table, names: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> list[Any]:
    """``rows`` (values in the order of ``names``) with each value converted as its
    column's type converts it for the driver (JSON to text, booleans)."""
    processors = []
    for index, name in enumerate(names):
        process = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            # NULLs are the common value of the JSON columns (no reasons, no result): the
            # conversion of None is the same every time, so it is made once.
            processors.append((index, process, process(None)))
    rows = list(rows)
    if not processors or not rows:
        return rows
    # Column by column: each converted column is one list, the rows are zipped back once,
    # instead of a list and a tuple rebuilt per row.
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    for index, process, null in processors:
        columns[index] = [null if item is None else process(item) for item in columns[index]]
    return list(zip(*columns, strict=True))


# --- administration zone: the provincial feed (省级平台) --------------------------------
# The hub's own sync state, kept beside the source tables instead of inside them: one row
# per record sent to the province (its latest content, sync mark and error text), the
# batches, the scan position per source, and the catalogue files pulled from the province.
# (Migration 0003.)

province_sync = Table(
    "province_sync",
    metadata,
    Column("kind", String(24), primary_key=True),  # case | step | result | penalty | alert | catalogue_change
    Column("record_key", String(128), primary_key=True),
    Column("mark", String(8), nullable=False),  # pending | sent | accepted | failed
    Column("change_seq", BigInteger, nullable=False),  # feed watermark of the latest change
    Column("digest", String(64), nullable=False),  # SHA-256 of the record's canonical JSON
    Column("record", JSON, nullable=False),
    Column("changed_at", String(40), nullable=False),  # when the change happened at the source
    Column("batch_id", String(40)),  # the batch that carries (or carried) the latest content
    Column("error", Text),  # the province's rejection reasons, when mark is failed
    Column("updated_at", String(40), nullable=False),
    Index("ix_province_sync_mark", "mark", "change_seq"),
    Index("ix_province_sync_batch", "batch_id"),
)

province_batches = Table(
    "province_batches",
    metadata,
    Column("batch_id", String(40), primary_key=True),
    Column("sequence", BigInteger, nullable=False, unique=True),
    Column("state", String(16), nullable=False),  # planned | sent | acknowledged
    Column("created_at", String(40), nullable=False),
    Column("watermark_from", BigInteger, nullable=False),
    Column("watermark_to", BigInteger, nullable=False),
    Column("counts", JSON, nullable=False),
    Column("manifest_sha256", String(64)),
    Column("sent_at", String(40)),
    Column("receipt_at", String(40)),
    Column("accepted", Integer),
    Column("rejected", Integer),
)

province_scan = Table(
    "province_scan",
    metadata,
    Column("kind", String(24), primary_key=True),
    Column("scanned_to", String(40), nullable=False),  # highest source timestamp already read
)

province_catalogue_files = Table(
    "province_catalogue_files",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("remote_name", String(255), nullable=False),
    Column("stored_as", String(255), nullable=False),
    Column("state", String(16), nullable=False),  # pulled | applied | refused
    Column("pulled_at", String(40), nullable=False),
    Column("applied_at", String(40)),
    Column("report", JSON),
    Column("receipt_sent_at", String(40)),  # the receipt went back to the province
)

PROVINCE = (province_sync, province_batches, province_scan, province_catalogue_files)
ADMIN = ADMIN + PROVINCE

# --- administration zone: electronic supervision (电子监察) ------------------------------
# The working-day calendar the clocks count in, the pauses the case-processing system
# records, the clocks and alerts the supervision pass keeps, supervision orders (督办),
# and the pass's own positions. (Migration 0006.)

# Years the calendar covers: a year counts only once it is here, even with no exceptions.
calendar_years = Table(
    "calendar_years",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("source", String(255), nullable=False),  # chinesecalendar | the imported file's name
    Column("recorded_at", String(40), nullable=False),
)

calendar_exceptions = Table(
    "calendar_exceptions",
    metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD
    Column("kind", String(8), nullable=False),  # holiday (on a weekday) | workday (make-up, on a weekend)
    Column("note", String(64), nullable=False, default=""),
    Column("source", String(255), nullable=False),
    Column("recorded_at", String(40), nullable=False),
)

# Paused intervals of a case's clock, written by the case-processing system with the status
# change that starts or ends them: 补正 correction, 暂停 suspension, 中止 interruption,
# art45 (hearings, expert review, inspection: 行政许可法 Art. 45). An item's 挂起 pauses are
# the hub's own, from the catalogue's transitions.
case_pauses = Table(
    "case_pauses",
    metadata,
    Column("case_number", String(20), primary_key=True),
    Column("pause_no", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("ended_at", String(40)),
    Column("note", Text, nullable=False, default=""),
)

# One row per clock: the case's statutory and promised limits (step_no 0) and each step's
# promised time (step_no n), as read by the last pass.
supervision_clocks = Table(
    "supervision_clocks",
    metadata,
    Column("case_number", String(20), primary_key=True),
    Column("step_no", Integer, primary_key=True),  # 0: the whole case
    Column("basis", String(10), primary_key=True),  # statutory | promised
    Column("limit_value", Integer, nullable=False),
    Column("unit", String(16), nullable=False),
    Column("department", String(64), nullable=False),
    Column("power_code", String(100), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("due_at", String(40), nullable=False),
    Column("finished_at", String(40)),
    Column("used_seconds", BigInteger, nullable=False),
    Column("paused_seconds", BigInteger, nullable=False),
    Column("remaining_seconds", BigInteger, nullable=False),
    Column("limit_seconds", BigInteger, nullable=False),
    Column("state", String(20), nullable=False),  # rules.clocks.STATES
    Column("level", String(10)),  # the alert level it calls for now
    Column("next_check_at", String(40)),  # the next moment its level can change, None when settled
    Column("read_at", String(40), nullable=False),
    Index("ix_supervision_clocks_next_check", "next_check_at"),
)

supervision_alerts = Table(
    "supervision_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(40), nullable=False),
    Column("level", String(10), nullable=False),  # reminder | warning | alarm
    Column("case_number", String(20), nullable=False),
    Column("step_no", Integer, nullable=False),  # 0: the case
    Column("department", String(64), nullable=False),
    Column("power_code", String(100), nullable=False),
    Column("state", String(8), nullable=False),  # open | lifted | closed
    Column("raised_at", String(40), nullable=False),
    Column("escalated_at", String(40)),
    Column("lifted_at", String(40)),  # the condition cleared
    Column("closed_at", String(40)),  # the case finished on time (按时完成)
    Column("detail", Text, nullable=False),  # no personal data: it goes to the province
    # "rule/case/step" while open, NULL after: the database itself keeps one open alert per key.
    Column("open_key", String(80), unique=True),
    Index("ix_supervision_alerts_case", "case_number"),
)

# Supervision orders (督办): a supervisor's instruction on a case with a deadline.
supervision_orders = Table(
    "supervision_orders",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_number", String(20), nullable=False),
    Column("issued_by", String(64), nullable=False),
    Column("instruction", Text, nullable=False),
    Column("deadline", String(40), nullable=False),
    Column("issued_at", String(40), nullable=False),
    Column("state", String(10), nullable=False),  # issued | answered | closed
    Column("answered_by", String(64)),
    Column("answer", Text),
    Column("answered_at", String(40)),
    Column("closed_by", String(64)),
    Column("close_note", Text),
    Column("closed_at", String(40)),
    Index("ix_supervision_orders_case", "case_number"),
)

# Cases the next pass must look at because the hub itself changed something they depend on
# (an order, an item's 挂起/解挂, the calendar): drained by the pass.
supervision_dirty = Table(
    "supervision_dirty",
    metadata,
    Column("case_number", String(20), primary_key=True),
    Column("since", String(40), nullable=False),
)

# The pass's positions: the last status-change event and catalogue transition it has seen.
supervision_positions = Table(
    "supervision_positions",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

SUPERVISION = (
    calendar_years, calendar_exceptions, case_pauses, supervision_clocks, supervision_alerts,
    supervision_orders, supervision_dirty, supervision_positions,
)
ADMIN = ADMIN + SUPERVISION

# --- administration zone: legal documents (法律文书) -------------------------------------
# The notices the hub renders from what it knows of a case (受理通知书, 不予受理决定书,
# 补正告知书): one row per document, the PDF in the zone's document store. (Migration 0007.)

case_documents = Table(
    "case_documents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_number", String(20), nullable=False),
    Column("kind", String(32), nullable=False),  # acceptance_notice | non_acceptance_decision | correction_notice
    Column("event_id", Integer, nullable=False),  # the status change it answers
    Column("sha256", String(64), nullable=False),
    Column("file_name", String(255), nullable=False),  # relative to the document store
    Column("pages", Integer, nullable=False),
    Column("template_version", String(32), nullable=False),
    Column("rendered_at", String(40), nullable=False),
    UniqueConstraint("event_id", "kind", name="uq_case_documents_event_kind"),
    Index("ix_case_documents_case", "case_number"),
)

DOCUMENTS = (case_documents,)
ADMIN = ADMIN + DOCUMENTS

# --- administration zone: major-case filings (重大案件报备) ------------------------------
# One row per filed major decision: written by the case-processing system when it files,
# or by `hub supervise file` for a filing made on paper. (Migration 0009.)

case_filings = Table(
    "case_filings",
    metadata,
    Column("case_number", String(20), primary_key=True),
    Column("authority", String(100), nullable=False),  # 备案机关
    Column("document_no", String(64), nullable=False),  # 备案文号
    Column("filed_at", String(40), nullable=False),
    Column("filed_by", String(64), nullable=False),
    Column("recorded_at", String(40), nullable=False),
)

ADMIN = ADMIN + (case_filings,)

# --- administration zone: corrections (第十九条) ---------------------------------------
# Every correction or deletion of case data, with the written reason, who asked and who
# approved it, the row before and after. Written only by `hub correct`; the migration's
# triggers refuse deleting case data unless the deleting transaction has recorded its
# correction here first (state ``applying``, ``applied`` at its end). (Migration 0011.)

case_corrections = Table(
    "case_corrections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_number", String(20), nullable=False),
    Column("target", String(32), nullable=False),  # the corrected table
    Column("record_key", JSON, nullable=False),  # the row's key columns
    Column("action", String(8), nullable=False),  # set | delete
    Column("before", JSON, nullable=False),
    Column("after", JSON),  # null for a deletion
    Column("reason", Text, nullable=False),
    Column("requested_by", String(64), nullable=False),
    Column("approved_by", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # applying | applied
    Column("at", String(40), nullable=False),
    Index("ix_case_corrections_case", "case_number"),
)

ADMIN = ADMIN + (case_corrections,)
