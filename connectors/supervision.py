"""Electronic supervision (电子监察) in the exchange database: the working-day calendar
table, the incremental supervision pass that keeps clocks and alerts, supervision orders
(督办), and the alerts' way up to the province feed.

The pass looks only at cases that can have changed: those with a status change since its
last position (the case-processing system writes one per transition, the outbox is
ordered), those the hub itself touched (an order, an item's 挂起/解挂, a calendar import:
``supervision_dirty``), and those whose clock reaches its next threshold now
(``next_check_at``). Each chunk of cases is one transaction, and the database keeps one
open alert per (rule, case, subject), so a crashed pass run again raises nothing twice.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Select,
    String,
    Table,
    and_,
    delete,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.exc import OperationalError

from connectors.alarms import open_alarm_rows, raise_alarm, resolve_open
from connectors.audit import log_rows
from connectors.clock import CST, iso, now
from connectors.db import (
    bulk_insert,
    calendar_exceptions,
    calendar_years,
    case_filings,
    case_pauses,
    case_results,
    case_steps,
    cases,
    ferry_sent,
    penalty_cases,
    publish_withheld,
    status_outbox,
    supervision_alerts,
    supervision_clocks,
    supervision_dirty,
    supervision_orders,
    supervision_positions,
    transaction,
)
from connectors.province_feed import enqueue_records
from rules.alerts import AlertKey, AlertPolicy, lifecycle
from rules.calendar import (
    CalendarError,
    CalendarException,
    CalendarGap,
    WorkingCalendar,
    WorkingPeriod,
    WorkingTime,
    chinese_calendar_exceptions,
    chinese_calendar_years,
)
from rules.catalogue import Catalogue
from rules.clocks import Pause
from rules.discretion import DiscretionStandard
from rules.major_cases import is_major
from rules.supervision import (
    TIME_RULES,
    Disclosure,
    Filing,
    Order,
    PenaltyDecision,
    Step,
    SupervisedCase,
    evaluate,
    item_pauses,
    item_state_at,
)
from schemas.exceptions import TerminalError, TransientError

log = logging.getLogger("hub.supervision")

TERMINAL_STATES = frozenset({"not_accepted", "granted", "refused", "stopped", "decided", "revoked"})
CALENDAR_GAP_ALARM = "CALENDAR_GAP"
SEED_SOURCE = "chinesecalendar"
CHUNK = 2_000
DISCLOSURE_DAYS = 7  # 双公示: decisions public within 7 working days unless configured otherwise
DISCLOSED_STATUSES = ("granted", "decided")


def local(text: str) -> datetime:
    """A stored ISO time as the naive agency-local time the rules count in."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        moment = moment.astimezone(CST).replace(tzinfo=None)
    return moment


def stored(moment: datetime) -> str:
    """A naive agency-local time as stored (ISO with the agency's offset)."""
    return iso(moment.replace(tzinfo=CST))


# --- the working-day calendar ---------------------------------------------------------


def seed_calendar(connection: Connection, at: str) -> list[int]:
    """Add the years ``chinesecalendar`` covers and the table does not have yet; years
    already there (imported by a steward) are never overwritten. Returns the years added."""
    have = set(connection.execute(select(calendar_years.c.year)).scalars())
    missing = [year for year in chinese_calendar_years() if year not in have]
    if not missing:
        return []
    rows = chinese_calendar_exceptions(missing)
    connection.execute(calendar_years.insert(), [
        {"year": year, "source": SEED_SOURCE, "recorded_at": at} for year in missing])
    if rows:
        bulk_insert(connection, calendar_exceptions, [
            {"day": r.day.isoformat(), "kind": r.kind, "note": r.note[:64], "source": SEED_SOURCE, "recorded_at": at}
            for r in rows])
    return missing


def load_calendar(connection: Connection) -> WorkingCalendar:
    years = list(connection.execute(select(calendar_years.c.year)).scalars())
    rows = connection.execute(select(calendar_exceptions.c.day, calendar_exceptions.c.kind,
                                     calendar_exceptions.c.note)).all()
    return WorkingCalendar([CalendarException(date.fromisoformat(r.day), r.kind, r.note) for r in rows], years)


