"""The operator command ``hub``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from hub.airflow_env import PROJECT_ROOT


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=1, default=str))


def cmd_demo(args: argparse.Namespace) -> int:
    from hub import demo

    home = Path(args.home).absolute()
    data_root = home / "data"
    env = demo.configure(home / "airflow", data_root)
    started = time.monotonic()
    print(f"[demo] Airflow home {env['AIRFLOW_HOME']} (SQLite metadata, LocalExecutor)")
    print("[demo] migrating the Airflow metadata database ...", flush=True)
    demo.migrate_metadata(env)
    truth = demo.prepare_batch(data_root, count=args.count, seed=args.seed)
    print(f"[demo] generated {len(truth)} portal submissions (seed {args.seed}) in {data_root / 'internet/portal/drop'}")
    print(f"[demo] running the loop as Airflow DAG runs: {' → '.join(demo.LOOP)}", flush=True)
    log_file = home / "demo.log"
    with open(log_file, "w") as log:
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = log
        try:
            states = demo.run_loop()
        finally:
            sys.stdout, sys.stderr = saved
    for dag_id, state in states.items():
        print(f"[demo]   {dag_id:<28} {state}")
    counts = demo.summary()
    counts["dag_runs"] = states
    counts["seconds"] = round(time.monotonic() - started, 1)
    print()
    print(demo.format_summary(counts))
    print()
    print("Look up one application's path:   .venv/bin/hub trace <NET_ID>   (ids in the portal's")
    print(f"  collected folder {data_root / 'internet/portal/collected'})")
    sample = demo.sample_lookup()
    if sample is not None:
        print(f"Public status page:   .venv/bin/python -m http.server -b 127.0.0.1 -d {data_root / 'internet/public'} 8000")
        print(f"  then http://127.0.0.1:8000/ with case number {sample[0]} and query password {sample[1]}")
    print("Open the Airflow UI on the same data:   make ui   then http://localhost:8080")
    print(f"  (login 'admin'; the password is in {home / 'airflow' / 'simple_auth_manager_passwords.json.generated'})")
    print(f"Task logs of this run: {log_file}")
    counts_file = home / "demo-counts.json"
    demo.write_counts(counts_file, counts)
    print(f"Counts: {counts_file}")
    return 0 if counts["balanced"] else 1


def cmd_keys_init(args: argparse.Namespace) -> int:
    from hub.keys import init_keys
    from hub.settings import load_settings

    settings = load_settings()
    for zone, key_id in init_keys(settings).items():
        print(f"{zone}: signing key {key_id} (public key in {settings.keys_dir(zone) / 'public'})")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from datetime import date

    from hub.settings import load_settings
    from hub.simulators.applicants import generate_batch, write_expected
    from hub.zones import load_catalogue

    settings = load_settings()
    catalogue = load_catalogue(settings)
    truth = generate_batch(
        settings.portal_drop, args.count, args.seed,
        [dict(item.document) for item in catalogue.items.values()],
        settings.agency_code, date.fromisoformat(args.date) if args.date else date.today(),
    )
    if args.expected:
        write_expected(Path(args.expected), truth)
    print(f"wrote {len(truth)} submissions to {settings.portal_drop}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from hub.stages import STAGES

    _print_json(STAGES[args.stage]())
    return 0


def cmd_simulate_processing(args: argparse.Namespace) -> int:
    from hub.stages import case_processing

    _print_json(case_processing(seed=args.seed))
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


def cmd_trace(args: argparse.Namespace) -> int:
    from connectors.provenance import trace
    from hub.settings import ZONES, load_settings
    from hub.zones import zone_engine

    settings = load_settings()
    engines = [(zone, zone_engine(settings, zone)) for zone in ZONES if settings.loads(zone)]
    events = trace(engines, args.net_id)
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


def cmd_airflow_env(args: argparse.Namespace) -> int:
    from hub.airflow_env import airflow_env

    home = Path(args.home).absolute()
    for key, value in airflow_env(home / "airflow", home / "data").items():
        print(f"export {key}={value!r}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description="Power Exchange Hub operator command")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the whole loop on the embedded defaults")
    demo.add_argument("--home", default=str(PROJECT_ROOT / "var" / "demo"))
    demo.add_argument("--count", type=int, default=200)
    demo.add_argument("--seed", type=int, default=2026)
    demo.set_defaults(func=cmd_demo)

    keys = commands.add_parser("keys", help="zone keys").add_subparsers(dest="keys_command", required=True)
    keys.add_parser("init", help="create each zone's signing key and exchange public keys").set_defaults(
        func=cmd_keys_init
    )

    generate = commands.add_parser("generate", help="write a seeded batch of portal submissions")
    generate.add_argument("--count", type=int, default=200)
    generate.add_argument("--seed", type=int, default=2026)
    generate.add_argument("--date", help="submission date, YYYY-MM-DD (default today)")
    generate.add_argument("--expected", help="write the expected outcomes here")
    generate.set_defaults(func=cmd_generate)

    from hub.stages import STAGES

    run = commands.add_parser("run", help="run one stage of the loop without a scheduler")
    run.add_argument("stage", choices=sorted(STAGES))
    run.set_defaults(func=cmd_run)

    simulate = commands.add_parser("simulate", help="simulators").add_subparsers(dest="what", required=True)
    processing = simulate.add_parser("processing", help="advance open cases like the case-processing system")
    processing.add_argument("--seed", type=int, default=7)
    processing.set_defaults(func=cmd_simulate_processing)

    db = commands.add_parser("db", help="zone databases").add_subparsers(dest="db_command", required=True)
    db_upgrade = db.add_parser("upgrade", help="migrate each configured zone's database (Alembic)")
    db_upgrade.add_argument("revision", nargs="?", default="head")
    db_upgrade.set_defaults(func=cmd_db_upgrade)

    trace = commands.add_parser("trace", help="where is this application? its whole path")
    trace.add_argument("net_id")
    trace.add_argument("--json", action="store_true")
    trace.set_defaults(func=cmd_trace)

    summary = commands.add_parser("summary", help="reconciliation counts of the loop")
    summary.add_argument("--json", help="also write the counts to this file")
    summary.set_defaults(func=cmd_summary)

    env = commands.add_parser("airflow-env", help="print the environment of the demo's Airflow")
    env.add_argument("--home", default=str(PROJECT_ROOT / "var" / "demo"))
    env.set_defaults(func=cmd_airflow_env)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
