"""The operator command ``hub``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ferry.suites import SUITES
from hub import correct_cli, documents_cli
from hub.airflow_env import DEFAULT_BROKER_URL, EXECUTORS, PROJECT_ROOT
from hub.settings import ZONE_CHOICES


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=1, default=str))


def cmd_demo(args: argparse.Namespace) -> int:
    from hub import demo

    home = Path(args.home).absolute()
    data_root = home / "data"
    if args.suite:
        os.environ["HUB_CRYPTO_SUITE"] = args.suite
    env = demo.configure(home / "airflow", data_root)
    started = time.monotonic()
    print(f"[demo] Airflow home {env['AIRFLOW_HOME']} (SQLite metadata, LocalExecutor)")
    print("[demo] migrating the Airflow metadata database ...", flush=True)
    demo.migrate_metadata(env)
    truth = demo.prepare_batch(data_root, count=args.count, seed=args.seed)
    where = "drop folder internet/portal/drop" if os.environ.get("HUB_INGRESS") == "drop" else (
        "front database (前置库) portal_submissions, attachments in internet/portal/attachments")
    print(f"[demo] generated {len(truth)} portal submissions (seed {args.seed}) in the portal's {where} under {data_root}")
    print(f"[demo] running the loop as Airflow DAG runs: {' → '.join(demo.LOOP)}", flush=True)
    log_file = home / "demo.log"
    console = sys.stdout
    with open(log_file, "w") as log:
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = log
        try:
            say = lambda text: print(text, file=console, flush=True)
            # Registered the evening of the day it was submitted (three weeks back), like the
            # portal's hand-over minutes after submission; processing then catches up to now.
            with demo.registered_as_submitted():
                states = demo.run_loop_with_resend(data_root, say=say)
            print(
                "[demo] provincial feed: province simulator (OpenSSH sshd on 127.0.0.1), then province_report",
                file=console, flush=True,
            )
            province = demo.province_round(data_root / "province", say=say)
            states.update(province["dag_runs"])
            print("[demo] data quality: quality_report (Great Expectations suites, steward summary)", file=console, flush=True)
            states.update(demo.run_loop(("quality_report",)))
        finally:
            sys.stdout, sys.stderr = saved
    for dag_id, state in states.items():
        print(f"[demo]   {dag_id:<28} {state}")
    print(demo.format_province(province))
    counts = demo.summary()
    counts["dag_runs"] = states
    counts["province"] = {"receipts": province["receipts"], "status": province["status"]}
    counts["seconds"] = round(time.monotonic() - started, 1)
    print()
    print(demo.format_summary(counts))
    print()
    print("Channel state (hub ferry status):")
    print(demo.ferry_status_text())
    print()
    print("Supervision (电子监察: hub supervise alerts, hub supervise orders, hub calendar show YEAR):")
    print(demo.supervision_text())
    print()
    print("Cases the case-processing system opened itself (hub trace CASE_NUMBER; corrections: hub correct):")
    print(demo.origins_text(province["offline"]))
    from hub.settings import load_settings as _load

    reports = _load().quality_root / "supervision"
    print(f"The supervision office's page (监察室看板, offline): {reports / 'index.html'}")
    print(f"  this month's statistics per department and item: {reports}/statistics-*.csv (and .parquet)")
    documents = _load().admin_root / "documents"
    print(f"Legal documents (受理通知书, 不予受理决定书, 补正告知书): {len(list(documents.rglob('*.pdf')))} PDF(s) "
          f"under {documents} (hub documents list CASE_NUMBER)")
    print()
    print("Audit trail (痕迹管理: hub audit verify, hub audit prove NET_ID, hub audit checkpoints):")
    from hub.audit import summary_text

    print(summary_text(_load()))
    print()
    example = next((n for n, o in sorted(truth.items()) if o["outcome"] == "accepted"), None)
    if example:
        print("Where is one application? Its whole path across both zones:")
        print(f'  eval "$(.venv/bin/hub airflow-env --home {args.home})"; .venv/bin/hub trace {example}')
    sample = demo.sample_lookup()
    if sample is not None:
        from rules.query_password import format_query_password

        print(f"Public status page:   HUB_DATA_ROOT={data_root} .venv/bin/hub public serve --port 8000")
        print(f"  then http://127.0.0.1:8000/ with case number {sample[0]} and query password {format_query_password(sample[1])}")
    print("Open the Airflow UI on the same data:   make ui   then http://localhost:8080")
    print(f"  (login 'admin'; the password is in {home / 'airflow' / 'simple_auth_manager_passwords.json.generated'})")
    from hub.settings import load_settings
    from quality.report import SUMMARY_FILE
    from quality.runner import docs_index

    quality_root = load_settings().quality_root
    print(f"Data stewards' summary: {quality_root / SUMMARY_FILE}")
    print(f"  Great Expectations Data Docs: {docs_index(quality_root)}")
    print(f"Task logs of this run: {log_file}")
    counts_file = home / "demo-counts.json"
    demo.write_counts(counts_file, counts)
    print(f"Counts: {counts_file}")
    return 0 if counts["balanced"] else 1


def cmd_keys_init(args: argparse.Namespace) -> int:
    from hub.keys import init_keys
    from hub.settings import load_settings

    settings = load_settings()
    wanted = args.suite or settings.crypto_suite
    for zone, key_id in init_keys(settings, args.suite).items():
        print(f"{zone}: signing key {key_id} (public key in {settings.keys_dir(zone) / 'public'})")
        if not key_id.startswith(f"{wanted}:"):
            print(f"{zone}: keeps its existing keys of another suite; to move it to {wanted}: "
                  f"hub keys rotate {zone} --suite {wanted}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from hub.keys import rotate_keys
    from hub.settings import load_settings

    settings = load_settings()
    signing, encryption = rotate_keys(settings, args.zone, args.overlap, suite=args.suite)
    print(
        f"{args.zone}: new signing key {signing}, new encryption key {encryption}; "
        f"the previous keys stay valid for {args.overlap} days "
        f"(public keys in {settings.keys_dir(args.zone) / 'public'})"
    )
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from datetime import date

    from hub.progress import Progress
    from hub.settings import SettingsError, load_settings
    from hub.simulators.applicants import generate_batch, portal_for, write_expected
    from hub.zones import load_catalogue

    settings = load_settings()
    catalogue = load_catalogue(settings)
    try:
        portal, where = portal_for(settings, args.to)
    except SettingsError as refused:
        print(f"hub generate: {refused}", file=sys.stderr)
        return 1
    truth = generate_batch(
        portal, args.count, args.seed,
        [dict(item.document) for item in catalogue.items.values()],
        settings.agency_code, date.fromisoformat(args.date) if args.date else date.today(),
        progress=Progress("generate", args.count),
    )
    if args.expected:
        write_expected(Path(args.expected), truth)
    print(f"wrote {len(truth)} submissions to {where}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from hub.province import STAGES

    if args.stage not in STAGES:
        print(f"hub run: argument stage: invalid choice: {args.stage!r} (choose from {', '.join(sorted(STAGES))})",
              file=sys.stderr)
        return 2
    _print_json(STAGES[args.stage]())
    return 0


def cmd_simulate_processing(args: argparse.Namespace) -> int:
    from hub.stages import case_processing

    if args.counter or args.ex_officio:
        from hub.settings import load_settings
        from hub.simulators.processing import register_offline_cases
        from hub.zones import load_catalogue, zone_engine

        settings = load_settings()
        numbers = register_offline_cases(zone_engine(settings, "admin"), load_catalogue(settings), seed=args.seed,
                                         counter=args.counter, ex_officio=args.ex_officio)
        _print_json({"registered": numbers, **case_processing(seed=args.seed)})
        return 0
    _print_json(case_processing(seed=args.seed))
    return 0


def cmd_simulate_province(args: argparse.Namespace) -> int:
    from ferry.keys import export_public_key
    from hub.settings import load_settings
    from hub.simulators.province import ProvinceSimulator

    settings = load_settings()
    folder = Path(args.folder).absolute() if args.folder else settings.data_root / "province"
    port_file = folder / "port"
    port = args.port or (int(port_file.read_text()) if port_file.exists() else 0)
    simulator = ProvinceSimulator(folder, reject_share=args.reject_share, port=port)
    port_file.write_text(str(simulator.server.port))
    if args.once:
        _print_json(simulator.process_incoming())
        return 0
    if (settings.keys_dir("admin") / "public").is_dir():
        export_public_key(settings.keys_dir("admin"), "admin", simulator.trusted_keys)
    else:
        print(f"note: no administration-zone key yet (hub keys init); put its public file into {folder / 'trusted'}")
    print(f"[province] SFTP root {simulator.root}, sshd on 127.0.0.1:{simulator.server.port}; rejecting {args.reject_share:.0%} on review")
    print("[province] point the hub at it with:")
    print(f"export AIRFLOW_CONN_PROVINCE_SFTP='{simulator.connection_uri()}'", flush=True)
    simulator.serve_forever(args.poll)
    return 0


def cmd_province_status(args: argparse.Namespace) -> int:
    from hub.province import status

    found = status()
    if args.json:
        _print_json(found)
        return 0
    print("provincial feed (省级平台上报)")
    for kind, marks in sorted(found["marks"].items()):
        print(f"  {kind:<17} " + "  ".join(f"{mark} {count:>6}" for mark, count in marks.items()))
    print(f"  batches: {found['batches'] or 'none'}; acknowledged watermark {found['acknowledged_watermark']}")
    print(f"  oldest undelivered change: {found['oldest_pending_change'] or 'none'}; lag alarms {found['lag_alarms']}")
    last = found["last_receipt"]
    if last:
        print(f"  last receipt: {last['batch_id']} at {last['at']}: accepted {last['accepted']}, rejected {last['rejected']}")
    print(f"  rejected rows for the data stewards: {found['steward_report']}")
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from connectors.db import engine_for
    from connectors.migrate import upgrade
    from hub.settings import ZONES, load_settings

    settings = load_settings()
    for zone in ZONES:
        if settings.loads(zone):
            url = settings.internet_db_url if zone == "internet" else settings.exchange_db_url
            engine = engine_for(url)
            print(f"{zone}: {engine.url.render_as_string(hide_password=True)} at revision "
                  f"{upgrade(engine, zone, args.revision)}")
    return 0


def _record_key(settings: Any, given: str) -> tuple[str, str | None] | str:
    """The key a record's provenance is kept under, from a NET_ID or a case number: an
    internet case by its NET_ID, a counter or ex-officio case by its number. Returns the key
    and a line to print, or why ``given`` is neither (a string)."""
    from rules.identifiers import is_case_number, net_id_format_error

    if is_case_number(given) and settings.loads("admin"):
        from sqlalchemy import select

        from connectors.db import cases
        from hub.zones import zone_reader

        with zone_reader(settings, "admin").connect() as connection:
            found = connection.execute(select(cases.c.net_id, cases.c.origin)
                                       .where(cases.c.case_number == given)).first()
        if found is not None and found.net_id:
            return found.net_id, f"case {given} is the internet application {found.net_id}"
        if found is not None:
            return given, f"case {given} ({found.origin}: registered by the case-processing system, no NET_ID)"
        return given, None
    malformed = net_id_format_error(given)
    if malformed:
        return malformed + " (or give a case number)"
    return given, None


def cmd_trace(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import DBAPIError

    from connectors.provenance import trace
    from hub.settings import ZONES, load_settings
    from hub.zones import zone_reader

    settings = load_settings()
    engines = [(zone, zone_reader(settings, zone)) for zone in ZONES if settings.loads(zone)]
    try:
        resolved = _record_key(settings, args.net_id)
        if isinstance(resolved, str):
            print(resolved, file=sys.stderr)
            return 2
        args.net_id, line = resolved
        if line:
            print(line)
        events = trace(engines, args.net_id)
    except DBAPIError as error:
        print(f"a zone database cannot be read (run `hub db upgrade`?): {error.orig}", file=sys.stderr)
        return 1
    if not events:
        print(f"{args.net_id}: no record of this id in {', '.join(z for z, _ in engines)} zone(s)")
        return 1
    if args.json:
        _print_json(events)
        return 0
    print(f"{args.net_id}:")
    for event in events:
        detail = json.dumps(event["detail"], ensure_ascii=False) if event["detail"] else ""
        print(f"  {event['at']}  {event['zone']:<8} {event['stage']:<18} {event['outcome']:<22} {event['bundle'] or '':<14} {detail}")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from hub import demo

    counts = demo.summary()
    print(demo.format_summary(counts))
    if args.json:
        demo.write_counts(Path(args.json), counts)
    return 0 if counts["balanced"] else 1


def cmd_public_serve(args: argparse.Namespace) -> int:
    from connectors.status_lookup import serve
    from hub.settings import load_settings

    serve(load_settings().public_root, host=args.host, port=args.port)
    return 0


def cmd_public_lookup(args: argparse.Namespace) -> int:
    """What the applicant of ``key`` sees on the status page, for a service-desk operator
    answering them: the password is read from the terminal (or a line of standard input),
    never from the command line."""
    import getpass

    from connectors.status_store import read_status
    from hub.settings import load_settings
    from rules.status_labels import status_label
    from rules.status_seal import SealBroken

    password = getpass.getpass("查询密码: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    try:
        document = read_status(load_settings().public_root, args.key, password)
    except SealBroken as error:
        print(f"the published records do not open: {error}", file=sys.stderr)
        return 2
    if document is None:
        print("未查到办件：请核对办件编号和查询密码 (nothing is published under this case and password)",
              file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True))
        return 0
    print(f"办件编号 {document.get('case_number') or document.get('net_id')}  "
          f"{document.get('power_name') or document.get('power_code') or ''}")
    print(f"当前状态 {status_label(document['status'])}  更新于 {document['updated_at']}  "
          f"留痕 {len(document.get('audit', {}))}/{len(document['events'])}")
    for event in document["events"]:
        opinion = event.get("opinion") or "；".join(r.get("message", "") for r in event.get("reasons") or [])
        print(f"  {event['event_id']:>10}  {event['at']}  {status_label(event['status'])}  "
              f"{event.get('step') or ''}  {opinion}".rstrip())
    return 0


def cmd_catalogue_import(args: argparse.Namespace) -> int:
    from connectors.catalogue_store import import_rows, read_catalogue_file
    from hub.progress import Progress
    from hub.settings import load_settings
    from hub.zones import zone_engine
    from rules.catalogue import ACTION_NAMES, CatalogueError

    path = Path(args.file)
    try:
        rows = read_catalogue_file(path)
        progress = Progress("catalogue import", len(rows))

        def counted() -> Any:
            for row in rows:
                yield row
                progress.advance()
            progress.finish()

        report = import_rows(zone_engine(load_settings(), "admin"), counted(), source=path.name)
    except CatalogueError as error:
        print(f"{args.file}: {error}", file=sys.stderr)
        return 2
    if args.json:
        _print_json(report.__dict__)
    else:
        for change in report.applied:
            print(f"  row {change['row']:>5}  {change['code']}  {ACTION_NAMES[change['action']]} → v{change['version']} ({change['state']})")
        for refused in report.errors:
            print(f"  row {refused['row']:>5}  {refused['code'] or '?'}  REFUSED: {refused['reason']}")
        print(
            f"{report.source}: {report.rows} rows, {len(report.applied)} changes applied, "
            f"{report.unchanged} unchanged, {len(report.errors)} refused; catalogue {report.catalogue_version}"
        )
        if report.applied:
            print("The public catalogue goes out with the next status_publish run (or: hub run catalogue_publish).")
    return 1 if report.errors else 0


def cmd_catalogue_show(args: argparse.Namespace) -> int:
    from connectors.catalogue_store import item_history
    from hub.settings import load_settings
    from hub.zones import zone_engine
    from rules.catalogue import ACTION_NAMES, APPROVAL_ROLE_NAMES, STATES

    found = item_history(zone_engine(load_settings(), "admin"), args.code)
    if found is None:
        print(f"{args.code}: not in the imported catalogue", file=sys.stderr)
        return 1
    if args.json:
        _print_json(found)
        return 0
    latest = found["versions"][-1]["document"]
    print(f"{args.code}  {latest['name']}  ({latest['category']})")
    for version in found["versions"]:
        print(f"  v{version['version']}  {version['state']} {STATES[version['state']]}  in force from {version['effective_from']}")
    print("history:")
    for step in found["history"]:
        chain = " → ".join(f"{APPROVAL_ROLE_NAMES[a['role']]} {a['approver']} {a['at']}" for a in step["approvals"])
        print(f"  {step['at']}  {ACTION_NAMES[step['action']]}  {step['from_state'] or '-'}→{step['to_state']}  v{step['to_version']}  by {step['by']}: {step['reason']}")
        print(f"      approvals: {chain}  (from {step['source']})")
    return 0


def cmd_catalogue_diff(args: argparse.Namespace) -> int:
    from connectors.catalogue_store import read_catalogue_file
    from rules.catalogue_import import diff_entries

    _print_json(diff_entries(read_catalogue_file(Path(args.old)), read_catalogue_file(Path(args.new))))
    return 0


def cmd_quality_report(args: argparse.Namespace) -> int:
    from datetime import date

    from hub import stages
    from hub.settings import load_settings
    from quality.reconciliation import ReconciliationMismatch
    from quality.report import SUMMARY_FILE
    from quality.runner import docs_index

    settings = load_settings()
    summary = settings.quality_root / SUMMARY_FILE
    status = 0
    if not args.where:
        try:
            report = stages.quality_report(settings, day=date.fromisoformat(args.day) if args.day else None)
            _print_json({k: report[k] for k in ("run_id", "critical", "warnings", "reconciliation")})
        except ReconciliationMismatch as mismatch:
            print(f"RECONCILIATION MISMATCH: {mismatch}")
            status = 1
    print(f"steward summary: {summary}{'' if summary.exists() else ' (no run yet)'}")
    print(f"Data Docs:       {docs_index(settings.quality_root)}")
    if args.open and summary.exists():
        import webbrowser

        webbrowser.open(summary.as_uri())
    return status


def cmd_airflow_env(args: argparse.Namespace) -> int:
    from hub.airflow_env import airflow_env
    from hub.settings import SettingsError

    home = Path(args.home).absolute()
    try:
        env = airflow_env(
            home / "airflow", home / "data", zone=args.zone, simulate=args.zone == "both",
            executor=args.executor,
            metadata_db=args.metadata_db or os.environ.get("HUB_METADATA_DB_URL") or None,
            broker_url=args.broker_url or os.environ.get("HUB_CELERY_BROKER_URL") or None,
            result_backend=args.result_backend or os.environ.get("HUB_CELERY_RESULT_BACKEND") or None,
        )
    except SettingsError as refused:
        print(f"hub airflow-env: {refused}", file=sys.stderr)
        return 2
    for key, value in env.items():
        print(f"export {key}={value!r}")
    return 0


def cmd_shared(args: argparse.Namespace) -> int:
    """``hub shared init|check``: the folders a zone's Celery worker hosts must share."""
    from hub.settings import load_settings
    from hub.shared_paths import (
        DEPLOYMENT_ID_VARIABLE,
        SharedPathsUnreachable,
        check_path,
        check_shared_paths,
        init_shared_paths,
        shared_paths,
    )

    settings = load_settings()
    env = dict(os.environ)
    if args.shared_command == "init":
        try:
            deployment = init_shared_paths(settings, env, args.deployment_id)
        except SharedPathsUnreachable as refused:
            print(f"hub shared init: {refused}", file=sys.stderr)
            return 1
        for shared in shared_paths(settings, env):
            print(f"{shared.zone:<9} {shared.name:<17} {shared.path}")
        print(f"deployment {deployment}: marker written into each folder above; pin it on every host with")
        print(f"  export {DEPLOYMENT_ID_VARIABLE}={deployment}")
        return 0
    unreachable = {u.shared: u for u in check_shared_paths(settings, env)}
    for shared in shared_paths(settings, env):
        failure = unreachable.get(shared)
        if failure is None:
            _, marked = check_path(shared)
            print(f"ok          {shared.zone:<9} {shared.name:<17} {shared.path} (deployment {marked})")
        else:
            print(f"UNREACHABLE {shared.zone:<9} {shared.name:<17} {shared.path}: {failure.code}: {failure.detail}")
    return 1 if unreachable else 0


