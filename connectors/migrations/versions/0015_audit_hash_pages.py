"""The audit log's stored hashes in pages of 256 (``audit_hash_pages``) instead of a row
each (``audit_hashes``): an append wrote two keyed rows per leaf, which cost more than the
rest of it. The hashes are copied in index order; an index missing from ``audit_hashes``
(a row deleted behind the hub's back) becomes 32 zero bytes, so `hub audit verify` still
reports the hash there as changed rather than the page hiding the gap.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connectors.migrate import zone_has

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

PAGE = 256
HASH_BYTES = 32
_hashes = sa.table("audit_hashes", sa.column("idx", sa.BigInteger()), sa.column("hash", sa.LargeBinary()))
_pages = sa.table("audit_hash_pages", sa.column("page", sa.BigInteger()), sa.column("hashes", sa.LargeBinary()))


def upgrade() -> None:
    if not zone_has("audit_entries"):
        return
    op.create_table(
        "audit_hash_pages",
        sa.Column("page", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hashes", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("page"),
    )
    connection = op.get_bind()
    page: list[bytes] = []
    number = 0
    expected = 0
    rows = connection.execute(  # streamed (a server-side cursor on PostgreSQL)
        sa.select(_hashes.c.idx, _hashes.c.hash).order_by(_hashes.c.idx).execution_options(yield_per=10_000))
    for idx, value in rows:
        while expected < idx:  # a gap: zeros, which no tree hash equals
            page.append(bytes(HASH_BYTES))
            expected += 1
            number = _flush_full(connection, page, number)
        page.append(bytes(value))
        expected += 1
        number = _flush_full(connection, page, number)
    if page:
        connection.execute(_pages.insert().values(page=number, hashes=b"".join(page)))
    op.drop_table("audit_hashes")


def _flush_full(connection: sa.Connection, page: list[bytes], number: int) -> int:
    if len(page) < PAGE:
        return number
    connection.execute(_pages.insert().values(page=number, hashes=b"".join(page)))
    page.clear()
    return number + 1


def downgrade() -> None:
    if not zone_has("audit_entries"):
        return
    op.create_table(
        "audit_hashes",
        sa.Column("idx", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("idx"),
    )
    connection = op.get_bind()
    for number, hashes in connection.execute(sa.select(_pages.c.page, _pages.c.hashes).order_by(_pages.c.page)):
        data = bytes(hashes)
        connection.execute(_hashes.insert(), [
            {"idx": number * PAGE + i // HASH_BYTES, "hash": data[i:i + HASH_BYTES]}
            for i in range(0, len(data), HASH_BYTES)
        ])
    op.drop_table("audit_hash_pages")
