"""The driver-level bulk insert and update store exactly what SQLAlchemy Core's insert and
update store."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, func, select, text, update

from connectors import db
from connectors.db import (
    audit_hash_pages,
    bulk_insert,
    bulk_update,
    cases,
    inbound_records,
    status_outbox,
    transaction,
)


def _raw(engine: Engine, table: str, order: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(r) for r in connection.execute(text(f"SELECT * FROM {table} ORDER BY {order}"))]


def test_json_none_defaults_and_key_order_match_the_core_insert(exchange_engine: Engine) -> None:
    rows = [
        {"net_id": "NET1", "case_number": "C1", "status": "registered", "at": "t1",
         "step": None, "opinion": None, "reasons": None, "result": None},
        # Same keys in another order, JSON values, text with quotes and Chinese.
        {"result": {"code": 2, "note": "准予"}, "reasons": [{"code": "X", "pointer": "/a"}],
         "opinion": "it's \"fine\"", "step": "受理", "at": "t2", "status": "granted",
         "case_number": "C2", "net_id": "NET2"},
    ]
    with transaction(exchange_engine) as connection:
        assert bulk_insert(connection, status_outbox, rows) == 2
        connection.execute(status_outbox.insert(), rows)  # the same rows the ordinary way
    stored = _raw(exchange_engine, "status_outbox", "event_id")
    assert [r[1:] for r in stored[:2]] == [r[1:] for r in stored[2:]]
    with exchange_engine.connect() as connection:
        read = connection.execute(select(status_outbox).order_by(status_outbox.c.event_id)).all()
    assert read[0].reasons is None and read[1].reasons == [{"code": "X", "pointer": "/a"}]
    assert read[1].result == {"code": 2, "note": "准予"} and read[1].opinion == "it's \"fine\""


def test_missing_columns_take_their_defaults(exchange_engine: Engine) -> None:
    with transaction(exchange_engine) as connection:
        bulk_insert(connection, cases, [
            {"case_number": "A1", "net_id": "NET1", "state": "registered", "updated_at": "t"},
        ])
        connection.execute(cases.insert(), [
            {"case_number": "A2", "net_id": "NET2", "state": "registered", "updated_at": "t"},
        ])
    with exchange_engine.connect() as connection:
        read = connection.execute(select(cases.c.secret, cases.c.privacy).order_by(cases.c.case_number)).all()
    assert read == [(False, False), (False, False)]


def test_rows_of_different_shapes_still_go_in(exchange_engine: Engine) -> None:
    with transaction(exchange_engine) as connection:
        bulk_insert(connection, status_outbox, [
            {"net_id": "NET1", "status": "registered", "at": "t1"},
            {"net_id": "NET2", "status": "rejected", "at": "t2", "reasons": [{"code": "R"}]},
        ])
    with exchange_engine.connect() as connection:
        read = connection.execute(select(status_outbox.c.net_id, status_outbox.c.reasons)
                                  .order_by(status_outbox.c.event_id)).all()
    assert read == [("NET1", None), ("NET2", [{"code": "R"}])]


def test_bulk_update_stores_what_the_core_update_stores(exchange_engine: Engine) -> None:
    new = [{"case_number": f"A{n}", "net_id": f"NET{n}", "state": "registered", "updated_at": "t"} for n in range(4)]
    with transaction(exchange_engine) as connection:
        bulk_insert(connection, cases, new)
        changes = [{"state": "granted", "updated_at": "t2", "secret": True, "case_number": "A0"},
                   {"state": "refused", "updated_at": "t3", "secret": False, "case_number": "A2"}]
        assert bulk_update(connection, cases, changes, keys=("case_number",)) == 2
        connection.execute(  # the same changes to the other two rows the ordinary way
            update(cases).where(cases.c.case_number == bindparam("k")).values(
                state=bindparam("state"), updated_at=bindparam("updated_at"), secret=bindparam("secret")),
            [{"k": "A1", "state": "granted", "updated_at": "t2", "secret": True},
             {"k": "A3", "state": "refused", "updated_at": "t3", "secret": False}],
        )
    stored = _raw(exchange_engine, "cases", "case_number")
    assert stored[0][2:] == stored[1][2:] and stored[2][2:] == stored[3][2:]
    with exchange_engine.connect() as connection:
        read = connection.execute(select(cases.c.case_number, cases.c.state, cases.c.secret)
                                  .order_by(cases.c.case_number)).all()
    assert read == [("A0", "granted", True), ("A1", "granted", True), ("A2", "refused", False), ("A3", "refused", False)]


def test_bulk_update_by_a_composite_key_touches_only_its_rows(exchange_engine: Engine) -> None:
    staged = [{"channel": "inbound", "sequence": s, "idx": i, "net_id": f"N{s}{i}", "payload": "{}",
               "state": "received", "outcome": None, "received_at": "t"} for s in (1, 2) for i in (0, 1)]
    with transaction(exchange_engine) as connection:
        bulk_insert(connection, inbound_records, staged)
        bulk_update(connection, inbound_records, [
            {"state": "loaded", "outcome": "accepted", "channel": "inbound", "sequence": 1, "idx": 1},
            {"state": "loaded", "outcome": "rejected", "channel": "inbound", "sequence": 2, "idx": 0},
        ], keys=("channel", "sequence", "idx"))
    with exchange_engine.connect() as connection:
        read = connection.execute(select(inbound_records.c.sequence, inbound_records.c.idx, inbound_records.c.state,
                                         inbound_records.c.outcome)
                                  .order_by(inbound_records.c.sequence, inbound_records.c.idx)).all()
    assert read == [(1, 0, "received", None), (1, 1, "loaded", "accepted"),
                    (2, 0, "loaded", "rejected"), (2, 1, "received", None)]


# Text that COPY's text format must escape, or that looks like its markers.
AWKWARD = ["tab\there", "line\nbreak", "cr\rlf\r\n", "back\\slash", "\\N", "\\.", "\\x00", "中文 申请", "", " ",
           "mixed\t\\\n中\\t", "'quoted' \"double\"", "\\", "trailing\\"]


def _awkward_outbox(offset: int) -> list[dict[str, Any]]:
    rows = []
    for n in range(60):
        text_value = AWKWARD[n % len(AWKWARD)]
        rows.append({
            "net_id": f"NET{offset + n}", "case_number": None if n % 3 else f"C{offset + n}",
            "status": "registered", "at": text_value or "t", "step": None if n % 2 else text_value,
            "opinion": text_value,
            "reasons": None if n % 4 else [{"code": "X", "message": text_value, "n": n, "ok": n % 8 == 0}],
            "result": None if n % 5 else {"note": text_value, "nested": {"list": [1, None, True, "中"]}},
        })
    return rows


def test_copy_stores_what_the_core_insert_stores(exchange_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL bulk_insert and insert_values go by COPY: NULLs,
    JSON (and JSON null), booleans, bytes and text with tabs, newlines, backslashes and Chinese
    must be stored exactly as Core's insert stores them (on SQLite: the executemany path)."""
    copied: list[int] = []
    real = db._copy_text

    def spy(values: list[tuple[Any, ...]]) -> str | None:
        found = real(values)
        copied.append(len(values) if found is not None else -1)
        return found

    monkeypatch.setattr(db, "_copy_text", spy)
    fast = _awkward_outbox(0)
    flags = [{"case_number": f"K{n}", "net_id": f"NK{n}", "state": AWKWARD[n % len(AWKWARD)] or "s",
              "updated_at": "t", "secret": n % 2 == 0, "privacy": n % 3 == 0,
              "acceptor_name": None if n % 2 else AWKWARD[n % len(AWKWARD)]}
             for n in range(50)]
    hashes = [(n, bytes([n % 256]) * 31 + b"\\") for n in range(50)]
    with transaction(exchange_engine) as connection:
        bulk_insert(connection, status_outbox, fast)
        connection.execute(status_outbox.insert(), [{**row, "net_id": "X" + row["net_id"]} for row in fast])
        bulk_insert(connection, cases, flags)
        connection.execute(cases.insert(), [{**row, "case_number": "X" + row["case_number"], "net_id": "X" + row["net_id"]}
                                            for row in flags])
        db.insert_values(connection, audit_hash_pages, ("page", "hashes"), hashes)
        connection.execute(audit_hash_pages.insert(), [{"page": 10_000 + i, "hashes": h} for i, h in hashes])
    assert copied == ([len(fast), len(flags), len(hashes)] if exchange_engine.dialect.name == "postgresql" else [])
    # (Core's own inserts above never go by COPY.)
    outbox = _raw(exchange_engine, "status_outbox", "event_id")
    half = len(fast)
    assert [(r[1],) + tuple(r[2:]) for r in outbox[:half]] == [(r[1][1:],) + tuple(r[2:]) for r in outbox[half:]]
    with exchange_engine.connect() as connection:
        read = connection.execute(select(status_outbox).order_by(status_outbox.c.event_id).limit(half)).all()
        stored_null = connection.execute(text("SELECT count(*) FROM status_outbox WHERE reasons IS NULL")).scalar()
        case_rows = connection.execute(select(cases).order_by(cases.c.case_number)).all()
        hash_rows = connection.execute(select(audit_hash_pages).order_by(audit_hash_pages.c.page)).all()
    assert stored_null == 0  # JSON null, not SQL NULL, both ways
    assert [(r.net_id, r.case_number, r.at, r.step, r.opinion, r.reasons, r.result) for r in read] == [
        (f["net_id"], f["case_number"], f["at"], f["step"], f["opinion"], f["reasons"], f["result"]) for f in fast]
    by_key = {r.case_number: r for r in case_rows}
    for row in flags:
        mine, theirs = by_key[row["case_number"]], by_key["X" + row["case_number"]]
        assert (mine.state, mine.secret, mine.privacy, mine.acceptor_name) == (
            row["state"], row["secret"], row["privacy"], row["acceptor_name"])
        assert tuple(mine)[2:] == tuple(theirs)[2:]
    assert [(r.page, bytes(r.hashes)) for r in hash_rows[:len(hashes)]] == hashes
    assert [bytes(r.hashes) for r in hash_rows[len(hashes):]] == [h for _, h in hashes]


