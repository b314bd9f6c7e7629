"""``hub correct ...``: the only way to correct or delete case data (第十九条), with a written
reason, who asks and who approves; ``hub correct list`` shows what was corrected."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rules.corrections import CORRECTABLE, DELETE, SET


def _key(args: argparse.Namespace) -> dict[str, Any]:
    spec = CORRECTABLE.get(args.table)
    key: dict[str, Any] = {"case_number": args.case_number}
    if spec is not None and "step_no" in spec.key:
        key["step_no"] = args.step
    if spec is not None and "pause_no" in spec.key:
        key["pause_no"] = args.pause
    return key


def cmd_correct(args: argparse.Namespace) -> int:
    from connectors.corrections import (
        CorrectionRefused,
        apply_correction,
        corrections_of,
        parse_value,
    )
    from hub.settings import load_settings
    from hub.zones import zone_engine
    from rules.corrections import CorrectionRequest

    engine = zone_engine(load_settings(), "admin")
    if args.correct_command == "list":
        rows = corrections_of(engine, args.case_number)
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=1, default=str))
            return 0
        for row in rows:
            fields = ", ".join(sorted(row["after"] or {})) or "(deleted)"
            print(f"#{row['id']:<5} {row['at'][:19]}  {row['case_number']}  {row['action']:<6} {row['target']} "
                  f"{json.dumps(row['record_key'], ensure_ascii=False)}  {fields}\n"
                  f"       reason: {row['reason']}\n"
                  f"       requested by {row['requested_by']}, approved by {row['approved_by']}")
        if not rows:
            print("no corrections recorded")
        return 0
    try:
        changes: dict[str, Any] = {}
        for assignment in args.set or ():
            name, separator, text = assignment.partition("=")
            if not separator:
                raise CorrectionRefused([f"--set {assignment!r}: 应为 字段=值"])
            if args.table in CORRECTABLE and name not in CORRECTABLE[args.table].fields:
                raise CorrectionRefused([f"{args.table} 中不可更正的字段：{name}"])
            changes[name] = parse_value(args.table, name, text)
        request = CorrectionRequest(
            target=args.table, key=_key(args), action=SET if args.correct_command == "set" else DELETE,
            reason=args.reason, requested_by=args.requested_by, approved_by=args.approved_by, changes=changes,
        )
        applied = apply_correction(engine, request)
    except CorrectionRefused as refused:
        for problem in refused.problems:
            print(f"refused: {problem}", file=sys.stderr)
        return 2
    print(f"correction #{applied.correction_id} applied: {applied.action} {applied.target} of {applied.case_number}")
    for name, value in (applied.after or {}).items():
        print(f"  {name}: {applied.before.get(name)!r} -> {value!r}")
    if applied.public_change is not None:
        print(f"  the published decision is corrected on the public side (status change {applied.public_change})")
    return 0


def add_commands(commands: Any) -> None:
    """Register ``correct`` on the ``hub`` parser's subcommands."""
    correct = commands.add_parser(
        "correct", help="correct or delete case data with a reason and an approver (第十九条)").add_subparsers(
        dest="correct_command", required=True)
    actions = (("set", "set fields of one row"), ("delete", "delete one row (steps, results, pauses, filings)"))
    for action, text in actions:
        command = correct.add_parser(action, help=text)
        command.add_argument("--table", required=True, choices=sorted(CORRECTABLE))
        command.add_argument("--case", dest="case_number", required=True)
        command.add_argument("--step", type=int, help="the step number (case_steps)")
        command.add_argument("--pause", type=int, help="the pause number (case_pauses)")
        if action == "set":
            command.add_argument("--set", action="append", metavar="FIELD=VALUE", required=True,
                                 help="a field and its corrected value (null, integers, true/false, JSON)")
        command.add_argument("--reason", required=True, help="the written reason (at least 10 characters)")
        command.add_argument("--requested-by", required=True)
        command.add_argument("--approved-by", required=True, help="the approver; not the requester")
        command.set_defaults(func=cmd_correct)
        if action == "delete":
            command.set_defaults(set=None)
    listing = correct.add_parser("list", help="recorded corrections, newest first")
    listing.add_argument("--case", dest="case_number")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_correct)
