"""What may leave the administration network for the public status feed (办件状态公开).

A ``StatusChange`` (one internal status change with the party data of its case) gets one
``Publication`` decision from ``decide_publication``: ``Withheld`` (a minor, secret or
privacy case: nothing is published), ``Held`` (the personal-data scanner of
``rules.personal_data`` still finds something: held for review) or ``Publish`` (the
allow-listed, masked public records). The connector only carries the decision out.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Final, Literal

import orjson

import schemas
from rules.cases import INTERNET
from rules.catalogue import Catalogue
from rules.identifiers import (
    is_valid_org_code,
    is_valid_uscc,
    resident_id_birth_date,
)
from rules.penalties import penalty_kind_names
from rules.personal_data import Finding, as_mobile, compact, normalise, scan_for_personal_data

PartyType = Literal["person", "organisation"]

COMPOUND_SURNAMES: Final = frozenset({
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
    "宇文", "司徒", "夏侯", "轩辕", "令狐", "钟离", "端木", "呼延", "南宫", "独孤",
    "百里", "澹台", "东郭", "西门", "申屠", "太史", "万俟", "闻人",
})

_STATUS_EVENT_SCHEMA: Final = schemas.load_schema("status_event")
STATUS_EVENT_FIELDS: Final[frozenset[str]] = frozenset(_STATUS_EVENT_SCHEMA["properties"])
_REASON_FIELDS: Final = tuple(schemas.load_schema("reason")["properties"])
_RESULT_FIELDS: Final = tuple(_STATUS_EVENT_SCHEMA["properties"]["result"]["properties"])
# Published as they are (after escaping); the applicant's name and number are derived below.
_COPIED_FIELDS: Final = tuple(
    f for f in _STATUS_EVENT_SCHEMA["properties"]
    if f not in ("applicant_name", "applicant_id", "reasons", "result")
)
# Internal flags of cases that are not published at all: minors, secrets, privacy.
WITHHELD_FLAGS: Final = ("minor", "secret", "privacy")
ADULT_AGE: Final = 18

_DISCLOSURE_SCHEMA: Final = schemas.load_schema("disclosure_record")
DISCLOSURE_FIELDS: Final[frozenset[str]] = frozenset(_DISCLOSURE_SCHEMA["properties"])
# The allow-list of each record kind that leaves the administration network.
ALLOWED_FIELDS: Final[dict[str, frozenset[str]]] = {
    "status_events": STATUS_EVENT_FIELDS,
    "disclosures": DISCLOSURE_FIELDS,
    # A case withheld after some of its changes were published: take its document down.
    "retractions": frozenset({"lookup", "record_ids"}),
}

def mask_id_number(number: str) -> str:
    """An ID number (身份证号) with only the first 6 and last 4 characters shown."""
    number = compact(number)
    if len(number) < 11:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def mask_phone(phone: str) -> str:
    """A mobile number as ``138****5678``; any other phone keeps only its last 4 digits."""
    digits = "".join(c for c in normalise(phone) if c.isascii() and c.isdigit())
    mobile = as_mobile(digits)
    if mobile is not None:
        return mobile[:3] + "****" + mobile[-4:]
    if len(digits) <= 4:
        return "*" * len(digits)
    return "*" * (len(digits) - 4) + digits[-4:]


def mask_name(name: str, party_type: PartyType | str = "person") -> str:
    """A person's name with only the surname shown (``张*``, ``欧阳**``).

    Organisation names are public and come back unchanged; any other party type is
    treated as a person.
    """
    if party_type == "organisation":
        return name
    name = name.strip()
    if len(name) <= 1:
        return "*" * len(name)
    surname = 2 if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES else 1
    return name[:surname] + "*" * (len(name) - surname)


def withheld_from_publication(event: Mapping[str, Any]) -> bool:
    """True for a case that is not published at all (minors, state or business secrets,
    privacy): the caller must publish nothing for it, not even a masked record."""
    return any(bool(event.get(flag)) for flag in WITHHELD_FLAGS)


def withholding_reason(event: Mapping[str, Any]) -> str | None:
    """Why ``event`` is not published at all (``minor``, ``secret``, ``privacy``), or None.

    ``minor`` is derived here when the event does not say: a person whose resident ID
    gives a birth date less than 18 years before the event's time (the decision time).
    """
    for flag in WITHHELD_FLAGS:
        if event.get(flag):
            return flag
    if event.get("applicant_type") == "person" and is_minor_at(
        event.get("applicant_id_number"), event.get("at")
    ):
        return "minor"
    return None


def is_minor_at(id_number: Any, at: Any) -> bool:
    """True when the resident ID ``id_number`` belongs to someone under 18 at ``at`` (an
    ISO date or date-time, or a date). Unknown birth dates are not minors."""
    if not isinstance(id_number, str) or at is None:
        return False
    born = _birth_date(id_number)
    if born is None:
        return False
    if isinstance(at, datetime):
        on = at.date()
    elif isinstance(at, date):
        on = at
    else:
        try:
            on = date.fromisoformat(str(at)[:10])
        except ValueError:
            return False
    age = on.year - born.year - ((on.month, on.day) < (born.month, born.day))
    return age < ADULT_AGE


@lru_cache(maxsize=65_536)
def _birth_date(id_number: str) -> date | None:
    # Cached: a case's applicant recurs in each of its changes.
    return resident_id_birth_date(compact(id_number).upper())


def public_disclosure_record(event: Mapping[str, Any]) -> dict[str, Any]:
    """The 双公示 form of a granted licence or a penalty decision: allow-listed fields
    only, the party masked like in status records, every string plain text."""
    party_type = str(event.get("applicant_type"))
    name = event.get("applicant_name")
    masked_name = None if name is None else mask_name(str(name), party_type)
    hidden: dict[str, str] = {}
    if masked_name is not None and len(masked_name) > 1 and masked_name != name:
        hidden[str(name).strip()] = masked_name
    penalty = event.get("penalty")
    record: dict[str, Any] = {
        "record_id": event["event_id"],
        "kind": "penalty" if penalty else "licence",
        "agency_code": event.get("agency_code"),
        "power_code": event.get("power_code"),
        "power_name": event.get("power_name"),
        "decision": event.get("opinion") or "",
        "decided_at": event.get("at"),
    }
    if masked_name is not None:
        record["party_name"] = masked_name
    if event.get("applicant_id_number"):
        record["party_id"] = _public_applicant_id(str(event["applicant_id_number"]), party_type)
    if penalty:
        record["penalty_kinds"] = penalty_kind_names(penalty.get("penalty_kinds") or ())
        fen = int(penalty.get("fine_amount") or 0)
        record["fine_amount"] = f"{fen // 100}.{fen % 100:02d}"
    return {
        k: _plain_text(v, hidden) for k, v in record.items() if k in DISCLOSURE_FIELDS
    }


def public_status_record(event: Mapping[str, Any]) -> dict[str, Any]:
    """The public form of an internal status-change row: allow-listed fields only, the
    applicant masked (also where a person's name appears in free text), every string plain
    text (HTML-escaped)."""
    party_type = str(event.get("applicant_type"))
    name = event.get("applicant_name")
    masked_name = None if name is None else mask_name(str(name), party_type)
    # A case name such as "张三道路运输经营许可申请" carries the person's name too.
    hidden: dict[str, str] = {}
    if masked_name is not None and len(masked_name) > 1 and masked_name != name:
        hidden[str(name).strip()] = masked_name

    record: dict[str, Any] = {}
    for name in _COPIED_FIELDS:
        if name in event:
            # ``_plain_text`` inlined for the plain strings, ints and None most fields are.
            value = event[name]
            kind = type(value)
            if kind is str:
                for raw, masked in hidden.items():
                    value = value.replace(raw, masked)
                if "&" in value or "<" in value or ">" in value:
                    value = html.escape(value, quote=False)
            elif value is not None and kind is not int:
                value = _plain_text(value, hidden)
            record[name] = value
    if masked_name is not None:
        record["applicant_name"] = _plain_text(masked_name, hidden)
    if event.get("applicant_id_number"):
        record["applicant_id"] = _plain_text(
            _public_applicant_id(str(event["applicant_id_number"]), party_type), hidden
        )
    if "reasons" in event:
        record["reasons"] = [
            {k: _plain_text(reason[k], hidden) for k in _REASON_FIELDS if k in reason}
            for reason in event["reasons"] or ()
        ]
    if "result" in event:
        result = event["result"]
        record["result"] = None if result is None else {
            k: _plain_text(result[k], hidden) for k in _RESULT_FIELDS if k in result
        }
    return record


@lru_cache(maxsize=65_536)
def _public_applicant_id(number: str, party_type: str) -> str:
    # Cached: a case's number recurs in each of its changes, and compacting it and testing
    # the check characters cost more than the rest of the record.
    # An organisation's credit code is public; anything else that is not one is masked.
    if party_type == "organisation" and (is_valid_uscc(number) or is_valid_org_code(number)):
        return number
    return mask_id_number(number)


def _plain_text(value: Any, hidden: Mapping[str, str]) -> Any:
    """``value`` with every string HTML-escaped and each key of ``hidden`` replaced."""
    if isinstance(value, str):
        for raw, masked in hidden.items():
            value = value.replace(raw, masked)
        # Most texts hold nothing to escape; escaping also makes a str subclass a plain str.
        if "&" in value or "<" in value or ">" in value or type(value) is not str:
            return html.escape(value, quote=False)
        return value
    # Numbers and None, most of what is not text, pass the type tests below unchanged.
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {_plain_text(str(k), hidden): _plain_text(v, hidden) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_text(v, hidden) for v in value]
    return value


@dataclass(frozen=True)
class Penalty:
    """The 双公示 part of a decision to penalise: kinds (codes) and the fine in fen."""

    penalty_kinds: list[str] | None
    fine_amount: int | None


@dataclass(frozen=True)
class StatusChange:
    """One internal status change (办件状态变更) with what publishing it needs: the change
    itself, the case's public lookup name, the item, the party (from the application, or
    from the rejected envelope as far as it is well-formed) and the case's flags.

    Its fields (``vars(change)``) are the mapping the record builders above read."""

    event_id: int
    net_id: str | None  # None for a counter or ex-officio case
    case_number: str | None
    status: str
    at: str
    step: str | None
    opinion: str | None
    reasons: list[dict[str, Any]] | None
    result: dict[str, Any] | None
    lookup: str | None
    power_code: str | None
    power_name: str | None
    category: str | None
    agency_code: str | None
    case_name: str | None
    applicant_type: str | None
    applicant_name: str | None
    applicant_id_number: str | None
    secret: bool | None = None
    privacy: bool | None = None
    penalty: Penalty | None = None
    origin: str = INTERNET
    case_result: int | None = None  # case_results.result: 2 granted

    @property
    def record_key(self) -> str:
        """The key the hub records the change's case under: its NET_ID, or the case number of
        a case of another origin."""
        key = self.net_id or self.case_number
        assert key is not None  # the outbox's check constraint: one of the two is given
        return key

    def fields(self) -> dict[str, Any]:
        """The change as the mapping the record builders read (the penalty as a dict)."""
        found = dict(vars(self))
        if self.penalty is not None:
            found["penalty"] = vars(self.penalty)
        return found


# The party fields a rejected application's envelope can give (application columns first).
_PARTY_FIELDS: Final = (
    "power_code", "agency_code", "case_name", "applicant_type", "applicant_name",
    "applicant_id_number",
)
_PENALISE: Final = 1  # penalty_cases.decision: 1 decides to penalise
_GRANTED: Final = 2  # case_results.result: 2 granted
# The status_publish provenance outcome of an application's changes sent in one bundle.
PUBLISHED: Final = "published"


def published_changes(outcome: Any, detail: Any) -> list[tuple[int, str]]:
    """The changes, (event id, status), that a ``status_publish`` provenance event records as
    sent: one event per application and bundle (outcome ``published``, detail ``{"events":
    [[event id, status], …]}``), or, from hubs before it, one per change (outcome the
    status, detail ``{"event_id": …}``). Held and withheld changes are recorded without a
    bundle; the caller leaves those out. Empty when the detail is neither form."""
    if not isinstance(detail, dict):
        return []
    if outcome == PUBLISHED:
        changes = detail.get("events")
        if not isinstance(changes, list):
            return []
        found = []
        for change in changes:
            if not (isinstance(change, list) and len(change) == 2 and type(change[0]) is int
                    and isinstance(change[1], str)):
                return []
            found.append((change[0], change[1]))
        return found
    event_id = detail.get("event_id")
    return [(event_id, outcome)] if type(event_id) is int and isinstance(outcome, str) else []


# A published decision changed (决定变更), or corrected through ``hub correct`` (第十九条):
# its 双公示 record is taken down and the new form published. A revoked decision (撤销) is
# only taken down.
REPLACING_STATUSES: Final = ("decision_changed", "corrected")
TAKEDOWN_STATUSES: Final = ("revoked", *REPLACING_STATUSES)
# The status changes that may carry a 双公示 record.
DISCLOSING_STATUSES: Final = ("granted", "decided", *REPLACING_STATUSES)
OFFLINE: Final = "offline"


def status_change(row: Mapping[str, Any], catalogue: Catalogue) -> StatusChange:
    """The typed change of one row of the status outbox joined with its application, case,
    query password, penalty case and rejected envelope (``rejected_envelope``)."""
    return change_of_case(row, case_part(row, catalogue))


def case_part(row: Mapping[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    """What a status change takes from its case (``status_change``'s ``row`` without the
    outbox's own columns): the same for each change of the case, so a reader that joins
    once per case makes it once (``change_of_case``)."""
    get = row.get
    party = {name: get(name) for name in _PARTY_FIELDS}
    envelope = get("rejected_envelope")
    if party["power_code"] is None and envelope is not None:
        party.update(_party_from_envelope(envelope))
    item = catalogue.get(party["power_code"]) if party["power_code"] else None
    # Only a decision to penalise is a 双公示 penalty record (or its changed or corrected form).
    penalty_decision = get("penalty_decided_at") is not None and get("decision") == _PENALISE
    return {
        "lookup": get("lookup"),
        "power_code": party["power_code"], "power_name": item.name if item else None,
        "category": item.category if item else None, "agency_code": party["agency_code"],
        "case_name": party["case_name"], "applicant_type": party["applicant_type"],
        "applicant_name": party["applicant_name"], "applicant_id_number": party["applicant_id_number"],
        "secret": get("secret"), "privacy": get("privacy"),
        "penalty": Penalty(get("penalty_kinds"), get("fine_amount")) if penalty_decision else None,
        "origin": get("origin") or INTERNET, "case_result": get("case_result"),
    }


_PENALTY_STATUSES: Final = frozenset(("decided", *REPLACING_STATUSES))


def change_of_case(row: Mapping[str, Any], case: Mapping[str, Any]) -> StatusChange:
    """The typed change of the outbox row ``row`` (its own columns) of the case ``case``
    (``case_part``)."""
    # Every field set at once, not through the frozen dataclass's ``__init__``, which sets
    # each of them with ``object.__setattr__``: that alone cost more than the rest of this
    # function, once per status change. (Tested: the same change ``__init__`` gives.)
    change = object.__new__(StatusChange)
    fields = change.__dict__
    fields.update(
        event_id=row["event_id"], net_id=row["net_id"], case_number=row["case_number"],
        status=row["status"], at=row["at"], step=row["step"], opinion=row["opinion"],
        reasons=row["reasons"], result=row["result"],
    )
    fields.update(case)
    # A penalty case's penalty belongs to its decision and the decision's changed or
    # corrected forms only.
    if fields["penalty"] is not None and row["status"] not in _PENALTY_STATUSES:
        fields["penalty"] = None
    return change


def _party_from_envelope(text: str) -> dict[str, str]:
    """What a rejected application tells about itself, as far as it is well-formed."""
    try:
        envelope = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(envelope, dict):
        return {}
    given = envelope.get("applicant")
    applicant: dict[str, Any] = given if isinstance(given, dict) else {}
    found = {
        "power_code": envelope.get("power_code"),
        "agency_code": envelope.get("agency_code"),
        "case_name": envelope.get("case_name"),
        "applicant_type": applicant.get("type"),
        "applicant_name": applicant.get("name"),
        "applicant_id_number": applicant.get("id_number"),
    }
    return {k: v for k, v in found.items() if isinstance(v, str)}


def discloses(change: StatusChange) -> bool:
    """Whether a status change is a result of the daily 双公示 lists: a granted licence
    or a penalty decision, first made or in its changed or corrected form."""
    licence = change.category == "XK" and (
        change.status == "granted" or (change.status in REPLACING_STATUSES and change.case_result == _GRANTED))
    return licence or change.penalty is not None


def outbound_records(change: StatusChange, fields: Mapping[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Every public record one status change gives, by record kind (``fields``: its
    ``change.fields()``, when the caller has them already)."""
    fields = change.fields() if fields is None else fields
    records = {"status_events": public_status_record(fields)}
    if discloses(change):
        records["disclosures"] = public_disclosure_record(fields)
    return records


@dataclass(frozen=True)
class Withheld:
    """The change's status record is not published: ``reason`` is ``minor``, ``secret`` or
    ``privacy`` (nothing of it is), or ``offline`` for a counter or ex-officio case, which
    has no status document (no query password) but whose 双公示 record, in ``records``,
    is published."""

    reason: str
    records: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Held:
    """The scanner found personal data in the change's public records: held for review."""

    findings: tuple[Finding, ...]

    @property
    def reason(self) -> str:
        return "SCANNER:" + ",".join(sorted({f.code for f in self.findings}))


@dataclass(frozen=True)
class Publish:
    """The change's public records, by record kind (``status_events``, ``disclosures``)."""

    records: dict[str, dict[str, Any]]


Publication = Withheld | Held | Publish


def decide_publication(change: StatusChange, *, case_withheld: str | None = None) -> Publication:
    """What happens to ``change`` on its way out. ``case_withheld``: the reason its case was
    withheld already (once a case is withheld, every later change of it is withheld too)."""
    fields = change.fields()
    # Once withheld for a minor, a secret or privacy, always; ``offline`` is no such mark.
    reason = case_withheld if case_withheld not in (None, OFFLINE) else withholding_reason(fields)
    if reason is not None:
        return Withheld(reason)
    records = outbound_records(change, fields)
    if change.origin != INTERNET:
        del records["status_events"]
    findings = [finding for record in records.values() for finding in scan_for_personal_data(record)]
    if findings:
        return Held(tuple(findings))
    if change.origin != INTERNET:
        return Withheld(OFFLINE, records)
    return Publish(records)
