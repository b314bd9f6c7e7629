"""The incremental supervision pass (connectors.supervision.run_pass) over many open cases,
of which a share changed since the last pass.

    python -m bench.supervision [--cases 1000000] [--changed 0.05] [--db sqlite|postgresql]
                                [--chunk 2000] [--seed 7] [--dir DIR] [--profile FILE]
    python -m bench.supervision --scaling 100000,1000000

Four phases, each in a fresh process (so each peak RSS is its own, and the workload's
build does not count in the pass's memory):

1. build: a migrated exchange database with N open cases written directly with
   ``bulk_insert`` (applications, cases accepted between Mon 2 and Fri 13 Nov 2026, two or
   three steps each, one status change each), items from the embedded catalogue;
2. first pass at Mon 16 Nov 2026 10:00 (+08:00): every case is new;
3. change: a share of the cases (default 5%) changes at 10:05, as the case-processing
   system writes it: a status change in the outbox and the case's state and time; half of
   them open a pause (专家评审, art45), the other half finish their current step and
   start the next;
4. second pass at 10:15: the measured figure. It must look at the changed cases and at
   the cases whose next check (``supervision_clocks.next_check_at``) falls between the two
   passes, and at nothing else; the benchmark counts both from the database beforehand
   and checks the pass's ``cases`` against them, and that no open alert is duplicated.

``--profile FILE`` also runs the second pass under cProfile on a copy of the database
taken just before it (SQLite only), and prints the top entries.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.measure import machine, peak_rss_mb

# The workload's days: two working weeks without holidays (Mon 2 to Fri 13 Nov 2026) and the
# Monday of the passes. Every clock must end inside 2026, the only year chinesecalendar
# covers: the longest working-day limit of the catalogue (30) from Fri 13 Nov ends on
# Fri 25 Dec, and its last alert threshold two working days later. (From the last two weeks of November it would end in January 2027, and the
# pass would leave those cases uncounted with a CALENDAR_GAP alarm.)
if TYPE_CHECKING:
    from rules.catalogue import Catalogue

FIRST_DAY = date(2026, 11, 2)
DAYS = tuple(FIRST_DAY + timedelta(days=d) for d in range(15) if (FIRST_DAY + timedelta(days=d)).weekday() < 5)
assert len(DAYS) == 11 and DAYS[-1] == date(2026, 11, 16)
DAY_MINUTES = 420  # 09:00-12:00, 13:30-17:30: the hub's default working hours
WORKING_HOURS = "09:00-12:00,13:30-17:30"
FIRST_POSITION = 10 * DAY_MINUTES + 60  # Mon 16 Nov 10:00, in working minutes from Mon 2 Nov 09:00
CHANGE_POSITION = FIRST_POSITION + 5  # 10:05
SECOND_POSITION = FIRST_POSITION + 15  # 10:15
REVIEW_LIMIT = 5  # working days, the simulator's limit of the 审查 step
PASSED, PAUSED, IN_PROGRESS = 1, 3, 5  # DOMAIN step statuses
INSERT_BATCH = 50_000
POLICY = "JS-2013A"
DEFAULT_POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/bench_supervision"


def moment(position: int) -> datetime:
    """The local time ``position`` working minutes after Mon 2 Nov 2026 09:00."""
    from connectors.clock import CST

    day, minute = divmod(position, DAY_MINUTES)
    start = 9 * 60 if minute < 180 else 13 * 60 + 30 - 180
    hour, minutes = divmod(start + minute, 60)
    return datetime(DAYS[day].year, DAYS[day].month, DAYS[day].day, hour, minutes, tzinfo=CST)


def stamp(position: int, second: int = 0) -> str:
    from connectors.clock import iso

    return iso(moment(position) + timedelta(seconds=second))


def embedded_catalogue() -> Catalogue:
    """The sample catalogue the hub embeds (51 items), as a deployment without its own loads it."""
    import hub.zones
    from rules.catalogue import build_catalogue

    return build_catalogue(json.loads((Path(hub.zones.__file__).parent / "defaults" / "catalogue.json")
                                      .read_text("utf-8")))


def case_number(serial: int) -> str:
    return f"3201000001{serial:010d}"


def net_id(serial: int) -> str:
    return f"NETB{serial:012d}"


# --- phase 1: the workload ---------------------------------------------------------------


def build(url: str, cases_count: int, seed: int) -> dict[str, Any]:
    """A fresh, migrated exchange database with ``cases_count`` open cases."""
    from connectors.db import (
        applications,
        bulk_insert,
        case_steps,
        cases,
        engine_for,
        status_outbox,
        transaction,
    )
    from connectors.migrate import upgrade

    items = sorted(embedded_catalogue().items.values(), key=lambda item: item.code)
    engine = engine_for(url)
    upgrade(engine, "admin")
    rng = random.Random(seed)
    started = time.perf_counter()
    steps_count = 0
    for first in range(0, cases_count, INSERT_BATCH):
        apps, case_rows, steps, outbox = [], [], [], []
        for serial in range(first, min(first + INSERT_BATCH, cases_count)):
            item = items[rng.randrange(len(items))]
            number, net = case_number(serial), net_id(serial)
            registered = rng.randrange(0, FIRST_POSITION - 2 * DAY_MINUTES)
            accepted = registered + rng.randint(30, DAY_MINUTES)
            registered_at, accepted_at = stamp(registered, rng.randrange(60)), stamp(accepted, rng.randrange(60))
            # Reviews take up to 5.5 working days: most finish on time, a few run late.
            review = accepted + rng.randint(60, REVIEW_LIMIT * DAY_MINUTES + DAY_MINUTES // 2)
            apps.append({
                "net_id": net, "case_number": number, "power_code": item.code, "power_version": item.version,
                "agency_code": item.agency_code, "case_name": item.name, "applicant_type": "person",
                "applicant_name": "张三", "applicant_id_type": "resident_id",
                "applicant_id_number": "11010519491231002X", "submitted_at": registered_at,
                "registered_at": registered_at, "bundle": "bench", "envelope": "{}",
            })
            steps.append(_step(number, 1, "受理", PASSED, registered_at, accepted_at))
            if review < FIRST_POSITION:
                review_at = stamp(review, rng.randrange(60))
                steps.append(_step(number, 2, "审查", PASSED, accepted_at, review_at, REVIEW_LIMIT))
                steps.append(_step(number, 3, "决定", IN_PROGRESS, review_at, None))
                updated = review_at
            else:
                steps.append(_step(number, 2, "审查", IN_PROGRESS, accepted_at, None, REVIEW_LIMIT))
                updated = accepted_at
            case_rows.append({"case_number": number, "net_id": net, "state": "in_progress",
                              "updated_at": updated, "accepted_at": accepted_at, "power_code": item.code,
                              "power_version": item.version, "agency_code": item.agency_code,
                              "registered_at": registered_at})
            outbox.append({"net_id": net, "case_number": number, "status": "in_progress", "at": updated,
                           "step": steps[-1]["node"], "opinion": None, "reasons": None, "result": None})
        with transaction(engine) as connection:
            bulk_insert(connection, applications, apps)
            bulk_insert(connection, cases, case_rows)
            bulk_insert(connection, case_steps, steps)
            bulk_insert(connection, status_outbox, outbox)
        steps_count += len(steps)
    seconds = time.perf_counter() - started
    _analyze(engine)
    return {"seconds": seconds, "steps": steps_count, "peak_rss_mb": peak_rss_mb()}


def _step(number: str, step_no: int, node: str, status: int, started: str, finished: str | None,
          limit: int | None = None) -> dict[str, Any]:
    return {"case_number": number, "step_no": step_no, "node": node, "department": "行政审批处",
            "officer_code": "320100001", "officer_name": "李四", "status": status, "opinion": "",
            "started_at": started, "finished_at": finished, "time_limit": limit,
            "time_limit_unit": "working_days" if limit else None}


def _analyze(engine: Any) -> None:
    """Planner statistics on PostgreSQL, as autovacuum would have them on a database that has
    been running a while (the hub never runs ANALYZE on SQLite, so neither does this).
    Without them PostgreSQL takes the pass's ``IN`` lists of 500 case numbers to match most
    of a table and reads it whole, once per list."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()


