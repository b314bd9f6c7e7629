"""The driver-level bulk insert stores exactly what SQLAlchemy Core's insert stores."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, text

from connectors.db import bulk_insert, cases, status_outbox, transaction


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