def cmd_ferry(args: argparse.Namespace) -> int:
    """``hub ferry ...``: channel status, verify, quarantine, resend."""
    from hub import ferry_ops
    from hub.settings import load_settings
    from schemas.exceptions import TerminalError

    settings = load_settings()
    try:
        if args.ferry_command == "status":
            status = ferry_ops.channel_status(settings)
            if args.json:
                _print_json(status)
            else:
                print(ferry_ops.format_status(status))
            return 0
        if args.ferry_command == "verify":
            result = ferry_ops.verify_file(settings, Path(args.file), args.channel)
            _print_json(result)
            return 0 if result["ok"] else 1
        if args.ferry_command == "resend":
            for ref in ferry_ops.resend(settings, args.sequences, args.channel):
                print(f"resent {ref}")
            return 0
        if args.quarantine_command == "list":
            rows = ferry_ops.quarantine_list(settings, None if args.all else "held")
            if args.json:
                _print_json(rows)
            for row in [] if args.json else rows:
                print(f"{row['id']:<12} {row['state']:<9} {row['kind']:<10} {row['code']:<24} {row['ref']}  {row['at']}  {row['detail'][:80]}")
            return 0
        if args.quarantine_command == "release":
            print(f"released {args.id} to {ferry_ops.quarantine_release(settings, args.id)}")
            return 0
        ferry_ops.quarantine_discard(settings, args.id, args.reason)
        print(f"discarded {args.id} (reason recorded)")
        return 0
    except TerminalError as error:
        print(f"hub ferry: {error}", file=sys.stderr)
        return 2


