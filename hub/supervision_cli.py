"""``hub calendar ...`` and ``hub supervise ...``: the working-day calendar and the
supervision office's (监察室) orders, alerts and passes, from the command line."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from rules.alerts import LEVEL_NAMES
from rules.supervision import ORDER_STATE_NAMES


def _engine() -> Any:
    from hub.settings import load_settings
    from hub.zones import zone_engine

    return zone_engine(load_settings(), "admin")


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=1, default=str))


def _fail(command: str, error: Exception) -> int:
    print(f"hub {command}: {error}", file=sys.stderr)
    return 2


def cmd_calendar(args: argparse.Namespace) -> int:
    from connectors.supervision import calendar_year, import_calendar, parse_calendar_file
    from rules.calendar import CalendarError
    from schemas.exceptions import TerminalError

    try:
        if args.calendar_command == "import":
            path = Path(args.file)
            if not path.is_file():
                raise CalendarError(f"{path}: no such file")
            exceptions, years = parse_calendar_file(path.read_text("utf-8"), path.name)
            if args.year:
                missing = sorted(set(args.year) - set(years))
                if missing:
                    years = sorted(set(years) | set(missing))
            done = import_calendar(_engine(), exceptions, years, source=path.name, operator=args.by or getpass.getuser())
            print(f"imported {done['exceptions']} exception(s) for {', '.join(map(str, done['years']))} from {path.name}; "
                  f"{done['cases_to_recount']} open case(s) will be recounted by the next supervision pass")
            return 0
        shown = calendar_year(_engine(), args.year)
    except (CalendarError, TerminalError) as error:
        return _fail("calendar", error)
    if args.json:
        _print_json(shown)
        return 0 if shown["covered"] else 1
    if not shown["covered"]:
        print(f"{args.year}: not covered. Time limits that reach into {args.year} are not counted; "
              f"import its holidays and make-up days with 'hub calendar import FILE'.")
        return 1
    print(f"{args.year}: {shown['working_days']} working days (source {shown['source']}, recorded {shown['recorded_at']})")
    print("  per month: " + " ".join(f"{m + 1}月 {n}" for m, n in enumerate(shown["working_days_per_month"])))
    for row in shown["exceptions"]:
        kind = "休 holiday" if row["kind"] == "holiday" else "班 make-up working day"
        print(f"  {row['day']}  {kind:<24} {row['note']}")
    return 0


def _deadline(text: str) -> datetime:
    from connectors.clock import CST

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date and time (YYYY-MM-DD HH:MM, agency time)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=CST)


def cmd_supervise(args: argparse.Namespace) -> int:
    from connectors import supervision
    from connectors.clock import CST
    from schemas.exceptions import TerminalError

    engine = _engine()
    command = args.supervise_command
    try:
        if command == "issue":
            order = supervision.issue_order(engine, case_number=args.case_number, issued_by=args.by,
                                            instruction=args.instruction, deadline=args.deadline)
            print(f"supervision order {order} issued on {args.case_number}, deadline {args.deadline:%Y-%m-%d %H:%M}")
            return 0
        if command == "answer":
            supervision.answer_order(engine, args.order, by=args.by, answer=args.answer)
            print(f"supervision order {args.order} answered")
            return 0
        if command == "close":
            supervision.close_order(engine, args.order, by=args.by, note=args.note)
            print(f"supervision order {args.order} closed")
            return 0
        if command == "file":
            supervision.record_filing(engine, case_number=args.case_number, authority=args.authority,
                                      document_no=args.document_no, filed_at=args.at or datetime.now(CST),
                                      filed_by=args.by)
            print(f"{args.case_number}: filing with {args.authority} ({args.document_no}) recorded")
            return 0
        if command == "run":
            from hub import stages

            _print_json(stages.supervision())
            return 0
    except TerminalError as error:
        return _fail("supervise", error)
    if command == "orders":
        rows = supervision.order_rows(engine, include_closed=args.all)
        if args.json:
            _print_json(rows)
            return 0
        if not rows:
            print("no open supervision orders" if not args.all else "no supervision orders")
        for row in rows:
            print(f"{row['id']:<6} {ORDER_STATE_NAMES[row['state']]:<4} {row['case_number']}  期限 {row['deadline'][:16]}  "
                  f"{row['issued_by']}: {row['instruction']}")
            if row["answer"]:
                print(f"{'':<6} 反馈 {row['answered_at'][:16]} {row['answered_by']}: {row['answer']}")
            if row["closed_at"]:
                print(f"{'':<6} 办结 {row['closed_at'][:16]} {row['closed_by']}: {row['close_note']}")
        return 0
    alerts = supervision.open_alerts(engine)
    if args.level:
        alerts = [a for a in alerts if a["level"] == args.level]
    if args.json:
        _print_json(alerts)
        return 0
    if not alerts:
        print("no open supervision alerts")
    for row in alerts:
        print(f"{row['id']:<8} {LEVEL_NAMES[row['level']]} {row['case_number']}  {row['rule']:<28} "
              f"{row['department']}  {row['raised_at'][:16]}  {row['detail']}")
    return 0


def cmd_supervise_reports(args: argparse.Namespace) -> int:
    """``hub supervise dashboard`` and ``hub supervise stats``: the supervision office's page
    and a month's statistics, by default under ``$HUB_QUALITY_ROOT/supervision``."""
    from connectors.clock import now
    from hub.settings import load_settings
    from hub.zones import load_catalogue, zone_engine
    from quality.supervision_report import write_dashboard, write_monthly_statistics

    settings = load_settings()
    if not settings.loads("admin"):
        print("hub supervise: needs the administration zone (HUB_ZONE=admin or both)", file=sys.stderr)
        return 1
    out = Path(args.out) if args.out else settings.quality_root / "supervision"
    engine = zone_engine(settings, "admin")
    if args.supervise_command == "dashboard":
        if args.days < 1:
            print("hub supervise: --days must be at least 1", file=sys.stderr)
            return 2
        print(write_dashboard(engine, out, now=now(), days=args.days))
        return 0
    departments = load_catalogue(settings).departments()
    try:
        paths = write_monthly_statistics(engine, out, args.month, catalogue_departments=departments)
    except ValueError as error:
        print(f"hub supervise: {error}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


def add_commands(commands: Any) -> None:
    """Register ``calendar`` and ``supervise`` on the ``hub`` parser's subcommands."""
    calendar = commands.add_parser("calendar", help="the working-day calendar (工作日历)").add_subparsers(
        dest="calendar_command", required=True)
    imports = calendar.add_parser("import", help="replace the holidays and make-up days of the file's years")
    imports.add_argument("file", help="CSV: date,kind,note (kind holiday/休 or workday/班); '# years: 2027' line")
    imports.add_argument("--year", type=int, action="append", help="a year the file covers even without dates in it")
    imports.add_argument("--by", help="who imports it (default: the login name)")
    imports.set_defaults(func=cmd_calendar)
    show = calendar.add_parser("show", help="a year's holidays, make-up days and working days")
    show.add_argument("year", type=int)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_calendar)

    supervise = commands.add_parser("supervise", help="electronic supervision (电子监察): orders, alerts, a pass")
    steps = supervise.add_subparsers(dest="supervise_command", required=True)
    issue = steps.add_parser("issue", help="issue a supervision order (督办) on a case")
    issue.add_argument("case_number")
    issue.add_argument("--by", required=True, help="the supervisor")
    issue.add_argument("--instruction", required=True)
    issue.add_argument("--deadline", required=True, type=_deadline, help="YYYY-MM-DD HH:MM (agency time)")
    answer = steps.add_parser("answer", help="the undertaking office answers an order (it has started)")
    answer.add_argument("order", type=int)
    answer.add_argument("--by", required=True)
    answer.add_argument("--answer", required=True)
    close = steps.add_parser("close", help="close an order (办结)")
    close.add_argument("order", type=int)
    close.add_argument("--by", required=True)
    close.add_argument("--note", required=True)
    orders = steps.add_parser("orders", help="open supervision orders")
    orders.add_argument("--all", action="store_true", help="closed ones too")
    orders.add_argument("--json", action="store_true")
    alerts = steps.add_parser("alerts", help="open supervision alerts (提醒, 预警, 报警)")
    alerts.add_argument("--level", choices=sorted(LEVEL_NAMES))
    alerts.add_argument("--json", action="store_true")
    filing = steps.add_parser("file", help="record a major decision's filing (报备) made on paper")
    filing.add_argument("case_number")
    filing.add_argument("--authority", required=True, help="备案机关")
    filing.add_argument("--document-no", required=True, help="备案文号")
    filing.add_argument("--by", required=True)
    filing.add_argument("--at", type=_deadline, help="when it was filed, YYYY-MM-DD HH:MM (default now)")
    steps.add_parser("run", help="run one supervision pass now")
    dashboard = steps.add_parser("dashboard", help="write the supervision office's page (监察室看板)")
    dashboard.add_argument("--out", help="folder of index.html (default $HUB_QUALITY_ROOT/supervision)")
    dashboard.add_argument("--days", type=int, default=30, help="days of the trend and the rates (default 30)")
    dashboard.set_defaults(func=cmd_supervise_reports)
    stats = steps.add_parser("stats", help="a month's statistics per department and item (CSV, Parquet)")
    stats.add_argument("--month", required=True, help="YYYY-MM")
    stats.add_argument("--out", help="folder of the files (default $HUB_QUALITY_ROOT/supervision)")
    stats.set_defaults(func=cmd_supervise_reports)
    supervise.set_defaults(func=cmd_supervise)