def test_a_value_copy_does_not_write_goes_by_executemany(exchange_engine: Engine) -> None:
    class Code(str):
        pass

    rows = [(f"c{n}", Code(f"NET{n}"), "registered", "t") for n in range(50)]
    assert db._copy_text([("a", 1, None, True, b"\x00")]) == "a\t1\t\\N\tt\t\\\\x00\n"
    assert db._copy_text([(Code("x"),)]) is None
    with transaction(exchange_engine) as connection:
        db.insert_values(connection, cases, ("case_number", "net_id", "state", "updated_at"), rows)
    with exchange_engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(cases)).scalar() == len(rows)


def test_select_rows_reads_what_the_core_select_reads(exchange_engine: Engine) -> None:
    """JSON parsed (and JSON null as None), booleans as booleans, labels as names, SQL NULL
    from an outer join, bound parameters by name: the same values as ``connection.execute``,
    on both backends."""
    with transaction(exchange_engine) as connection:
        bulk_insert(connection, cases, [
            {"case_number": "A1", "net_id": "NET1", "state": "registered", "updated_at": "t", "secret": True},
        ])
        bulk_insert(connection, status_outbox, [
            {"net_id": "NET1", "case_number": "A1", "status": "registered", "at": "t1", "reasons": None,
             "result": {"code": 2, "note": "准予", "big": 2**70}},
            {"net_id": "NET2", "case_number": "B1", "status": "rejected", "at": "t2",
             "reasons": [{"code": "X", "pointer": "/a"}], "result": None},
            {"net_id": "NET3", "case_number": "C1", "status": "rejected", "at": "t3", "reasons": [], "result": None},
        ])
    query = (
        select(status_outbox, cases.c.secret, func.coalesce(cases.c.state, status_outbox.c.status).label("state"))
        .select_from(status_outbox.outerjoin(cases, cases.c.case_number == status_outbox.c.case_number))
        .where(status_outbox.c.event_id.between(bindparam("first"), bindparam("last")))
        .order_by(status_outbox.c.event_id)
    )
    with exchange_engine.connect() as connection:
        first, last = connection.execute(select(func.min(status_outbox.c.event_id), func.max(status_outbox.c.event_id))).one()
        columns, rows = db.select_rows(connection, query, {"first": first + 1, "last": last})
        expected = connection.execute(query, {"first": first + 1, "last": last})
        assert columns == list(expected.keys())
        assert rows == [tuple(r) for r in expected]
        columns, rows = db.select_rows(connection, query, {"first": first, "last": first})
    row = dict(zip(columns, rows[0], strict=True))
    assert row["result"] == {"code": 2, "note": "准予", "big": 2**70} and row["reasons"] is None
    assert row["secret"] is True and row["state"] == "registered"
