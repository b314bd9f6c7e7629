"""Cases the case-processing system opens itself (counter applications, ex officio): the
exchange-database writes of ``docs/exchange-db.md`` "Cases of every origin", as one
set-based function. The processing simulator registers its counter and ex-officio cases
through it; a case-processing system written in Python may call it; any other writes the
same rows in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from connectors.clock import iso
from connectors.db import bulk_insert, case_registrations, cases, status_outbox
from connectors.exchange import allocate_case_numbers_of
from connectors.provenance import record_events
from rules.cases import RegistrationProblem, registration_problems
from rules.catalogue import Catalogue
from schemas.exceptions import TerminalError

REGISTRATION_COLUMNS = tuple(c.name for c in case_registrations.columns if c.name != "case_number")


class RegistrationRefused(TerminalError):
    """A batch of case registrations the hub will not write: every problem of every record
    (by its index in the batch), and nothing of the batch written."""

    def __init__(self, problems: Mapping[int, Sequence[RegistrationProblem]]) -> None:
        self.problems = {index: list(found) for index, found in problems.items()}
        lines = [f"#{index} {p.field}: {p.code} {p.message}" for index, found in sorted(self.problems.items())
                 for p in found]
        super().__init__("case registration refused: " + "; ".join(lines))


def register_cases(
    connection: Connection, records: Sequence[Mapping[str, Any]], catalogue: Catalogue, *, at: datetime,
) -> list[str]:
    """Register counter and ex-officio cases in one transaction and return their case
    numbers, in the order given.

    Each record has ``origin`` (``counter`` | ``ex_officio``), ``power_code``,
    ``agency_code``, ``case_name``, ``summary``, ``channel``, the party (``applicant_type``,
    ``applicant_name``, ``applicant_id_type``, ``applicant_id_number``, optional
    ``applicant_mobile`` and ``applicant_address``) and ``submitted_at`` (applied at the
    counter, or the case opened). Per record this writes the ``cases`` row (state
    ``registered``, no NET_ID), the ``case_registrations`` row, the ``registered`` status
    change and a provenance event under the case number. A batch with any problem is
    refused whole (``RegistrationRefused``)."""
    problems = {
        index: found for index, record in enumerate(records)
        if (found := registration_problems(record, catalogue, registered_at=at))
    }
    if problems:
        raise RegistrationRefused(problems)
    stamp = iso(at)
    numbers: list[str] = [""] * len(records)
    by_agency: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        by_agency.setdefault(str(record["agency_code"]), []).append(index)
    reserved = allocate_case_numbers_of(connection, {code: len(indexes) for code, indexes in by_agency.items()})
    for agency_code, indexes in by_agency.items():
        for index, number in zip(indexes, reserved[agency_code], strict=True):
            numbers[index] = number
    case_rows, registration_rows, outbox_rows = [], [], []
    for number, record in zip(numbers, records, strict=True):
        item = catalogue.items[str(record["power_code"])]
        case_rows.append({
            "case_number": number, "net_id": None, "state": "registered", "updated_at": stamp,
            "origin": record["origin"], "power_code": item.code, "power_version": item.version,
            "agency_code": record["agency_code"], "registered_at": stamp,
        })
        registration_rows.append({"case_number": number, **{c: record.get(c) for c in REGISTRATION_COLUMNS}})
        outbox_rows.append({"net_id": None, "case_number": number, "status": "registered", "at": stamp,
                            "step": "登记", "opinion": None, "reasons": None, "result": None})
    bulk_insert(connection, cases, case_rows)
    bulk_insert(connection, case_registrations, registration_rows)
    bulk_insert(connection, status_outbox, outbox_rows)  # last: the outbox lock (PostgreSQL)
    record_events(connection, [(n, "case_register", str(r["origin"]), None, {"power_code": r["power_code"]})
                               for n, r in zip(numbers, records, strict=True)], stamp)
    return numbers