def parse_calendar_file(text: str, name: str) -> tuple[list[CalendarException], list[int]]:
    """Exceptions from a CSV file (``date,kind,note``; kind ``holiday`` or ``workday``, or
    the Chinese 休 / 班) and the years it covers: every year one of its dates falls in, and
    the years named on a ``# years: 2027,2028`` line (a year may have no exceptions)."""
    import csv
    import io
    import re

    kinds = {"holiday": "holiday", "休": "holiday", "假": "holiday", "workday": "workday", "班": "workday"}
    exceptions: list[CalendarException] = []
    years: set[int] = set()
    errors: list[str] = []
    for number, row in enumerate(csv.reader(io.StringIO(text.lstrip("\ufeff"))), start=1):
        if not row or not "".join(row).strip():
            continue
        first = row[0].strip()
        if first.startswith("#"):
            found = re.match(r"#\s*years\s*:\s*(.*)$", first + ("," + ",".join(row[1:]) if len(row) > 1 else ""))
            if found:
                for part in re.split(r"[,\s]+", found.group(1).strip()):
                    if part:
                        if not part.isdigit():
                            errors.append(f"{name}:{number}: {part!r} is not a year")
                        else:
                            years.add(int(part))
            continue
        if first.lower() in ("date", "day", "日期"):
            continue
        try:
            day = date.fromisoformat(first)
        except ValueError:
            errors.append(f"{name}:{number}: {first!r} is not a date YYYY-MM-DD")
            continue
        kind = kinds.get(row[1].strip().lower() if len(row) > 1 else "")
        if kind is None:
            errors.append(f"{name}:{number}: kind must be holiday/休 or workday/班, not {row[1:2]}")
            continue
        try:
            exceptions.append(CalendarException(day, kind, row[2].strip()[:64] if len(row) > 2 else ""))
        except CalendarError as error:
            errors.append(f"{name}:{number}: {error}")
            continue
        years.add(day.year)
    days = [e.day for e in exceptions]
    twice = sorted({d for d in days if days.count(d) > 1})
    if twice:
        errors.append(f"{name}: dates given more than once: {', '.join(map(str, twice))}")
    if errors:
        raise CalendarError("; ".join(errors))
    if not years:
        raise CalendarError(f"{name}: no dates and no '# years:' line: nothing to import")
    return exceptions, sorted(years)


def import_calendar(engine: Engine, exceptions: Sequence[CalendarException], years: Sequence[int], *,
                    source: str, operator: str, at: datetime | None = None) -> dict[str, Any]:
    """Replace the exceptions of ``years`` with ``exceptions`` (one transaction), mark the
    years covered, record who did it, and have the next pass recount every open case."""
    stamp = iso(at or now())
    outside = sorted({e.day.year for e in exceptions} - set(years))
    if outside:
        raise CalendarError(f"exceptions for years not being imported: {outside}")
    with transaction(engine) as connection:
        for year in years:
            connection.execute(delete(calendar_exceptions).where(
                calendar_exceptions.c.day >= f"{year:04d}-01-01", calendar_exceptions.c.day <= f"{year:04d}-12-31"))
            connection.execute(delete(calendar_years).where(calendar_years.c.year == year))
        connection.execute(calendar_years.insert(), [
            {"year": year, "source": source[:255], "recorded_at": stamp} for year in years])
        if exceptions:
            bulk_insert(connection, calendar_exceptions, [
                {"day": e.day.isoformat(), "kind": e.kind, "note": e.note, "source": source[:255], "recorded_at": stamp}
                for e in exceptions])
        marked = _mark_open_cases(connection, stamp)
        from connectors.provenance import record_events

        record_events(connection, [(f"calendar:{year}", "calendar", "imported", None,
                                    {"source": source, "operator": operator, "exceptions":
                                     sum(1 for e in exceptions if e.day.year == year)}) for year in years], stamp)
        resolve_open(connection, CALENDAR_GAP_ALARM, f"日历已导入 · calendar imported by {operator}", at or now(),
                     matching=lambda detail: detail.get("year") in years)
    return {"years": list(years), "exceptions": len(exceptions), "cases_to_recount": marked}


def calendar_year(engine: Engine, year: int) -> dict[str, Any]:
    """What the calendar holds for ``year``: source, exceptions, working days per month."""
    with engine.connect() as connection:
        covered = connection.execute(select(calendar_years).where(calendar_years.c.year == year)).first()
        if covered is None:
            return {"year": year, "covered": False}
        calendar = load_calendar(connection)
        rows = connection.execute(select(calendar_exceptions).where(
            calendar_exceptions.c.day.between(f"{year:04d}-01-01", f"{year:04d}-12-31"))
            .order_by(calendar_exceptions.c.day)).all()
    per_month = []
    for month in range(1, 13):
        day, count = date(year, month, 1), 0
        while day.month == month:
            count += calendar.is_working_day(day)
            day += timedelta(days=1)
        per_month.append(count)
    return {"year": year, "covered": True, "source": covered.source, "recorded_at": covered.recorded_at,
            "exceptions": [{"day": r.day, "kind": r.kind, "note": r.note} for r in rows],
            "working_days": sum(per_month), "working_days_per_month": per_month}