def cmd_alarms(args: argparse.Namespace) -> int:
    """``hub alarms [--all] [--json]`` and ``hub alarms resolve ZONE:N --reason TEXT``."""
    from hub import ferry_ops
    from hub.settings import load_settings
    from schemas.exceptions import TerminalError

    settings = load_settings()
    try:
        if args.alarms_command == "notify":
            from hub.alarm_notify import notify_new_alarms

            report = notify_new_alarms(settings)
            print(f"notified {len(report.notified)} alarm(s)" + (f"; webhook failed: {report.failed}" if report.failed else ""))
            return 1 if report.failed else 0
        if args.alarms_command == "resolve":
            ferry_ops.alarm_resolve(settings, args.id, args.reason)
            print(f"resolved {args.id} (reason recorded)")
            return 0
        rows = ferry_ops.alarm_list(settings, include_resolved=args.all)
    except TerminalError as error:
        print(f"hub alarms: {error}", file=sys.stderr)
        return 2
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no open alarms" if not args.all else "no alarms")
    for row in rows:
        detail = row["detail"]
        message = detail.get("message") if isinstance(detail, dict) else None
        text = str(message) if message else json.dumps(detail, ensure_ascii=False)
        print(f"{row['id']:<10} {row['state']:<8} {row['at']}  {row['kind']:<24} {text[:100]}")
        if row["state"] == "resolved":
            print(f"{'':<10} resolved {row['resolved_at']} by {row['resolved_by']}: {row['resolution']}")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from hub.audit import verify_zone
    from hub.settings import ZONES, load_settings

    settings = load_settings()
    zones = [args.zone] if args.zone else [z for z in ZONES if settings.loads(z)]
    results = {zone: verify_zone(settings, zone) for zone in zones}
    bad = any(report.findings for report in results.values())
    if args.json:
        _print_json({zone: {"size": r.size, "checkpoints": r.checkpoints, "newest_checkpoint": r.newest_checkpoint,
                            "rows_checked": r.rows_checked, "rows_before_log": r.rows_before_log,
                            "first": asdict(r.first) if r.first else None,
                            "findings": [asdict(f) for f in sorted(r.findings, key=lambda f: f.sort_key())]}
                     for zone, r in results.items()})
        return 1 if bad else 0
    for zone, report in results.items():
        state = "ALTERED" if report.findings else "ok"
        print(f"{zone}: {state}: {report.size} leaves, {report.checkpoints} signed checkpoints "
              f"(newest {report.newest_checkpoint}), {report.rows_checked} source rows compared"
              + (f", {report.rows_before_log} rows from before the log (not covered)" if report.rows_before_log else ""))
        first = report.first
        if first is not None:
            print(f"  first changed entry: seq {first.seq} table {first.table} field {first.field} "
                  f"({first.code}: {first.detail})")
            for finding in sorted(report.findings, key=lambda f: f.sort_key())[:20]:
                print(f"  {finding.code:<20} seq {finding.seq} {finding.table or ''} {finding.field or ''}: {finding.detail}")
            if len(report.findings) > 20:
                print(f"  ... {len(report.findings) - 20} more")
    return 1 if bad else 0


