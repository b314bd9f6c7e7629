"""Case numbers (办件流水号): agency code plus a 10-digit sequence, once per NET_ID."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, select, update

from connectors.db import applications, case_sequences, engine_for, inbound_records
from connectors.exchange import allocate_case_numbers, allocate_case_numbers_of, load_applications
from connectors.migrate import create_schema
from rules.catalogue import build_catalogue
from rules.identifiers import resident_id_check_char

CATALOGUE = build_catalogue(json.loads((Path(__file__).parents[2] / "hub/defaults/catalogue.json").read_text("utf-8")))
ITEM = next(i for i in CATALOGUE.items.values() if i.state == "A" and i.code.endswith("SP00000000001"))


def envelope(net_id: str, store: Path) -> dict[str, Any]:
    materials = []
    for index, rule in enumerate(ITEM.materials):
        digest = f"{index + 1:x}" * 64
        (store / digest[:2]).mkdir(parents=True, exist_ok=True)
        (store / digest[:2] / digest).write_bytes(b"%PDF-1.7")
        materials.append({"material_code": rule.material_code, "name": rule.name, "sha256": digest,
                          "media_type": "application/pdf", "size": 8})
    body = "32010219900307123"
    return {
        "net_id": net_id, "submitted_at": "2026-11-23T09:00:00+08:00", "channel": 1,
        "power_code": ITEM.code, "agency_code": "3201000001", "case_name": "线路调整申请",
        "summary": "申请调整公交线路走向", "form": {}, "materials": materials,
        "applicant": {"type": "person", "name": "张三", "id_type": "resident_id",
                      "id_number": body + resident_id_check_char(body)},
    }


def stage(engine: Any, sequence: int, documents: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(inbound_records.insert(), [
            {"channel": "inbound", "sequence": sequence, "idx": i, "net_id": d["net_id"],
             "payload": orjson.dumps(d).decode(), "state": "received", "outcome": None,
             "received_at": "2026-11-23T10:00:00+08:00"}
            for i, d in enumerate(documents)
        ])


def test_one_case_number_per_net_id_whatever_the_revalidation(tmp_path: Path) -> None:
    engine = engine_for(f"sqlite:///{tmp_path / 'exchange.sqlite'}")
    create_schema(engine, "admin")
    store = tmp_path / "attachments"
    first, second = envelope("NET20261123000001", store), envelope("NET20261123000002", store)
    stage(engine, 1, [first, second])
    report = load_applications(engine, catalogue=CATALOGUE, attachment_store=store)
    assert report.accepted == 2
    with engine.connect() as connection:
        numbers = dict(connection.execute(select(applications.c.net_id, applications.c.case_number)).all())
    assert numbers == {"NET20261123000001": "32010000010000000001", "NET20261123000002": "32010000010000000002"}

    stage(engine, 2, [first])  # the same NET_ID arrives again in a later bundle
    with engine.begin() as connection:  # and an operator re-validates the first bundle
        connection.execute(update(inbound_records).where(inbound_records.c.sequence == 1).values(state="received", outcome=None))
    again = load_applications(engine, catalogue=CATALOGUE, attachment_store=store)
    assert (again.accepted, again.duplicates) == (0, 3)
    with engine.connect() as connection:
        assert dict(connection.execute(select(applications.c.net_id, applications.c.case_number)).all()) == numbers
        assert connection.execute(select(case_sequences.c.last_value)).scalar() == 2

    stage(engine, 3, [envelope("NET20261123000003", store)])
    load_applications(engine, catalogue=CATALOGUE, attachment_store=store)
    with engine.connect() as connection:
        third = connection.execute(
            select(applications.c.case_number).where(applications.c.net_id == "NET20261123000003")
        ).scalar()
    assert third == "32010000010000000003"  # no number was used up by the duplicates



def test_one_statement_reserves_every_agency_s_numbers_as_one_at_a_time_would(exchange_engine: Any) -> None:
    """``allocate_case_numbers_of`` (one upsert for a batch's agencies) against the same
    reservations made agency by agency, on each backend: the same numbers, in order, for
    an agency new to the table and agencies that already have a sequence; an exhausted
    sequence is refused."""
    counts = {"3201000002": 3, "3201000001": 1, "3202000007": 2}
    existing = [{"agency_code": "3201000001", "last_value": 41},
                {"agency_code": "3202000007", "last_value": 9_999_999_997}]
    with exchange_engine.begin() as connection:
        connection.execute(case_sequences.insert(), existing)
        one_by_one = {code: allocate_case_numbers(connection, code, counts[code]) for code in sorted(counts)}
        connection.execute(delete(case_sequences))
        connection.execute(case_sequences.insert(), existing)
        together = allocate_case_numbers_of(connection, counts)
        assert together == one_by_one
        assert together == {
            "3201000001": ["32010000010000000042"],
            "3201000002": ["32010000020000000001", "32010000020000000002", "32010000020000000003"],
            "3202000007": ["32020000079999999998", "32020000079999999999"],
        }
        last = dict(connection.execute(select(case_sequences.c.agency_code, case_sequences.c.last_value)).all())
        assert last == {"3201000001": 42, "3201000002": 3, "3202000007": 9_999_999_999}
        assert allocate_case_numbers_of(connection, {}) == {}
    with pytest.raises(OverflowError), exchange_engine.begin() as connection:
        allocate_case_numbers_of(connection, {"3201000001": 1, "3202000007": 1})