# --- phase 3: the changes between the passes ----------------------------------------------


def change(url: str, cases_count: int, share: float, seed: int) -> dict[str, Any]:
    """Change ``share`` of the cases at 10:05, as the case-processing system writes it."""
    from sqlalchemy import func, select

    from connectors.db import (
        bulk_insert,
        bulk_update,
        case_pauses,
        case_steps,
        cases,
        engine_for,
        status_outbox,
        transaction,
    )

    engine = engine_for(url)
    # The first pass wrote a clock row per case and its alerts: autovacuum would analyze
    # those tables before the next pass (on a server where it is on; see docs/benchmarks.md).
    _analyze(engine)
    chosen = sorted(random.Random(f"{seed}:changed").sample(range(cases_count), round(cases_count * share)))
    at = stamp(CHANGE_POSITION)
    started = time.perf_counter()
    pauses = 0
    for first in range(0, len(chosen), INSERT_BATCH):
        part = chosen[first : first + INSERT_BATCH]
        numbers = [case_number(s) for s in part]
        with transaction(engine) as connection:
            last: dict[str, int] = {}
            for piece in _pieces(numbers, 500):
                last.update((row[0], row[1]) for row in connection.execute(
                    select(case_steps.c.case_number, func.max(case_steps.c.step_no))
                    .where(case_steps.c.case_number.in_(piece)).group_by(case_steps.c.case_number)))
            pause_rows, steps, finished, states, outbox = [], [], [], [], []
            for serial, number in zip(part, numbers, strict=True):
                if serial % 2 == 0:  # an expert review opens: the clocks stop
                    pause_rows.append({"case_number": number, "pause_no": 1, "kind": "art45", "started_at": at,
                                       "ended_at": None, "note": "需专家评审"})
                    steps.append(_step(number, last[number] + 1, "专家评审", PAUSED, at, None))
                    state = "paused"
                else:  # the current step finishes, the next starts
                    steps.append(_step(number, last[number] + 1, "复核", IN_PROGRESS, at, None))
                    state = "in_progress"
                finished.append({"case_number": number, "step_no": last[number], "finished_at": at})
                states.append({"case_number": number, "state": state, "updated_at": at})
                outbox.append({"net_id": net_id(serial), "case_number": number, "status": state, "at": at,
                               "step": steps[-1]["node"], "opinion": None, "reasons": None, "result": None})
            pauses += len(pause_rows)
            bulk_update(connection, case_steps, finished, keys=("case_number", "step_no"))
            bulk_insert(connection, case_steps, steps)
            bulk_insert(connection, case_pauses, pause_rows)
            bulk_update(connection, cases, states, keys=("case_number",))
            bulk_insert(connection, status_outbox, outbox)
    return {"seconds": time.perf_counter() - started, "changed": [case_number(s) for s in chosen],
            "pauses": pauses, "peak_rss_mb": peak_rss_mb()}


