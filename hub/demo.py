"""The demo and the end-to-end test share this runner: prepare both zones on one machine,
generate a portal batch, and run the whole loop as real Airflow DAG runs (``dag.test()``
on a migrated SQLite metadata database)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from hub.airflow_env import airflow_env

DEMO_DAYS_BACK = 21
LOOP = (
    "intake",
    "inbound_receive",
    "applications_load",
    "case_processing_simulator",
    "status_publish",
    "portal_publish",
)


REGISTRATION = ("intake", "inbound_receive", "applications_load")
# Now, after the simulated evenings, as Airflow DAG runs.
CATCH_UP = ("intake", "inbound_receive", "case_processing_simulator", "status_publish", "portal_publish",
            "supervision", "legal_documents")
EVENING = time(18, 0)  # when the demo's simulated days are reported to the province


def submission_day() -> date:
    """The day the demo's batch is dated: three weeks back, so that the processing simulator
    (which never writes a future time) has steps, decisions and penalties due."""
    return date.today() - timedelta(days=DEMO_DAYS_BACK)


def registered_as_submitted() -> Any:
    """The hub's clock during registration: the evening of the submission day, so that the
    batch is registered before any simulated step (simulation only)."""
    from connectors.clock import registration_shift, shifted

    return shifted(registration_shift(submission_day()))


def configure(home: Path, data_root: Path) -> dict[str, str]:
    """Point this process (and its children) at the demo's Airflow home and data root.
    Must run before anything imports Airflow."""
    env = airflow_env(home, data_root)
    os.environ.update(env)
    return env


def migrate_metadata(env: dict[str, str]) -> None:
    """``airflow db migrate`` in a child process (idempotent, about 3 s on SQLite)."""
    airflow = Path(sys.executable).with_name("airflow")
    subprocess.run(
        [str(airflow), "db", "migrate"], env={**os.environ, **env}, check=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def prepare_batch(data_root: Path, *, count: int, seed: int, fresh: bool = True) -> dict[str, Any]:
    """Reset the zones' data, create and exchange keys, and have the portal write a
    generated batch (into its front database unless ``HUB_INGRESS=drop``). Returns the
    ground truth (NET_ID → expected outcome)."""
    from hub.keys import init_keys
    from hub.settings import load_settings
    from hub.simulators.applicants import generate_batch, portal_for, write_expected
    from hub.zones import load_catalogue

    if fresh and data_root.exists():
        shutil.rmtree(data_root)
    settings = load_settings()
    init_keys(settings)
    catalogue = load_catalogue(settings)
    portal, _ = portal_for(settings)
    truth = generate_batch(
        portal,
        count,
        seed,
        [dict(item.document) for item in catalogue.items.values()],
        settings.agency_code,
        submission_day(),
    )
    write_expected(data_root / "expected.json", truth)
    return truth


def run_loop(dag_ids: tuple[str, ...] = LOOP) -> dict[str, str]:
    """Run each DAG of the loop once, in order, through Airflow; returns each run's state."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    states = {}
    for dag_id in dag_ids:
        run = bag.get_dag(dag_id).test()
        states[dag_id] = str(run.state)
        if states[dag_id] != "success":
            raise RuntimeError(f"DAG run of {dag_id} ended {run.state}; see the task log above")
    return states