# --- supervision orders (督办) ----------------------------------------------------------


def _mark(connection: Connection, numbers: Iterable[str], stamp: str) -> int:
    numbers = sorted(set(numbers))
    if not numbers:
        return 0
    have: set[str] = set()
    for chunk in _chunks(numbers):
        have.update(connection.execute(select(supervision_dirty.c.case_number)
                                       .where(supervision_dirty.c.case_number.in_(chunk))).scalars())
    if have:
        for chunk in _chunks(sorted(have)):
            connection.execute(update(supervision_dirty).where(supervision_dirty.c.case_number.in_(chunk))
                               .values(since=stamp))
    fresh = [n for n in numbers if n not in have]
    if fresh:
        bulk_insert(connection, supervision_dirty, [{"case_number": n, "since": stamp} for n in fresh])
    return len(numbers)


def _mark_open_cases(connection: Connection, stamp: str, codes: Sequence[str] | None = None) -> int:
    query = select(cases.c.case_number).where(cases.c.state.not_in(TERMINAL_STATES))
    if codes is not None:
        query = query.where(cases.c.power_code.in_(codes))
    return _mark(connection, connection.execute(query).scalars(), stamp)


def issue_order(engine: Engine, *, case_number: str, issued_by: str, instruction: str, deadline: datetime,
                at: datetime | None = None) -> int:
    """A supervisor's order on a case: who, the instruction, the deadline. Returns its id."""
    moment = at or now()
    if not issued_by.strip() or not instruction.strip():
        raise TerminalError("a supervision order needs who issues it (--by) and the instruction (--instruction)")
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=CST)
    if deadline <= moment:
        raise TerminalError(f"the deadline {iso(deadline)} is not after now ({iso(moment)})")
    with transaction(engine) as connection:
        known = connection.execute(select(cases.c.state).where(cases.c.case_number == case_number)).first()
        if known is None:
            raise TerminalError(f"no case {case_number} in the exchange database")
        result = connection.execute(supervision_orders.insert().values(
            case_number=case_number, issued_by=issued_by.strip(), instruction=instruction.strip(),
            deadline=iso(deadline), issued_at=iso(moment), state="issued"))
        key = result.inserted_primary_key
        assert key is not None
        log_rows(connection, "supervision_orders", [int(key[0])], iso(moment))
        _mark(connection, [case_number], iso(moment))
        _record(connection, case_number, "order_issued", {"order": int(key[0]), "by": issued_by}, iso(moment))
    return int(key[0])


def _order(connection: Connection, order_id: int) -> Any:
    row = connection.execute(select(supervision_orders).where(supervision_orders.c.id == order_id)).first()
    if row is None:
        raise TerminalError(f"no supervision order {order_id}")
    return row


def answer_order(engine: Engine, order_id: int, *, by: str, answer: str, at: datetime | None = None) -> None:
    """The undertaking office's answer (反馈): it has started on the order."""
    moment = iso(at or now())
    if not by.strip() or not answer.strip():
        raise TerminalError("an answer needs who answers (--by) and the answer text (--answer)")
    with transaction(engine) as connection:
        row = _order(connection, order_id)
        if row.state != "issued":
            raise TerminalError(f"supervision order {order_id} is {row.state}, not awaiting an answer")
        connection.execute(update(supervision_orders).where(supervision_orders.c.id == order_id).values(
            state="answered", answered_by=by.strip(), answer=answer.strip(), answered_at=moment))
        log_rows(connection, "supervision_orders", [order_id], moment)
        _mark(connection, [row.case_number], moment)
        _record(connection, row.case_number, "order_answered", {"order": order_id, "by": by}, moment)


def close_order(engine: Engine, order_id: int, *, by: str, note: str, at: datetime | None = None) -> None:
    """The supervisor closes the order (办结), with a note."""
    moment = iso(at or now())
    if not by.strip() or not note.strip():
        raise TerminalError("closing an order needs who closes it (--by) and a note (--note)")
    with transaction(engine) as connection:
        row = _order(connection, order_id)
        if row.state == "closed":
            raise TerminalError(f"supervision order {order_id} was closed at {row.closed_at} by {row.closed_by}")
        connection.execute(update(supervision_orders).where(supervision_orders.c.id == order_id).values(
            state="closed", closed_by=by.strip(), close_note=note.strip(), closed_at=moment))
        log_rows(connection, "supervision_orders", [order_id], moment)
        _mark(connection, [row.case_number], moment)
        _record(connection, row.case_number, "order_closed", {"order": order_id, "by": by}, moment)


