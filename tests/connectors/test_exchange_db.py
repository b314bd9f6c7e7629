"""The exchange database's bulk paths, idempotency and outbox ordering, on SQLite and
PostgreSQL."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from exchange_kit import generate
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, event, func, insert, select
from sqlalchemy.exc import IntegrityError

from connectors.db import (
    applications,
    cases,
    inbound_records,
    query_passwords,
    status_outbox,
)
from connectors.exchange import sealed_status_line
from connectors.province_feed import scan_changes
from ferry.bundle import record_line
from hub import stages
from hub.zones import zone_engine
from rules.status_seal import Sealer


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    """Every statement sent to the database (an executemany counts once)."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _stage(settings: Any, count: int, seed: int, first_serial: int) -> None:
    generate(settings, count, seed, first_serial=first_serial)
    stages.intake(settings)
    stages.inbound_receive(settings)


def test_loading_a_batch_takes_the_same_statements_whatever_its_size(hub_settings: Any) -> None:
    engine = zone_engine(hub_settings, "admin")
    counts = []
    for count, serial in ((16, 1), (80, 1000)):
        _stage(hub_settings, count, seed=count, first_serial=serial)
        with statements(engine) as seen:
            report = stages.applications_load(hub_settings)
        assert report["accepted"] > 0 and report["rejected"] > 0
        counts.append(len(seen))
    # The audit trail adds a fixed number per batch (lock, ids, frontier, entries, hashes, head)
    # and per zone at the stage's end (the checkpoint).
    assert counts[0] == counts[1] <= 35, counts
    with engine.connect() as connection:
        staged = connection.execute(select(func.count()).select_from(inbound_records)).scalar()
        handed = connection.execute(select(func.count()).select_from(query_passwords)).scalar()
        accepted = connection.execute(select(func.count()).select_from(applications)).scalar()
    assert handed == staged  # every accepted or rejected application has a query password
    assert scan_changes(engine)["case"] == accepted  # and every handed-over case reaches the provincial feed


def test_reading_status_changes_takes_the_same_statements_whatever_their_number(
    hub_settings: Any,
) -> None:
    engine = zone_engine(hub_settings, "admin")
    counts, published = [], []
    for count, serial in ((16, 1), (80, 1000)):
        _stage(hub_settings, count, seed=count, first_serial=serial)
        stages.applications_load(hub_settings)
        stages.case_processing(hub_settings)
        with statements(engine) as seen:
            report = stages.status_publish(hub_settings)
        counts.append(len(seen))
        published.append(report["published"])
    assert published[1] > 3 * published[0]
    assert counts[0] == counts[1] <= 42, counts  # with the audit trail's fixed share, as above


def test_a_net_id_is_handed_over_once_and_a_case_number_never_twice(hub_settings: Any) -> None:
    engine = zone_engine(hub_settings, "admin")
    truth = generate(hub_settings, 16, seed=5)
    stages.intake(hub_settings)
    stages.inbound_receive(hub_settings)
    stages.applications_load(hub_settings)
    # The same applications staged again from another bundle (a sender that lost its
    # ledger and re-sent them under a new sequence number).
    with engine.begin() as connection:
        before = connection.execute(select(applications.c.net_id, applications.c.case_number)).all()
        again = [
            {**row._asdict(), "sequence": 999, "state": "received", "outcome": None}
            for row in connection.execute(select(inbound_records))
        ]
        connection.execute(insert(inbound_records), again)
    report = stages.applications_load(hub_settings)
    assert report["accepted"] == 0 and report["rejected"] == 0
    assert report["duplicates"] == sum(o["outcome"] != "quarantined" for o in truth.values())
    assert stages.applications_load(hub_settings)["duplicates"] == 0  # nothing left to load
    with engine.connect() as connection:
        assert connection.execute(select(applications.c.net_id, applications.c.case_number)).all() == before
    net_id, case_number = before[0]
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(cases).values(
            case_number=case_number, net_id="NET2026010100999999", state="registered", updated_at="x"))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(insert(cases).values(
            case_number="32010000019999999999", net_id=net_id, state="registered", updated_at="x"))


