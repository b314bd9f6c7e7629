"""``hub documents ...``: find a case's legal documents (受理通知书, 不予受理决定书, 补正告知书)
and their files, or render them again."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rules.legal_documents import TITLES


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=1, default=str))


def _refusal_lines(refusals: list[dict[str, Any]]) -> None:
    for row in refusals:
        print(f"  refused  event {row['event_id']} ({row['status']}): {row['code']}: {row['message']}")


def cmd_documents(args: argparse.Namespace) -> int:
    from connectors.legal_documents import (
        case_documents_of,
        document_store,
        open_refusals,
        rerender_case,
    )
    from hub.settings import load_settings
    from hub.zones import load_catalogue, zone_engine
    from schemas.exceptions import TerminalError

    settings = load_settings()
    engine = zone_engine(settings, "admin")
    store = document_store(settings.admin_root)
    case_number = args.case_number
    if args.documents_command == "render":
        try:
            report = rerender_case(engine, case_number, store=store, catalogue=load_catalogue(settings))
        except TerminalError as error:
            print(f"hub documents render: {error}", file=sys.stderr)
            return 2
        if args.json:
            _print_json({"rendered": report.rendered, "files": report.files, "refused": report.refused,
                         "not_applicable": report.not_applicable, "position": report.position})
        else:
            rendered = sum(report.rendered.values())
            print(f"{case_number}: {rendered} document(s) rendered under {store}")
            for name in report.files:
                print(f"  {name}")
            _refusal_lines(report.refused)
        return 1 if report.refused else 0
    rows = case_documents_of(engine, case_number, store=store)
    refusals = open_refusals(engine, case_number)
    if args.json:
        _print_json({"documents": rows, "refused": refusals})
        return 0
    if not rows and not refusals:
        print(f"{case_number}: no legal documents recorded")
        return 1
    for row in rows:
        print(f"{row['event_id']:<8} {TITLES.get(row['kind'], row['kind'])}  {row['pages']} page(s)  "
              f"sha256 {row['sha256'][:16]}  template {row['template_version']}  {row['rendered_at'][:19]}  "
              f"[{row['file']}] {row['path']}")
    _refusal_lines(refusals)
    # 1 when something needs an operator: a file missing or changed, a refusal open.
    return 0 if all(row["file"] == "ok" for row in rows) and not refusals else 1


def add_commands(commands: Any) -> None:
    """Register ``documents`` on the ``hub`` parser's subcommands."""
    documents = commands.add_parser("documents", help="legal documents (法律文书) of a case").add_subparsers(
        dest="documents_command", required=True)
    listing = documents.add_parser("list", help="a case's documents, their files and any refusal")
    listing.add_argument("case_number")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_documents)
    render = documents.add_parser("render", help="render a case's documents again (files and rows)")
    render.add_argument("--case", dest="case_number", required=True)
    render.add_argument("--json", action="store_true")
    render.set_defaults(func=cmd_documents)