def record_filing(engine: Engine, *, case_number: str, authority: str, document_no: str, filed_at: datetime,
                  filed_by: str, at: datetime | None = None) -> None:
    """Record a major decision's filing (报备) made outside the case-processing system (on
    paper); a case is filed once."""
    moment = iso(at or now())
    if not (authority.strip() and document_no.strip() and filed_by.strip()):
        raise TerminalError("a filing needs the authority (--authority), its document number (--document-no) and who (--by)")
    if filed_at.tzinfo is None:
        filed_at = filed_at.replace(tzinfo=CST)
    with transaction(engine) as connection:
        if connection.execute(select(cases.c.state).where(cases.c.case_number == case_number)).first() is None:
            raise TerminalError(f"no case {case_number} in the exchange database")
        known = connection.execute(select(case_filings).where(case_filings.c.case_number == case_number)).first()
        if known is not None:
            raise TerminalError(f"{case_number} was filed with {known.authority} ({known.document_no}) at {known.filed_at}")
        connection.execute(case_filings.insert().values(
            case_number=case_number, authority=authority.strip(), document_no=document_no.strip(),
            filed_at=iso(filed_at), filed_by=filed_by.strip(), recorded_at=moment))
        _mark(connection, [case_number], moment)
        _record(connection, case_number, "filing_recorded", {"authority": authority, "document_no": document_no,
                                                             "by": filed_by}, moment)


def order_rows(engine: Engine, *, include_closed: bool = False) -> list[dict[str, Any]]:
    query = select(supervision_orders).order_by(supervision_orders.c.id)
    if not include_closed:
        query = query.where(supervision_orders.c.state != "closed")
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(query)]


def _record(connection: Connection, case_number: str, outcome: str, detail: dict[str, Any], at: str) -> None:
    from connectors.provenance import record_events

    record_events(connection, [(case_number, "supervision", outcome, None, detail)], at)


# --- the pass --------------------------------------------------------------------------


@dataclass
class PassReport:
    cases: int = 0
    clocks: int = 0
    raised: int = 0
    escalated: int = 0
    lifted: int = 0
    closed: int = 0
    sent_to_province: int = 0
    seeded_years: list[int] = field(default_factory=list)
    calendar_gaps: list[int] = field(default_factory=list)
    uncounted_cases: int = 0


def _chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _position(connection: Connection, name: str) -> int:
    value = connection.execute(select(supervision_positions.c.value).where(supervision_positions.c.name == name)).scalar()
    return int(value or 0)


def _set_position(connection: Connection, name: str, value: int) -> None:
    done = connection.execute(update(supervision_positions).where(supervision_positions.c.name == name).values(value=value))
    if not done.rowcount:
        connection.execute(supervision_positions.insert().values(name=name, value=value))


# The cases one pass must look at, collected by the database itself (a temporary table of
# the pass's connection, duplicates dropped on insert) and read back a chunk at a time: the
# pass's memory follows the chunk, not the number of cases selected (a first pass, or a
# calendar import, selects every open case).
_work_metadata = MetaData()
work_table = Table("supervision_work", _work_metadata, Column("case_number", String(20), primary_key=True),
                   prefixes=["TEMPORARY"])