def test_loaded_rows_are_stored_as_the_column_types_store_them(hub_settings: Any) -> None:
    """The load writes tuples through ``insert_rows``: booleans, JSON nulls and SQL NULLs
    land as a Core insert of the same values stores them (``bulk_insert`` did so before)."""
    engine = zone_engine(hub_settings, "admin")
    _stage(hub_settings, 40, seed=11, first_serial=1)
    report = stages.applications_load(hub_settings)
    assert report["accepted"] > 0 and report["rejected"] > 0
    with engine.connect() as connection:
        def column(sql: str) -> list[Any]:
            return [row[0] for row in connection.exec_driver_sql(sql)]

        assert column("SELECT DISTINCT origin FROM cases") == ["internet"]
        assert set(column("SELECT secret FROM cases") + column("SELECT privacy FROM cases")) == {False}
        if engine.dialect.name == "sqlite":
            assert set(column("SELECT typeof(secret) || typeof(privacy) FROM cases")) == {"integerinteger"}
            assert set(column("SELECT reasons || result FROM status_outbox WHERE status = 'registered'")) == {
                "nullnull"}
        # JSON null (not SQL NULL) for a registration's reasons and result; no step, no opinion.
        assert column(
            "SELECT count(*) FROM status_outbox WHERE reasons IS NULL OR result IS NULL"
            " OR step IS NOT NULL OR opinion IS NOT NULL") == [0]
        assert column("SELECT count(*) FROM status_outbox WHERE status = 'rejected'") == [report["rejected"]]
        assert column("SELECT count(*) FROM case_materials") == column(
            "SELECT count(*) FROM case_materials JOIN cases USING (case_number)")
        stored = connection.execute(select(status_outbox.c.reasons).where(status_outbox.c.status == "rejected"))
        assert all(reasons and {"code", "path", "message"} <= set(reasons[0]) for (reasons,) in stored)
        assert connection.execute(select(func.count()).select_from(query_passwords)
                                  .where(query_passwords.c.seal_key.is_(None))).scalar() == 0


def _outbox_row(net_id: str) -> dict[str, Any]:
    return {"net_id": net_id, "case_number": None, "status": "registered", "at": "2026-11-20T09:00:00+08:00"}


def test_an_outbox_id_is_visible_only_after_every_lower_id_committed(exchange_engine: Engine) -> None:
    """Two writers: the first draws its id and keeps its transaction open. The second
    must not be able to commit a higher id meanwhile; otherwise a publisher reading "after
    the last acknowledged id" would pass over the first writer's row for ever."""
    first = exchange_engine.connect()
    transaction = first.begin()
    first.execute(insert(status_outbox), [_outbox_row("NET2026112000000001")])
    second_done = threading.Event()
    second_id: list[int] = []

    def second_writer() -> None:
        with exchange_engine.begin() as connection:
            connection.execute(insert(status_outbox), [_outbox_row("NET2026112000000002")])
            second_id.append(int(connection.execute(select(func.max(status_outbox.c.event_id))).scalar() or 0))
        second_done.set()

    thread = threading.Thread(target=second_writer)
    thread.start()
    try:
        time.sleep(0.5)
        with exchange_engine.connect() as reader:
            visible = reader.execute(select(status_outbox.c.event_id)).scalars().all()
        assert visible == [] and not second_done.is_set()
    finally:
        transaction.commit()
        first.close()
        thread.join(timeout=30)
    assert second_done.is_set()
    with exchange_engine.connect() as reader:
        rows = reader.execute(
            select(status_outbox.c.event_id, status_outbox.c.net_id).order_by(status_outbox.c.event_id)
        ).all()
    assert [r.net_id for r in rows] == ["NET2026112000000001", "NET2026112000000002"]


@given(
    event_id=st.integers(1, 2**63 - 1),
    net_id=st.text(max_size=24),
    opinion=st.one_of(st.none(), st.text(max_size=12)),
)
def test_a_sealed_status_line_is_the_record_line_of_the_sealed_record(
    event_id: int, net_id: str, opinion: str | None
) -> None:
    """``sealed_status_line`` writes its bundle line itself: the bytes ``record_line`` gives
    the sealed record, so the line format stays the one the public feed reads."""
    lookup = "ab" * 32
    sealer = Sealer(bytes(range(32)), lookup)
    record = {"event_id": event_id, "net_id": net_id, "lookup": lookup, "status": "accepted", "opinion": opinion}
    sealed = sealer.seal(event_id, orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
    assert sealed_status_line(record, {net_id: sealer}) == record_line(
        {"sealed": base64.b64encode(sealed).decode("ascii"), "net_id": net_id, "lookup": lookup, "event_id": event_id}
    )