def cmd_audit_prove(args: argparse.Namespace) -> int:
    from hub.audit import prove
    from hub.settings import load_settings

    settings = load_settings()
    resolved = _record_key(settings, args.net_id)
    if isinstance(resolved, str):
        print(resolved, file=sys.stderr)
        return 2
    key, line = resolved
    if line:
        print(line, file=sys.stderr)  # stdout stays one JSON document
    proofs = prove(settings, key)
    _print_json(proofs)
    return 0 if proofs["zones"] else 1


def cmd_audit_checkpoints(args: argparse.Namespace) -> int:
    from connectors.audit import checkpoints
    from hub.settings import ZONES, load_settings
    from hub.zones import zone_engine

    settings = load_settings()
    for zone in [args.zone] if args.zone else [z for z in ZONES if settings.loads(z)]:
        with zone_engine(settings, zone).connect() as connection:
            signed = checkpoints(connection)
        shown = signed[-args.last:] if args.last else signed
        print(f"{zone}: {len(signed)} checkpoints")
        for checkpoint in shown:
            witnessed = " (cosigned by the province)" if checkpoint.cosigned_note else ""
            print(f"  {checkpoint.at}  size {checkpoint.size}{witnessed}")
            if args.notes:
                print("    " + (checkpoint.cosigned_note or checkpoint.note).replace("\n", "\n    "))
    return 0