def run_loop_with_resend(data_root: Path, say: Any = print) -> dict[str, str]:
    """The loop with one inbound bundle lost on purpose, recovered by the protocol.

    Half of the batch goes into inbound bundle #1, which the demo deletes from the ferry
    folder (lost in the gap); the other half goes into #2. The administration zone applies
    #2 and sees the gap; its receipt ("missing 1") rides out on the next outbound bundle;
    the internet zone's intake upkeep re-sends #1 byte-identical from its outbox; the loop
    completes. A last heartbeat carries the outbound receipt back in."""
    from ferry.bundle import bundle_file_name
    from hub.settings import load_settings

    settings = load_settings()
    with _later_half_held_back(settings, data_root):
        states = run_loop(("intake",))
        lost = settings.channel_dir("inbound") / bundle_file_name("inbound", 1)
        lost.unlink()
        say(f"[demo] deleted {lost.name} from the ferry folder on purpose (a bundle lost in the gap)")
    states.update(run_loop())
    say("[demo] first pass done: inbound #2 applied, #1 missing; the receipt went out on the outbound channel")
    states.update(run_loop())
    say("[demo] second pass done: intake re-sent #1 from its outbox, the receiver applied it")
    saved = os.environ.get("HUB_FERRY_HEARTBEAT_MINUTES")
    os.environ["HUB_FERRY_HEARTBEAT_MINUTES"] = "0"
    try:
        states.update(run_loop(("intake", "inbound_receive")))
    finally:
        if saved is None:
            os.environ.pop("HUB_FERRY_HEARTBEAT_MINUTES", None)
        else:
            os.environ["HUB_FERRY_HEARTBEAT_MINUTES"] = saved
    say("[demo] heartbeat sent on the inbound channel: it carries the outbound receipt back")
    return states