def _collect(connection: Connection, query: Any) -> None:
    """Add the case numbers ``query`` selects (one column) to the pass's work table."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(work_table).from_select(["case_number"], query).on_conflict_do_nothing()
    elif dialect == "sqlite":
        # SQLite reads "INSERT ... SELECT ... ON CONFLICT" as a join clause; OR IGNORE says the same.
        statement = work_table.insert().from_select(["case_number"], query).prefix_with("OR IGNORE")
    else:
        raise TerminalError(f"the supervision pass runs on SQLite or PostgreSQL, not {dialect}")
    connection.execute(statement)


def _select_work(connection: Connection, stamp: str) -> tuple[int, int]:
    """Fill the work table with the cases this pass must look at; returns the positions
    the pass moves to once done (the last status change and catalogue transition seen)."""
    work_table.drop(connection, checkfirst=True)
    work_table.create(connection)
    event_from = _position(connection, "status_event")
    event_to = connection.execute(select(func.coalesce(func.max(status_outbox.c.event_id), 0))).scalar_one()
    _collect(connection, select(status_outbox.c.case_number).where(
        status_outbox.c.event_id > event_from, status_outbox.c.event_id <= event_to,
        status_outbox.c.case_number.is_not(None)).distinct())
    transition_to = _position(connection, "catalogue_transition")
    if inspect(connection).has_table("catalogue_transitions"):
        from connectors.db import catalogue_transitions

        transition_from = transition_to
        transition_to = int(connection.execute(select(func.coalesce(func.max(catalogue_transitions.c.id), 0))).scalar_one())
        if transition_to > transition_from:
            changed = select(catalogue_transitions.c.code).where(
                catalogue_transitions.c.id > transition_from, catalogue_transitions.c.id <= transition_to)
            _collect(connection, select(cases.c.case_number).where(
                cases.c.power_code.in_(changed), cases.c.state.not_in(TERMINAL_STATES)))
        transition_to = max(transition_to, transition_from)
    _collect(connection, select(supervision_dirty.c.case_number))
    _collect(connection, due_checks(stamp).distinct())
    _collect(connection, select(supervision_orders.c.case_number).where(
        supervision_orders.c.state != "closed", supervision_orders.c.deadline <= stamp).distinct())
    # Open 双公示 alarms: the acknowledgement that lifts them is no change of the case's own.
    _collect(connection, select(supervision_alerts.c.case_number).where(
        supervision_alerts.c.rule == "DISCLOSURE_LATE", supervision_alerts.c.state == "open").distinct())
    # A filing the case-processing system has written since the alarm about it was raised.
    _collect(connection, select(supervision_alerts.c.case_number).join(
        case_filings, case_filings.c.case_number == supervision_alerts.c.case_number).where(
        supervision_alerts.c.rule == "MAJOR_CASE_NOT_FILED", supervision_alerts.c.state == "open").distinct())
    return int(event_to), transition_to


def due_checks(stamp: str) -> Select[str]:
    """The cases whose next check is due at ``stamp``. Without DISTINCT (the pass collects
    them in a set): with it, SQLite walked the whole clock table in key order to get the
    rows distinct (1.2 s at 3,000,000 clock rows) instead of reading the range of the
    next-check index (a few milliseconds)."""
    return select(supervision_clocks.c.case_number).where(supervision_clocks.c.next_check_at <= stamp)


def _published(connection: Connection, numbers: Sequence[str]) -> tuple[dict[str, Any], dict[str, datetime | None]]:
    """Per case: its 双公示 decision's status change (granted or decided), and when the
    public side acknowledged the outbound bundle that carried it (None: not yet). Changes
    withheld for good (minors, secrets, privacy) are not due anywhere and are left out."""
    decisions = {r.case_number: r for r in connection.execute(
        select(status_outbox.c.case_number, status_outbox.c.event_id, status_outbox.c.at)
        .where(status_outbox.c.case_number.in_(numbers), status_outbox.c.status.in_(DISCLOSED_STATUSES),
               status_outbox.c.event_id.not_in(select(publish_withheld.c.event_id))))}
    published: dict[str, datetime | None] = dict.fromkeys(decisions)
    if decisions:
        rows = connection.execute(
            select(status_outbox.c.case_number, func.min(ferry_sent.c.acknowledged_at))
            .join(ferry_sent, and_(ferry_sent.c.channel == "outbound",
                                   status_outbox.c.event_id.between(ferry_sent.c.first_key, ferry_sent.c.last_key)))
            .where(status_outbox.c.event_id.in_([d.event_id for d in decisions.values()]),
                   ferry_sent.c.acknowledged_at.is_not(None))
            .group_by(status_outbox.c.case_number))
        for number, acknowledged in rows:
            published[number] = local(acknowledged)
    return decisions, published


def _load(connection: Connection, numbers: Sequence[str], catalogue: Catalogue,
          disclosure_days: int = DISCLOSURE_DAYS) -> list[SupervisedCase]:
    base = connection.execute(
        select(cases.c.case_number, cases.c.state, cases.c.updated_at, cases.c.accepted_at,
               cases.c.power_code, cases.c.registered_at)
        .where(cases.c.case_number.in_(numbers))).all()
    steps: dict[str, list[Step]] = defaultdict(list)
    for r in connection.execute(select(case_steps).where(case_steps.c.case_number.in_(numbers))
                                .order_by(case_steps.c.case_number, case_steps.c.step_no)):
        steps[r.case_number].append(Step(r.step_no, r.status, local(r.started_at),
                                         local(r.finished_at) if r.finished_at else None,
                                         r.time_limit, r.time_limit_unit))
    pauses: dict[str, list[Pause]] = defaultdict(list)
    for r in connection.execute(select(case_pauses).where(case_pauses.c.case_number.in_(numbers))):
        pauses[r.case_number].append(Pause(r.kind, local(r.started_at), local(r.ended_at) if r.ended_at else None))
    results = {r.case_number: r for r in connection.execute(
        select(case_results).where(case_results.c.case_number.in_(numbers)))}
    penalties = {r.case_number: r for r in connection.execute(
        select(penalty_cases).where(penalty_cases.c.case_number.in_(numbers)))}
    decisions, published = _published(connection, numbers)
    filings = dict(connection.execute(select(case_filings.c.case_number, case_filings.c.filed_at).where(
        case_filings.c.case_number.in_(numbers))).all())
    orders: dict[str, list[Order]] = defaultdict(list)
    for r in connection.execute(select(supervision_orders).where(supervision_orders.c.case_number.in_(numbers))):
        orders[r.case_number].append(Order(r.id, local(r.deadline), r.state,
                                           local(r.answered_at) if r.answered_at else None,
                                           local(r.closed_at) if r.closed_at else None))
    supervised = []
    for row in base:
        registered = local(row.registered_at)
        item = catalogue.item_at(row.power_code, registered.replace(tzinfo=CST)) or catalogue.get(row.power_code)
        if item is None:
            continue
        history = [(local(iso(v.effective_from)), v.state) for v in catalogue.history.get(row.power_code, ())
                   if v.effective_from is not None]
        result = results.get(row.case_number)
        penalty = penalties.get(row.case_number)
        finished: datetime | None = None
        if result is not None:
            finished = local(result.finished_at)
        elif penalty is not None:
            finished = local(penalty.decided_at)
        elif row.state in TERMINAL_STATES:
            finished = local(row.updated_at)
        fee_standard = item.document.get("fee_standard")
        filing: Filing | None = None
        decided_at = (local(penalty.decided_at) if penalty is not None and penalty.decision == 1
                      else local(result.finished_at) if result is not None else None)
        if decided_at is not None:
            version = catalogue.item_at(row.power_code, decided_at.replace(tzinfo=CST)) or item
            rule = version.document.get("major_case")
            if is_major(rule, result=result.result if result is not None else None,
                        penalty_decided=penalty is not None and penalty.decision == 1,
                        fine_fen=int(penalty.fine_amount) if penalty is not None else 0,
                        penalty_kinds=list(penalty.penalty_kinds or ()) if penalty is not None else ()):
                assert rule is not None
                filed = filings.get(row.case_number)
                filing = Filing(str(rule["authority"]), decided_at, int(rule["filing_days"]),
                                local(filed) if filed else None)
        decision: PenaltyDecision | None = None
        if penalty is not None and penalty.decision == 1:  # 1: a penalty was imposed
            decided = local(penalty.decided_at)
            in_force = catalogue.item_at(row.power_code, decided.replace(tzinfo=CST)) or item
            standard = in_force.document.get("discretion")
            decision = PenaltyDecision(
                DiscretionStandard.from_document(standard) if standard else None, penalty.violation_code,
                penalty.discretion_level, int(penalty.fine_amount), penalty.illegal_income,
                list(penalty.penalty_kinds or ()))
        supervised.append(SupervisedCase(
            case_number=row.case_number, power_code=row.power_code,
            department=item.department,
            registered_at=registered,
            accepted_at=local(row.accepted_at) if row.accepted_at else None,
            finished_at=finished,
            statutory_limit=item.statutory_limit_days, promised_limit=item.promised_limit_days,
            unit=str(item.document.get("limit_unit") or "working_days"),
            steps=steps.get(row.case_number, ()),
            pauses=[*pauses.get(row.case_number, ()), *item_pauses(history)],
            orders=orders.get(row.case_number, ()),
            result=result.result if result is not None else None,
            result_note=result.note if result is not None else "",
            fee_due=result.fee_due if result is not None and fee_standard is not None else None,
            fee_standard=int(fee_standard) if isinstance(fee_standard, int) else None,
            occurred_on=datetime.fromisoformat(penalty.occurred_on) if penalty is not None else None,
            # Without a dated history the state at registration is unknown: no alert on a guess.
            item_state=item_state_at(history, registered) if history else "A",
            penalty=decision,
            filing=filing,
            disclosure=Disclosure(local(decisions[row.case_number].at), disclosure_days, published[row.case_number])
            if row.case_number in decisions and (item.category == "XK" or penalty is not None) else None,
        ))
    return supervised


def alert_record(row: Any) -> tuple[str, dict[str, Any], str]:
    """The province feed's ``alert`` record of an alert row: codes, levels and times only,
    never personal data (the detail text is made from limits and durations)."""
    record = {
        "record_key": str(row.id),
        "case_number": row.case_number,
        "step_no": row.step_no if row.rule == "STEP_PROMISED_LIMIT" else None,
        "rule": row.rule,
        "level": row.level,
        "state": row.state,
        "raised_at": row.raised_at,
        "escalated_at": row.escalated_at,
        "cleared_at": row.closed_at or row.lifted_at,
        "detail": row.detail,
    }
    changed = row.closed_at or row.lifted_at or row.escalated_at or row.raised_at
    return str(row.id), record, changed


def _open_key(key: AlertKey) -> str:
    return f"{key[0]}/{key[1]}/{key[2] or 0}"


def _apply(connection: Connection, chunk: list[SupervisedCase], time: WorkingTime, policy: AlertPolicy,
           at: datetime, report: PassReport, gaps: set[int]) -> None:
    stamp = stored(at)
    numbers = [c.case_number for c in chunk]
    open_rows = {(_open_key((r.rule, r.case_number, r.step_no))): r for r in connection.execute(
        select(supervision_alerts).where(supervision_alerts.c.case_number.in_(numbers),
                                         supervision_alerts.c.state == "open"))}
    clock_rows: list[dict[str, Any]] = []
    counted: list[str] = []
    conditions: dict[AlertKey, Any] = {}
    on_time: set[str] = set()
    by_case = {c.case_number: c for c in chunk}
    for case in chunk:
        try:
            evaluation = evaluate(case, time, policy, at)
        except CalendarGap as gap:
            gaps.add(gap.year)
            report.uncounted_cases += 1
            continue
        counted.append(case.case_number)
        conditions.update(evaluation.conditions)
        if evaluation.finished_on_time:
            on_time.add(case.case_number)
        for clock in evaluation.clocks:
            r = clock.reading
            clock_rows.append({
                "case_number": case.case_number, "step_no": clock.step_no, "basis": clock.basis,
                "limit_value": clock.limit, "unit": clock.unit, "department": case.department,
                "power_code": case.power_code, "started_at": stored(r.start), "due_at": stored(r.due),
                "finished_at": stored(case.finished_at) if case.finished_at and r.state.startswith("finished") else None,
                "used_seconds": r.used_seconds, "paused_seconds": r.paused_seconds,
                "remaining_seconds": r.remaining_seconds, "limit_seconds": r.used_seconds + r.remaining_seconds,
                "state": r.state, "level": clock.level,
                # Only the case-level promised clock carries the case's next check: one row
                # per case is enough to bring it back, whichever of its clocks is next.
                "next_check_at": stored(evaluation.next_check) if evaluation.next_check and clock.step_no == 0
                and clock.basis == "promised" else None,
                "read_at": stamp,
            })
        if evaluation.next_check and not any(c.step_no == 0 and c.basis == "promised" for c in evaluation.clocks):
            # No case clock yet (not accepted) but an order deadline ahead: a marker row.
            clock_rows.append({
                "case_number": case.case_number, "step_no": 0, "basis": "order", "limit_value": 0,
                "unit": "calendar_days", "department": case.department, "power_code": case.power_code,
                "started_at": stamp, "due_at": stored(evaluation.next_check), "finished_at": None,
                "used_seconds": 0, "paused_seconds": 0, "remaining_seconds": 0, "limit_seconds": 0,
                "state": "running", "level": None, "next_check_at": stored(evaluation.next_check), "read_at": stamp})
    for part in _chunks(counted):
        connection.execute(delete(supervision_clocks).where(supervision_clocks.c.case_number.in_(part)))
    bulk_insert(connection, supervision_clocks, clock_rows)
    report.clocks += len(clock_rows)
    report.cases += len(counted)
    counted_set = set(counted)
    current = {(r.rule, r.case_number, r.step_no): r.level for r in open_rows.values() if r.case_number in counted_set}
    wanted = {key: condition.level for key, condition in conditions.items()}
    actions = lifecycle(current, wanted, frozenset(on_time), at, closing_rules=frozenset(TIME_RULES))
    inserts, touched_ids = [], []
    for action in actions:
        rule, number, subject = action.key
        case = by_case[number]
        key = _open_key(action.key)
        if action.kind == "raise":
            assert action.level is not None
            inserts.append({
                "rule": rule, "level": action.level, "case_number": number, "step_no": subject or 0,
                "department": case.department, "power_code": case.power_code, "state": "open",
                "raised_at": stamp, "escalated_at": None, "lifted_at": None, "closed_at": None,
                "detail": conditions[action.key].detail, "open_key": key})
            report.raised += 1
        else:
            row = open_rows[key]
            touched_ids.append(row.id)
            if action.kind == "escalate":
                connection.execute(update(supervision_alerts).where(supervision_alerts.c.id == row.id).values(
                    level=action.level, escalated_at=stamp, detail=conditions[action.key].detail))
                report.escalated += 1
            else:
                values: dict[str, Any] = {"state": "closed" if action.kind == "close" else "lifted", "open_key": None}
                values["closed_at" if action.kind == "close" else "lifted_at"] = stamp
                connection.execute(update(supervision_alerts).where(supervision_alerts.c.id == row.id).values(**values))
                report.closed += action.kind == "close"
                report.lifted += action.kind == "lift"
    if inserts:
        bulk_insert(connection, supervision_alerts, inserts)
        for part in _chunks([i["open_key"] for i in inserts]):
            touched_ids.extend(connection.execute(select(supervision_alerts.c.id).where(
                supervision_alerts.c.open_key.in_(part))).scalars())
    if touched_ids:
        rows: list[Any] = []
        for part in _chunks(sorted(touched_ids)):
            rows.extend(connection.execute(select(supervision_alerts).where(supervision_alerts.c.id.in_(part))))
        report.sent_to_province += enqueue_records(connection, "alert", [alert_record(r) for r in rows], stamp)
        log_rows(connection, "supervision_alerts", touched_ids, stamp)


def working_time(connection: Connection, periods: tuple[WorkingPeriod, ...]) -> WorkingTime:
    return WorkingTime(load_calendar(connection), periods)


def run_pass(engine: Engine, *, catalogue: Catalogue, policy: AlertPolicy, periods: tuple[WorkingPeriod, ...],
             at: datetime | None = None, chunk_size: int = CHUNK, disclosure_days: int = DISCLOSURE_DAYS) -> PassReport:
    """One incremental supervision pass at ``at`` (default: now). Raises ``CalendarGap``
    after everything else is written when some case could not be counted because the
    calendar lacks a year (the alarm is raised first)."""
    moment = (at or now()).astimezone(CST)
    naive = moment.replace(tzinfo=None)
    report = PassReport()
    with transaction(engine) as connection:
        report.seeded_years = seed_calendar(connection, iso(moment))
    gaps: set[int] = set()
    try:
        with engine.connect() as connection:
            with connection.begin():
                time = working_time(connection, periods)
                event_to, transition_to = _select_work(connection, iso(moment))
            last = ""
            while True:
                with connection.begin():
                    part = list(connection.execute(select(work_table.c.case_number).where(
                        work_table.c.case_number > last).order_by(work_table.c.case_number).limit(chunk_size)).scalars())
                    if not part:
                        break
                    last = part[-1]
                    dirty = {r.case_number: r.since for r in connection.execute(
                        select(supervision_dirty).where(supervision_dirty.c.case_number.in_(part)))}
                    loaded = _load(connection, part, catalogue, disclosure_days)
                    _apply(connection, loaded, time, policy, naive, report, gaps)
                    for number, since in dirty.items():
                        # Only the marks this chunk read: one set again meanwhile has a later ``since``.
                        connection.execute(delete(supervision_dirty).where(and_(
                            supervision_dirty.c.case_number == number, supervision_dirty.c.since == since)))
            with connection.begin():
                work_table.drop(connection, checkfirst=True)
    except OperationalError as error:
        raise TransientError(f"exchange database unavailable: {error.orig}") from error
    with transaction(engine) as connection:
        _set_position(connection, "status_event", event_to)
        _set_position(connection, "catalogue_transition", transition_to)
        if not gaps and naive.year not in time.calendar.years:
            gaps.add(naive.year)
        for year in sorted(gaps):
            if not any(r.detail.get("year") == year for r in open_alarm_rows(connection, CALENDAR_GAP_ALARM)):
                raise_alarm(connection, CALENDAR_GAP_ALARM, {
                    "year": year, "uncounted_cases": report.uncounted_cases,
                    "message": f"工作日历未覆盖{year}年：相关办件的时限不予计算，请导入{year}年节假日和调休安排"
                               f"（hub calendar import）",
                }, moment)
    report.calendar_gaps = sorted(gaps)
    if gaps:
        log.error("supervision: the working-day calendar does not cover %s; %d case(s) were not counted",
                  report.calendar_gaps, report.uncounted_cases)
    return report


def open_alerts(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(
            select(supervision_alerts).where(supervision_alerts.c.state == "open")
            .order_by(supervision_alerts.c.id))]