# Commands that may append to a zone's audit trail outside a DAG task (operator actions):
# each ends with a signed checkpoint, as a task run does.
CHECKPOINTED_COMMANDS = frozenset({"ferry", "alarms", "keys", "calendar", "supervise", "catalogue", "documents",
                                   "simulate", "run", "correct"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description="Power Exchange Hub operator command")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the whole loop on the embedded defaults")
    demo.add_argument("--home", default=str(PROJECT_ROOT / "var" / "demo"))
    demo.add_argument("--count", type=int, default=200)
    demo.add_argument("--seed", type=int, default=2026)
    demo.add_argument("--suite", choices=sorted(SUITES), help="crypto suite of the zones' keys (default: HUB_CRYPTO_SUITE, else intl)")
    demo.set_defaults(func=cmd_demo)

    keys = commands.add_parser("keys", help="zone keys").add_subparsers(dest="keys_command", required=True)
    suites = sorted(SUITES)
    init = keys.add_parser("init", help="create each zone's signing key and exchange public keys")
    init.add_argument("--suite", choices=suites, help="crypto suite of new keys (default: HUB_CRYPTO_SUITE, else intl)")
    init.set_defaults(func=cmd_keys_init)
    rotate = keys.add_parser("rotate", help="replace a zone's keys; the previous ones overlap for a while")
    rotate.add_argument("zone", choices=["internet", "admin"])
    rotate.add_argument("--overlap", type=int, default=7, metavar="DAYS", help="days the previous keys stay valid")
    rotate.add_argument("--suite", choices=suites, help="suite of the new keys (default: the current keys' suite)")
    rotate.set_defaults(func=cmd_keys_rotate)

    generate = commands.add_parser("generate", help="write a seeded batch of portal submissions")
    generate.add_argument("--count", type=int, default=200)
    generate.add_argument("--seed", type=int, default=2026)
    generate.add_argument("--date", help="submission date, YYYY-MM-DD (default today)")
    generate.add_argument("--expected", help="write the expected outcomes here")
    generate.add_argument(
        "--to", choices=("front_db", "drop"),
        help="the front database (default unless HUB_INGRESS=drop) or the drop folder",
    )
    generate.set_defaults(func=cmd_generate)

    # The stage names are checked when the command runs: importing every stage (and with them
    # most of the hub) to build the parser cost every other command about half a second.
    run = commands.add_parser("run", help="run one stage of the loop without a scheduler (a stage of "
                                          "hub.province.STAGES, e.g. intake, status_publish, province_report)")
    run.add_argument("stage")
    run.set_defaults(func=cmd_run)

    simulate = commands.add_parser("simulate", help="simulators").add_subparsers(dest="what", required=True)
    processing = simulate.add_parser("processing", help="advance open cases like the case-processing system")
    processing.add_argument("--seed", type=int, default=7)
    processing.add_argument("--counter", type=int, default=0, metavar="N",
                            help="first register N counter applications (网下申请) as the system does")
    processing.add_argument("--ex-officio", type=int, default=0, metavar="N",
                            help="first open N penalty cases ex officio (依职权立案)")
    processing.set_defaults(func=cmd_simulate_processing)
    province = simulate.add_parser("province", help="the provincial platform: sshd on loopback, receipts for batches")
    province.add_argument("--folder", help="its folder (default $HUB_DATA_ROOT/province)")
    province.add_argument("--port", type=int, default=0, help="loopback port (default: the last one, else a free one)")
    province.add_argument("--reject-share", type=float, default=0.05, help="share of valid rows its review rejects")
    province.add_argument("--poll", type=float, default=1.0, help="seconds between looks at incoming batches")
    province.add_argument("--once", action="store_true", help="answer the batches waiting now, without sshd, and exit")
    province.set_defaults(func=cmd_simulate_province)

    feed = commands.add_parser("province", help="the provincial feed").add_subparsers(dest="province_command", required=True)
    feed_status = feed.add_parser("status", help="sync marks, batches, receipts, lag and the steward report")
    feed_status.add_argument("--json", action="store_true")
    feed_status.set_defaults(func=cmd_province_status)

    db = commands.add_parser("db", help="zone databases").add_subparsers(dest="db_command", required=True)
    db_upgrade = db.add_parser("upgrade", help="migrate each configured zone's database (Alembic)")
    db_upgrade.add_argument("revision", nargs="?", default="head")
    db_upgrade.set_defaults(func=cmd_db_upgrade)

    trace = commands.add_parser("trace", help="where is this application or case? its whole path")
    trace.add_argument("net_id", help="a NET_ID, or a case number (办件流水号) of any origin")
    trace.add_argument("--json", action="store_true")
    trace.set_defaults(func=cmd_trace)

    summary = commands.add_parser("summary", help="reconciliation counts of the loop")
    summary.add_argument("--json", help="also write the counts to this file")
    summary.set_defaults(func=cmd_summary)

    alarm = commands.add_parser("alarms", help="open alarms of each zone; resolve one with a reason")
    alarm.add_argument("--all", action="store_true", help="also resolved ones, with how they were resolved")
    alarm.add_argument("--json", action="store_true")
    alarm.set_defaults(func=cmd_alarms, alarms_command="list")
    alarm_commands = alarm.add_subparsers(dest="alarms_command")
    resolve = alarm_commands.add_parser("resolve", help="resolve an alarm (ids are ZONE:N), recording why")
    resolve.add_argument("id")
    resolve.add_argument("--reason", required=True)
    resolve.set_defaults(func=cmd_alarms)
    alarm_commands.add_parser("notify", help="log and send (HUB_ALARM_WEBHOOK) the alarms not notified yet").set_defaults(
        func=cmd_alarms)

    ferry = commands.add_parser("ferry", help="ferry channels: status, verify, quarantine, resend")
    ferry.set_defaults(func=cmd_ferry)
    ferry_commands = ferry.add_subparsers(dest="ferry_command", required=True)
    status = ferry_commands.add_parser("status", help="per channel: sent, applied, gaps, receipts, alarms")
    status.add_argument("--json", action="store_true")
    verify = ferry_commands.add_parser("verify", help="verify a bundle file without applying it")
    verify.add_argument("file")
    verify.add_argument("--channel", choices=["inbound", "outbound"])
    held = ferry_commands.add_parser("quarantine", help="quarantined bundles and submissions")
    held_commands = held.add_subparsers(dest="quarantine_command", required=True)
    listing = held_commands.add_parser("list", help="held items (ids are ZONE:N)")
    listing.add_argument("--all", action="store_true", help="also released and discarded ones")
    listing.add_argument("--json", action="store_true")
    release = held_commands.add_parser("release", help="put an item back for a new attempt")
    release.add_argument("id")
    discard = held_commands.add_parser("discard", help="delete an item, recording why")
    discard.add_argument("id")
    discard.add_argument("--reason", required=True)
    resend = ferry_commands.add_parser("resend", help="re-send sent bundles, byte-identical")
    resend.add_argument("sequences", nargs="+", type=int, metavar="SEQ")
    resend.add_argument("--channel", choices=["inbound", "outbound"])

    catalogue = commands.add_parser("catalogue", help="the power catalogue (权力事项目录)").add_subparsers(
        dest="catalogue_command", required=True
    )
    imports = catalogue.add_parser("import", help="import a provincial catalogue file (.jsonl or .xlsx)")
    imports.add_argument("file")
    imports.add_argument("--json", action="store_true")
    imports.set_defaults(func=cmd_catalogue_import)
    show = catalogue.add_parser("show", help="every version and the change history of one item")
    show.add_argument("code")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_catalogue_show)
    diff = catalogue.add_parser("diff", help="what changes between two catalogue files")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.set_defaults(func=cmd_catalogue_diff)


    quality = commands.add_parser("quality", help="data-quality reports").add_subparsers(
        dest="quality_command", required=True)
    report = quality.add_parser("report", help="run the day's quality report and print where it is")
    report.add_argument("--day", help="YYYY-MM-DD (default today)")
    report.add_argument("--where", action="store_true", help="only print where the pages are")
    report.add_argument("--open", action="store_true", help="open the steward summary in a browser")
    report.set_defaults(func=cmd_quality_report)

    from hub.supervision_cli import add_commands as add_supervision_commands

    add_supervision_commands(commands)
    documents_cli.add_commands(commands)
    correct_cli.add_commands(commands)

    shared = commands.add_parser(
        "shared", help="the folders a zone's Celery worker hosts must share").add_subparsers(
        dest="shared_command", required=True)
    shared_init = shared.add_parser("init", help="write the deployment marker into each shared folder (once, "
                                                 "where the shares are mounted)")
    shared_init.add_argument("--deployment-id", help="default HUB_DEPLOYMENT_ID, else the markers' id, else new")
    shared_init.set_defaults(func=cmd_shared)
    shared_check = shared.add_parser("check", help="is every shared folder reachable from this host? "
                                                   "(exit 1 naming each that is not)")
    shared_check.set_defaults(func=cmd_shared)

    env = commands.add_parser(
        "airflow-env", help="print the environment of the Airflow processes (demo, or a Celery deployment)")
    env.add_argument("--home", default=str(PROJECT_ROOT / "var" / "demo"),
                     help="the deployment folder: Airflow home in HOME/airflow, data root in HOME/data")
    env.add_argument("--zone", choices=ZONE_CHOICES, default="both",
                     help="the zone this deployment runs (default both: the demo, with the simulator)")
    env.add_argument("--executor", choices=EXECUTORS, default="local",
                     help="local: LocalExecutor (SQLite unless --metadata-db); celery: the scale-out "
                          "profile (docs/deployment.md)")
    env.add_argument("--metadata-db", help="Airflow metadata database, PostgreSQL for celery "
                                           "(default HUB_METADATA_DB_URL)")
    env.add_argument("--broker-url", help=f"Celery broker, redis:// or amqp:// (default "
                                          f"HUB_CELERY_BROKER_URL, else {DEFAULT_BROKER_URL})")
    env.add_argument("--result-backend", help="Celery result backend, db+postgresql://... (default "
                                              "HUB_CELERY_RESULT_BACKEND, else the metadata database)")
    env.set_defaults(func=cmd_airflow_env)

    audit = commands.add_parser("audit", help="the audit trail (痕迹管理): verify the logs, prove an application's "
                                              "events").add_subparsers(dest="audit_command", required=True)
    audit_verify = audit.add_parser("verify", help="recompute each zone's log and compare it with its sources "
                                                   "and signed checkpoints; exit 1 on any change")
    audit_verify.add_argument("--zone", choices=("internet", "admin"))
    audit_verify.add_argument("--json", action="store_true")
    audit_verify.set_defaults(func=cmd_audit_verify)
    audit_prove = audit.add_parser("prove", help="inclusion proofs of an application's or case's events (JSON)")
    audit_prove.add_argument("net_id", help="a NET_ID, or a case number (办件流水号) of any origin")
    audit_prove.set_defaults(func=cmd_audit_prove)
    audit_checkpoints = audit.add_parser("checkpoints", help="each zone's signed checkpoints")
    audit_checkpoints.add_argument("--zone", choices=("internet", "admin"))
    audit_checkpoints.add_argument("--last", type=int, default=5, help="show the newest N (0: all)")
    audit_checkpoints.add_argument("--notes", action="store_true", help="print the signed notes")
    audit_checkpoints.set_defaults(func=cmd_audit_checkpoints)

    public = commands.add_parser("public", help="the public site: status page, lookup endpoint, sealed store") \
        .add_subparsers(dest="public_command", required=True)
    public_serve = public.add_parser("serve", help="serve the public folder and the status lookup (ASGI, uvicorn)")
    public_serve.add_argument("--host", default="127.0.0.1")
    public_serve.add_argument("--port", type=int, default=8080)
    public_serve.set_defaults(func=cmd_public_serve)
    public_lookup = public.add_parser("lookup", help="open a case's published status with its query password "
                                                     "(asked for, never on the command line)")
    public_lookup.add_argument("key", help="case number, or the NET_ID of an application without one")
    public_lookup.add_argument("--json", action="store_true")
    public_lookup.set_defaults(func=cmd_public_lookup)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    if args.command in CHECKPOINTED_COMMANDS:
        from hub.audit import checkpoint_zones
        from hub.settings import load_settings

        checkpoint_zones(load_settings(), appended_only=True)
    return result


if __name__ == "__main__":
    sys.exit(main())