def _pieces(items: list[str], size: int) -> Iterator[list[str]]:
    for first in range(0, len(items), size):
        yield items[first : first + size]


# --- phases 2 and 4: the passes -----------------------------------------------------------


def supervision_pass(url: str, position: int, chunk_size: int, profile: str | None = None) -> dict[str, Any]:
    """One pass at ``position``; its time, report and the process's peak RSS before and after.
    Before the pass: the cases whose next check falls due by then (what it must add to the
    changed ones). After: open alerts duplicated per (rule, case, subject), if any."""
    from dataclasses import asdict

    from sqlalchemy import func, select

    from connectors.clock import iso
    from connectors.db import engine_for, supervision_alerts, supervision_clocks
    from connectors.supervision import run_pass
    from rules.alerts import PRESETS
    from rules.calendar import parse_working_hours

    engine = engine_for(url)
    catalogue = embedded_catalogue()
    policy, periods = PRESETS[POLICY], parse_working_hours(WORKING_HOURS)
    at = moment(position)
    with engine.connect() as connection:
        due = set(connection.execute(select(supervision_clocks.c.case_number).where(
            supervision_clocks.c.next_check_at <= iso(at))).scalars())
        open_before = connection.execute(select(func.count()).where(supervision_alerts.c.state == "open")).scalar_one()
    rss_before, load = peak_rss_mb(), os.getloadavg()[0]
    profiler = cProfile.Profile() if profile else None
    started, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    report = run_pass(engine, catalogue=catalogue, policy=policy, periods=periods, at=at, chunk_size=chunk_size)
    if profiler:
        profiler.disable()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    rss_after = peak_rss_mb()
    with engine.connect() as connection:
        duplicated = connection.execute(
            select(func.count()).select_from(
                select(supervision_alerts.c.rule, supervision_alerts.c.case_number, supervision_alerts.c.step_no)
                .where(supervision_alerts.c.state == "open")
                .group_by(supervision_alerts.c.rule, supervision_alerts.c.case_number, supervision_alerts.c.step_no)
                .having(func.count() > 1).subquery())).scalar_one()
        open_after = connection.execute(select(func.count()).where(supervision_alerts.c.state == "open")).scalar_one()
    top = ""
    if profiler and profile:
        profiler.dump_stats(profile)
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        top = out.getvalue()
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "report": asdict(report), "due": sorted(due),
            "open_before": open_before, "open_after": open_after, "duplicated": duplicated,
            "rss_before_mb": rss_before, "peak_rss_mb": rss_after, "load": load, "profile_top": top}