@contextmanager
def _later_half_held_back(settings: Any, data_root: Path) -> Iterator[None]:
    """The portal hands over the later half of the batch only after the block: the
    front database's rows not yet read (taken out and inserted again, as the portal would
    insert them later), or the drop folder's submission folders."""
    from sqlalchemy import delete, select

    from connectors.db import portal_submissions, transaction
    from connectors.front_db import NEW, insert_submissions
    from hub.zones import zone_engine

    table = portal_submissions
    engine = zone_engine(settings, "internet")
    with transaction(engine) as connection:
        rows = [dict(r._mapping) for r in connection.execute(
            select(table.c.id, table.c.net_id, table.c.submitted_at, table.c.envelope)
            .where(table.c.state == NEW).order_by(table.c.id)
        )]
        later_rows = rows[len(rows) // 2 :]
        if later_rows:
            connection.execute(delete(table).where(table.c.id >= later_rows[0]["id"], table.c.state == NEW))
    drop = settings.portal_drop
    names = sorted(p.name for p in drop.iterdir() if p.is_dir()) if drop.is_dir() else []
    later = names[len(names) // 2 :]
    holding = data_root / "held-back"
    holding.mkdir(parents=True, exist_ok=True)
    for name in later:
        shutil.move(drop / name, holding / name)
    yield
    for name in later:
        shutil.move(holding / name, drop / name)
    holding.rmdir()
    with transaction(engine) as connection:
        insert_submissions(connection, later_rows)


def ferry_status_text() -> str:
    from hub.ferry_ops import channel_status, format_status
    from hub.settings import load_settings

    return format_status(channel_status(load_settings()))


def summary() -> dict[str, Any]:
    from hub.settings import load_settings
    from hub.zones import zone_engine
    from quality.reconciliation import reconcile

    settings = load_settings()
    return reconcile(
        zone_engine(settings, "internet"), zone_engine(settings, "admin"), settings.public_root
    )


def sample_lookup() -> tuple[str, str] | None:
    """A published case's number and query password, to try the public status page with."""
    from sqlalchemy import select

    from connectors.db import applications, publish_withheld, query_passwords
    from hub.settings import load_settings
    from hub.zones import zone_engine

    with zone_engine(load_settings(), "admin").connect() as connection:
        row = connection.execute(
            select(query_passwords.c.case_number, query_passwords.c.password)
            .join(applications, applications.c.net_id == query_passwords.c.net_id)
            .where(query_passwords.c.net_id.not_in(select(publish_withheld.c.net_id)))
            .order_by(query_passwords.c.case_number)
            .limit(1)
        ).first()
    return (row.case_number, row.password) if row else None


def format_summary(counts: dict[str, Any]) -> str:
    rows = [
        ("submitted", counts["submitted"]),
        ("accepted", counts["accepted"]),
        ("rejected (applications)", counts["rejected"]),
        # One application can carry several reasons: these add up to more than the line above.
        ("  reasons (one application may have several):", ""),
        *((f"    {code}", n) for code, n in counts["rejected_by_reason"].items()),
        ("quarantined", counts["quarantined"]),
        ("in flight", counts["in_flight"]),
        ("status changes published", counts["status_changes_published"]),
        ("status changes held for review", counts["status_changes_held"]),
        ("status changes withheld (minors, secrets; counter and ex-officio cases: no status page)",
         counts["status_changes_withheld"]),
        ("applications with a public status page", counts["public_documents"]),
    ]
    width = max(len(label) for label, _ in rows)
    lines = [f"{label.ljust(width)}  {value:>7}" for label, value in rows]
    lines.append(f"{'reconciliation'.ljust(width)}  {'balanced' if counts['balanced'] else 'MISMATCH':>7}")
    return "\n".join(lines)


def write_counts(path: Path, counts: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(counts, ensure_ascii=False, indent=1), "utf-8")


EVENING_STAGES = ("intake", "inbound_upkeep", "inbound_receive", "case_processing", "status_publish",
                  "outbound_upkeep", "portal_publish", "supervision")
# An evening stands for a day of 15-minute runs: the channels are not silent in between.
EVENING_SILENCE_MINUTES = str(2 * 24 * 60)


def simulated_evenings() -> list[datetime]:
    """18:00 of every day after the submission day up to yesterday (agency time), and a
    few minutes ago: the last round leaves the channels as freshly heard as the scheduled
    DAGs would, so that the present finds no silence that only the simulation made."""
    from connectors.clock import CST

    first = submission_day() + timedelta(days=1)
    evenings = [datetime.combine(first + timedelta(days=n), EVENING, CST) for n in range((date.today() - first).days)]
    return [*evenings, datetime.now(CST).replace(microsecond=0) - timedelta(minutes=5)]


def simulated_round(settings: Any, moment: datetime, breaches: tuple[str, ...] = ()) -> None:
    """One round of the loop's stages and the province report with the hub's clock at
    ``moment`` (simulation only); ``breaches``: cases whose fine the simulated office sets
    out of its discretion range."""
    from connectors.clock import running_at
    from hub import province, stages
    from hub.settings import load_settings

    saved = os.environ.get("HUB_FERRY_SILENCE_ALARM_MINUTES")
    os.environ["HUB_FERRY_SILENCE_ALARM_MINUTES"] = EVENING_SILENCE_MINUTES
    try:
        with running_at(moment):
            evening_settings = load_settings()
            for name in EVENING_STAGES:
                if name == "case_processing":
                    stages.case_processing(evening_settings, discretion_breaches=breaches)
                else:
                    stages.STAGES[name](evening_settings)
            province.province_report(evening_settings)
    finally:
        if saved is None:
            os.environ.pop("HUB_FERRY_SILENCE_ALARM_MINUTES", None)
        else:
            os.environ["HUB_FERRY_SILENCE_ALARM_MINUTES"] = saved


def issue_demo_order(settings: Any, evening: datetime) -> str:
    """The supervision office issues a supervision order (督办) on an open case that evening,
    due the next working day at 17:00; nobody answers it, so it raises ORDER_NOT_STARTED."""
    from sqlalchemy import select

    from connectors.clock import running_at
    from connectors.db import cases
    from connectors.supervision import TERMINAL_STATES, issue_order
    from hub.zones import zone_engine

    engine = zone_engine(settings, "admin")
    with engine.connect() as connection:
        number = connection.execute(
            select(cases.c.case_number).where(cases.c.accepted_at.is_not(None), cases.c.state.not_in(TERMINAL_STATES))
            .order_by(cases.c.case_number).limit(1)).scalar()
    if number is None:
        return "no open case to issue a supervision order on"
    deadline = datetime.combine(evening.date() + timedelta(days=1 if evening.weekday() < 4 else 7 - evening.weekday()),
                                time(17, 0), evening.tzinfo)
    with running_at(evening):
        order = issue_order(engine, case_number=number, issued_by="监察室 李明",
                            instruction="请说明办理进度并按承诺时限办结", deadline=deadline)
    return f"supervision order {order} issued on {number} ({evening:%m-%d}), deadline {deadline:%Y-%m-%d %H:%M}"


OFFLINE_SEED = 7


def open_offline_cases(settings: Any) -> dict[str, str]:
    """The cases the case-processing system opens itself on the submission day: one counter
    application (网下申请) and one penalty case opened ex officio (依职权立案) that goes on
    to a decision; the simulated office will set its fine out of its discretion range.
    Returns their case numbers by role."""
    from connectors.clock import CST
    from hub.simulators.processing import PENALTY_SCENARIOS, register_offline_cases, scenario_for
    from hub.zones import load_catalogue, zone_engine

    engine = zone_engine(settings, "admin")
    catalogue = load_catalogue(settings)
    opened = datetime.combine(submission_day(), time(10, 0), CST)
    [counter] = register_offline_cases(engine, catalogue, seed=OFFLINE_SEED, at=opened, counter=1)
    deciding = [name for name, steps in PENALTY_SCENARIOS.items() if any(t.penalty for t in steps)]
    for attempt in range(1, 10):
        [number] = register_offline_cases(engine, catalogue, seed=OFFLINE_SEED, ex_officio=1,
                                          at=opened + timedelta(minutes=attempt))
        if scenario_for(number, OFFLINE_SEED, "CF") in deciding:
            return {"counter": counter, "ex_officio": number}
    raise RuntimeError("no ex-officio case of the demo goes on to a penalty decision")


def origins_text(offline: dict[str, str]) -> str:
    """The counter case and the ex-officio penalty as the province, supervision and the
    public lists see them."""
    from sqlalchemy import select

    from connectors.db import cases, province_sync
    from connectors.supervision import open_alerts
    from hub.settings import load_settings
    from hub.zones import zone_engine

    engine = zone_engine(load_settings(), "admin")
    lines = []
    with engine.connect() as connection:
        for role, number in offline.items():
            case = connection.execute(select(cases).where(cases.c.case_number == number)).one()
            marks = dict(connection.execute(select(province_sync.c.kind, province_sync.c.mark).where(
                province_sync.c.kind == "case", province_sync.c.record_key == number)).all())
            accepted = (f", accepted {case.accepted_at[:16]} by {case.acceptor_name}, time limit "
                        f"{case.time_limit} {case.time_limit_unit}") if case.accepted_at else ""
            lines.append(f"  {number}  {role:<10} {case.state:<12} (no NET_ID{accepted}); "
                         f"province case record: {marks.get('case', 'not sent')}")
    breach = [a for a in open_alerts(engine) if a["case_number"] == offline["ex_officio"]
              and a["rule"].startswith("DISCRETION")]
    for alert in breach:
        lines.append(f"  {alert['rule']} ({alert['level']}) on {alert['case_number']}: {alert['detail']}")
    if not breach:
        lines.append(f"  {offline['ex_officio']}: no discretion alert open (not decided yet)")
    return "\n".join(lines)


def file_one_major_case_late(settings: Any) -> str | None:
    """The legal office files one forgotten major decision on paper, after its deadline:
    the next supervision pass lifts the MAJOR_CASE_NOT_FILED alarm it had raised."""
    from connectors.supervision import open_alerts, record_filing
    from hub.zones import zone_engine

    engine = zone_engine(settings, "admin")
    unfiled = [a for a in open_alerts(engine) if a["rule"] == "MAJOR_CASE_NOT_FILED"]
    if not unfiled:
        return None
    alert = unfiled[0]
    record_filing(engine, case_number=alert["case_number"], authority="南京市司法局",
                  document_no=f"宁交罚备〔{date.today().year}〕{alert['id']}号", filed_at=datetime.now().astimezone(),
                  filed_by="法制处（纸质补报）")
    return (f"major case {alert['case_number']} filed late on paper (alarm raised {alert['raised_at'][:16]}: "
            f"{alert['detail']}); {len(unfiled) - 1} other(s) still unfiled")


def province_round(folder: Path, *, reject_share: float = 0.05, say: Any = print) -> dict[str, Any]:
    """Start the province simulator (a real sshd on loopback). First the three weeks the
    batch has been in processing, one evening at a time, as the scheduled DAGs would have
    seen them: the loop's stages (the ferry's heartbeats and receipts included), the
    case-processing simulator, the supervision pass and the province report (the province
    answers each batch). Then, now, the loop's DAGs run as Airflow DAG runs, and
    ``province_report`` runs twice (send, then take in the receipt). Returns the batches,
    the receipt counts and the feed status."""
    from ferry.keys import export_public_key
    from hub import province
    from hub.settings import load_settings
    from hub.simulators.province import ProvinceSimulator

    settings = load_settings()
    simulator = ProvinceSimulator(folder, reject_share=reject_share)
    export_public_key(settings.keys_dir("admin"), "admin", simulator.trusted_keys)
    simulator.start()
    saved = os.environ.get("AIRFLOW_CONN_PROVINCE_SFTP")
    os.environ["AIRFLOW_CONN_PROVINCE_SFTP"] = simulator.connection_uri()
    try:
        offline = open_offline_cases(settings)
        say(f"[demo] the case-processing system registered counter case {offline['counter']} and opened penalty "
            f"case {offline['ex_officio']} ex officio (its fine will be set out of its discretion range)")
        breaches = (offline["ex_officio"],)
        evenings = simulated_evenings()
        order_evening = evenings[-6] if len(evenings) > 6 else None
        for evening in evenings:
            simulated_round(settings, evening, breaches)
            if evening == order_evening:
                say(f"[demo] {issue_demo_order(settings, evening)}")
            simulator.process_incoming()
        say(f"[demo] {len(evenings) - 1} simulated evenings and a round just now: the loop, supervision and the "
            f"province report")
        late = file_one_major_case_late(settings)
        if late:
            say(f"[demo] {late}")
        states = run_loop(CATCH_UP)
        states["province_report (send)"] = run_loop(("province_report",))["province_report"]
        receipts = simulator.process_incoming()
        states["province_report (receipts)"] = run_loop(("province_report",))["province_report"]
    finally:
        simulator.remove()
        if saved is None:
            os.environ.pop("AIRFLOW_CONN_PROVINCE_SFTP", None)
        else:
            os.environ["AIRFLOW_CONN_PROVINCE_SFTP"] = saved
    return {"dag_runs": states, "receipts": receipts, "status": province.status(settings), "offline": offline}


def supervision_text() -> str:
    """Open supervision alerts by level and rule, and the calendar-gap alarm when open."""
    from collections import Counter

    from connectors.alarms import open_alarm_rows
    from connectors.supervision import CALENDAR_GAP_ALARM, open_alerts
    from hub.settings import load_settings
    from hub.zones import zone_engine
    from rules.alerts import LEVEL_NAMES

    engine = zone_engine(load_settings(), "admin")
    alerts = open_alerts(engine)
    by_rule = Counter((a["level"], a["rule"]) for a in alerts)
    lines = [f"open alerts: {len(alerts)}"]
    lines += [f"  {LEVEL_NAMES[level]} {level:<8} {rule:<28} {n}" for (level, rule), n in sorted(by_rule.items())]
    with engine.connect() as connection:
        for gap in open_alarm_rows(connection, CALENDAR_GAP_ALARM):
            lines.append(f"CALENDAR_GAP: the working-day calendar does not cover {gap.detail['year']}; "
                         f"{gap.detail['uncounted_cases']} case(s) whose limits reach into it are not counted "
                         f"until it is imported (hub calendar import FILE; docs/supervision.md)")
    return "\n".join(lines)


def format_province(result: dict[str, Any]) -> str:
    lines = []
    for receipt in result["receipts"]:
        lines.append(f"batch {receipt['batch_id']}: province accepted {receipt['accepted']}, rejected {receipt['rejected']}")
        for error in receipt["errors"][:3]:
            lines.append(f"  rejected {error['kind']} {error['record_key']}: {error['code']} {error['message']}")
    for kind, marks in sorted(result["status"]["marks"].items()):
        lines.append(f"  {kind:<17} " + "  ".join(f"{mark} {count}" for mark, count in marks.items()))
    lines.append(f"steward report: {result['status']['steward_report']}")
    return "\n".join(lines)