# --- the run -------------------------------------------------------------------------------


def in_fresh_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``function(*args)`` in a new process (spawned: nothing inherited from this one)."""
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def database_url(db: str, directory: Path, postgres_url: str | None = None) -> str:
    """A fresh exchange database: a new SQLite file, or the benchmark's own PostgreSQL
    database emptied (created when missing)."""
    if db == "sqlite":
        path = directory / "exchange.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(postgres_url or os.environ.get("HUB_BENCH_POSTGRES_URL") or DEFAULT_POSTGRES_URL)
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as connection:
        if not connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                  {"name": url.database}).first():
            connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    server.dispose()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return url.render_as_string(hide_password=False)


def run(cases_count: int, share: float, seed: int, directory: Path, *, db: str = "sqlite",
        chunk_size: int = 2_000, profile: str | None = None, postgres_url: str | None = None,
        fresh: Callable[..., dict[str, Any]] = in_fresh_process) -> dict[str, Any]:
    """Build, first pass, change, second pass (each through ``fresh``); the figures and the
    accounting checks."""
    url = database_url(db, directory, postgres_url)
    built = fresh(build, url, cases_count, seed)
    first = fresh(supervision_pass, url, FIRST_POSITION, chunk_size)
    changed = fresh(change, url, cases_count, share, seed)
    if profile and db == "sqlite":
        _checkpoint(directory / "exchange.sqlite")
        shutil.copyfile(directory / "exchange.sqlite", directory / "before-second.sqlite")
    second = fresh(supervision_pass, url, SECOND_POSITION, chunk_size)
    profiled = None
    if profile and db == "sqlite":
        profiled = fresh(supervision_pass, f"sqlite:///{directory / 'before-second.sqlite'}", SECOND_POSITION,
                         chunk_size, profile)
    changed_set, due = set(changed["changed"]), set(second["due"])
    result = {
        "cases": cases_count, "share": share, "db": db, "chunk_size": chunk_size,
        "build": {k: v for k, v in built.items()},
        "first": _summary(first), "change": {k: v for k, v in changed.items() if k != "changed"},
        "second": _summary(second),
        "changed": len(changed_set), "crossings_only": len(due - changed_set), "both": len(due & changed_set),
        "profile_top": profiled["profile_top"] if profiled else "",
    }
    result["check"] = _check(result, first, second, cases_count, changed_set, due)
    return result


def _checkpoint(path: Path) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _summary(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if k not in ("due", "profile_top")}


def _check(result: dict[str, Any], first: dict[str, Any], second: dict[str, Any], cases_count: int,
           changed: set[str], due: set[str]) -> list[str]:
    """What must hold: the first pass counts every case, the second exactly the changed
    cases and those whose next check fell due, and no open alert exists twice."""
    problems = []
    if first["report"]["cases"] != cases_count:
        problems.append(f"first pass counted {first['report']['cases']} cases, not {cases_count}")
    expected = len(changed | due)
    if second["report"]["cases"] != expected:
        problems.append(f"second pass counted {second['report']['cases']} cases, not {expected} "
                        f"({len(changed)} changed + {len(due - changed)} next checks due)")
    for name, figures in (("first", first), ("second", second)):
        if figures["duplicated"]:
            problems.append(f"{name} pass: {figures['duplicated']} open alerts exist more than once")
        report = figures["report"]
        if report["uncounted_cases"] or report["calendar_gaps"]:
            problems.append(f"{name} pass: calendar gaps {report['calendar_gaps']}")
        if figures["open_after"] != figures["open_before"] + report["raised"] - report["lifted"] - report["closed"]:
            problems.append(f"{name} pass: open alerts {figures['open_before']} → {figures['open_after']} "
                            f"do not match raised {report['raised']}, lifted {report['lifted']}, "
                            f"closed {report['closed']}")
    return problems


def print_report(result: dict[str, Any]) -> None:
    n, built, first, second = result["cases"], result["build"], result["first"], result["second"]
    print(f"supervision pass, {n:,} open cases ({built['steps']:,} steps), {result['db']}, "
          f"chunk {result['chunk_size']:,}, {os.cpu_count()} cores")
    print(f"build workload (not measured): {built['seconds']:.1f} s, peak RSS {built['peak_rss_mb']:.0f} MB")
    print(f"change {result['changed']:,} cases at 10:05 ({result['change']['pauses']:,} pauses, "
          f"{result['changed'] - result['change']['pauses']:,} new steps; not measured): "
          f"{result['change']['seconds']:.1f} s")
    print(f"{'pass':<28} {'cases':>9} {'seconds':>8} {'CPU s':>7} {'µs/case':>8} {'clocks':>9} {'raised':>8} "
          f"{'escal.':>7} {'lifted':>7} {'closed':>7} {'to prov.':>9} {'RSS before':>11} {'peak RSS MB':>12} "
          f"{'load1':>6}")
    for name, figures in (("first (every case new) 10:00", first), ("second 10:15", second)):
        report = figures["report"]
        per = figures["seconds"] / report["cases"] * 1e6 if report["cases"] else 0.0
        print(f"{name:<28} {report['cases']:>9,} {figures['seconds']:>8.2f} {figures['cpu_seconds']:>7.2f} "
              f"{per:>8.0f} {report['clocks']:>9,} {report['raised']:>8,} {report['escalated']:>7,} "
              f"{report['lifted']:>7,} {report['closed']:>7,} {report['sent_to_province']:>9,} "
              f"{figures['rss_before_mb']:>11.0f} {figures['peak_rss_mb']:>12.0f} {figures['load']:>6.2f}")
    print(f"second pass looked at {second['report']['cases']:,} cases: {result['changed']:,} changed "
          f"+ {result['crossings_only']:,} whose next check fell due between the passes "
          f"({result['both']:,} changed cases also had one due); "
          f"{second['seconds'] / result['changed'] * 1e6:.0f} µs per changed case")
    print("accounting: " + ("as expected" if not result["check"] else "WRONG: " + "; ".join(result["check"])))
    if result["profile_top"]:
        print("\ncProfile of the second pass (on a copy of the database before it), by own time:")
        print(result["profile_top"])


def scaling(sizes: list[int], share: float, seed: int, db: str, chunk_size: int) -> None:
    """Each size from a fresh database; per-case time and peak RSS side by side."""
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-supervision-") as directory:
            result = run(size, share, seed, Path(directory), db=db, chunk_size=chunk_size)
        print_report(result)
        print(flush=True)
        results.append(result)
    print("scaling of the supervision pass (each phase in its own process)")
    print(f"{'cases':>10} {'build s':>8} {'1st s':>7} {'1st µs/case':>12} {'1st RSS MB':>11} {'changed':>8} "
          f"{'2nd cases':>10} {'2nd s':>7} {'µs/changed':>11} {'2nd RSS MB':>11}")
    for r in results:
        first, second = r["first"], r["second"]
        print(f"{r['cases']:>10,} {r['build']['seconds']:>8.1f} {first['seconds']:>7.1f} "
              f"{first['seconds'] / r['cases'] * 1e6:>12.0f} {first['peak_rss_mb']:>11.0f} {r['changed']:>8,} "
              f"{second['report']['cases']:>10,} {second['seconds']:>7.2f} "
              f"{second['seconds'] / r['changed'] * 1e6:>11.0f} {second['peak_rss_mb']:>11.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.05, help="share of the cases changed before the second pass")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres-url", help=f"with --db postgresql (default $HUB_BENCH_POSTGRES_URL or "
                                               f"{DEFAULT_POSTGRES_URL}); its public schema is emptied")
    parser.add_argument("--chunk", type=int, default=2_000, help="cases per transaction of the pass")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, help="where the SQLite database goes (default: a temporary folder)")
    parser.add_argument("--profile", help="also profile the second pass into this file (SQLite)")
    parser.add_argument("--scaling", help="comma-separated sizes, each from a fresh database")
    args = parser.parse_args()
    if args.profile and args.db != "sqlite":
        parser.error("--profile copies the database file before the second pass: SQLite only")
    print(f"machine: {machine()}", flush=True)
    if args.scaling:
        scaling([int(s) for s in args.scaling.split(",")], args.changed, args.seed, args.db, args.chunk)
        return
    if args.dir:
        args.dir.mkdir(parents=True, exist_ok=True)
        result = run(args.cases, args.changed, args.seed, args.dir, db=args.db, chunk_size=args.chunk,
                     profile=args.profile, postgres_url=args.postgres_url)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-supervision-") as directory:
            result = run(args.cases, args.changed, args.seed, Path(directory), db=args.db, chunk_size=args.chunk,
                         profile=args.profile, postgres_url=args.postgres_url)
    print_report(result)
    if result["check"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
