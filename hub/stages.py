"""One function per stage of the loop, each taking the settings and returning a small
JSON-able report. DAG tasks call these and nothing else, so every stage can also be run
and tested without a scheduler (``hub run STAGE``)."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any, ParamSpec

from connectors.audit_feed import CHECKPOINT_PLAN, publish_checkpoint, rebuild_checkpoint
from connectors.catalogue_feed import (
    CATALOGUE_PLAN,
    publish_catalogue,
    rebuild_catalogue,
    with_catalogue,
)
from connectors.channel_sender import ChannelSender, Rebuild
from connectors.clock import now
from connectors.exchange import (
    apply_inbound,
    load_applications,
    publish_status,
    stage_attachments,
    status_rebuilder,
)
from connectors.ferry_control import ChannelPolicy, check_silence, upkeep_sender
from connectors.ferry_ledger import DATA, receive_channel
from connectors.front_db import FRONT_DB_PLAN, collect_front_db, front_db_rebuilder
from connectors.intake import IntakeReport, collect_submissions, intake_rebuilder
from connectors.public_feed import apply_status_bundle, compact_status_store, install_status_page
from ferry.receipts import REVERSE
from hub.audit import checkpoint_zones
from hub.settings import Settings, load_settings
from hub.simulators.processing import advance_cases
from hub.zones import (
    CHANNEL_SENDER,
    decryption_keys,
    load_catalogue,
    receiver_keyring,
    recipient_key,
    signing_key,
    transport_for,
    zone_engine,
)

log = logging.getLogger("hub.stages")
P = ParamSpec("P")


def logged_stage(stage: Callable[P, dict[str, Any]]) -> Callable[P, dict[str, Any]]:
    """Log what a stage did: its name, how long it took and its (compacted) report, at INFO;
    a stage that raises is logged with the error class before the exception goes on."""
    name = stage.__name__

    @functools.wraps(stage)
    def run(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any]:
        started = time.monotonic()
        log.info("stage %s: started", name)
        try:
            report = stage(*args, **kwargs)
        except Exception as error:
            log.warning("stage %s: stopped after %.2f s by %s: %s", name, time.monotonic() - started,
                        type(error).__name__, error)
            raise
        finally:
            # Every task run that appended to a zone's audit log ends with a signed checkpoint
            # (also one that failed after committing some of its work).
            given = args[0] if args else kwargs.get("settings")
            if given is None or isinstance(given, Settings):
                signed = checkpoint_zones(given or load_settings(), appended_only=True)
                if signed:
                    log.info("stage %s: audit checkpoints %s", name, signed)
        log.info("stage %s: done in %.2f s: %s", name, time.monotonic() - started,
                 json.dumps(compact(report, keep=3, whole=()), ensure_ascii=False, default=str)[:2000])
        return report

    return run


def channel_sender(settings: Settings, channel: str) -> ChannelSender:
    """The sending end of ``channel`` in the zone that sends on it, with the rebuilder of
    every plan kind that zone plans on it."""
    rebuilders: dict[str, Rebuild]
    if channel == "inbound":
        rebuilders = {
            DATA: intake_rebuilder(settings.portal_drop, settings.portal_collected),
            FRONT_DB_PLAN: front_db_rebuilder(settings.portal_store),
        }
    else:
        rebuilders = {DATA: status_rebuilder(load_catalogue(settings)), CATALOGUE_PLAN: rebuild_catalogue,
                      CHECKPOINT_PLAN: rebuild_checkpoint}
    return ChannelSender(
        engine=zone_engine(settings, CHANNEL_SENDER[channel]),
        channel=channel,
        key=signing_key(settings, channel),
        recipient=recipient_key(settings, channel),
        outbox=settings.outbox_dir(channel),
        transport=transport_for(settings, channel),
        rebuilders=rebuilders,
    )


@logged_stage
def intake(settings: Settings | None = None) -> dict[str, Any]:
    """Internet zone: carry new portal submissions into inbound bundles, from the front
    database (前置库) and/or the drop folder as ``HUB_INGRESS`` says."""
    settings = settings or load_settings()
    sender = channel_sender(settings, "inbound")
    catalogue_version = load_catalogue(settings).version
    report = IntakeReport()
    for resumed in sender.resume():  # whatever a crash left planned, of either ingress
        if resumed.plan.kind in (DATA, FRONT_DB_PLAN):
            report.bundles.append(resumed.plan.ref)
            report.carried += resumed.plan.record_count
    parts = []
    if settings.reads_front_db():
        parts.append(collect_front_db(sender, store=settings.portal_store, catalogue_version=catalogue_version))
    if settings.reads_drop():
        parts.append(collect_submissions(
            sender,
            drop=settings.portal_drop,
            collected=settings.portal_collected,
            quarantine_dir=settings.internet_quarantine,
            catalogue_version=catalogue_version,
        ))
    for part in parts:
        report.bundles += part.bundles
        report.carried += part.carried
        report.quarantined += part.quarantined
    return asdict(report)


@logged_stage
def inbound_receive(settings: Settings | None = None) -> dict[str, Any]:
    """Administration zone: verify and stage every inbound bundle that has arrived."""
    settings = settings or load_settings()
    report = receive_channel(
        zone_engine(settings, "admin"),
        channel="inbound",
        transport=transport_for(settings, "inbound"),
        keyring=receiver_keyring(settings, "inbound"),
        decryption_keys=decryption_keys(settings, "inbound"),
        quarantine_dir=settings.admin_quarantine,
        stage=stage_attachments(settings.attachment_store),
        apply=apply_inbound,
    )
    return asdict(report)


@logged_stage
def applications_load(settings: Settings | None = None) -> dict[str, Any]:
    """Administration zone: validate staged applications and hand accepted ones over."""
    settings = settings or load_settings()
    report = load_applications(
        zone_engine(settings, "admin"),
        catalogue=load_catalogue(settings),
        attachment_store=settings.attachment_store,
    )
    return asdict(report)


@logged_stage
def case_processing(
    settings: Settings | None = None, *, seed: int = 7, at: datetime | None = None,
    discretion_breaches: Collection[str] = (),
) -> dict[str, Any]:
    """Administration zone: the processing simulator plays the case-processing system,
    applying every transition due by ``at`` (default: now)."""
    settings = settings or load_settings()
    items = load_catalogue(settings).items
    categories = {code: item.category for code, item in items.items()}
    majors = {code: item.document["major_case"] for code, item in items.items() if "major_case" in item.document}
    limits = {code: (item.promised_limit_days, str(item.document.get("limit_unit") or "working_days"))
              for code, item in items.items()}
    return asdict(advance_cases(zone_engine(settings, "admin"), seed=seed, categories=categories,
                                major_rules=majors, time_limits=limits, at=at,
                                discretion_breaches=discretion_breaches))


@logged_stage
def status_publish(settings: Settings | None = None) -> dict[str, Any]:
    """Administration zone: pack new status changes, masked and scanned, into outbound bundles."""
    settings = settings or load_settings()
    report = publish_status(channel_sender(settings, "outbound"), catalogue=load_catalogue(settings))
    return asdict(report)


@logged_stage
def catalogue_publish(settings: Settings | None = None) -> dict[str, Any]:
    """Administration zone: send the public catalogue when its version has changed."""
    settings = settings or load_settings()
    return publish_catalogue(channel_sender(settings, "outbound"), catalogue=load_catalogue(settings))


@logged_stage
def audit_publish(settings: Settings | None = None) -> dict[str, Any]:
    """Administration zone: send the audit log's newest signed checkpoint, with the
    consistency proof from the one sent before and the new tiles, when it is newer."""
    settings = settings or load_settings()
    return publish_checkpoint(channel_sender(settings, "outbound"),
                              catalogue_version=load_catalogue(settings).version)


@logged_stage
def portal_publish(settings: Settings | None = None) -> dict[str, Any]:
    """Internet zone: verify outbound bundles and write the public status feed (and keep
    the public status page in place); check each audit checkpoint against the last one
    accepted (a fork or a rollback is quarantined with a security alarm) and publish it."""
    from hub.audit import published_log

    settings = settings or load_settings()
    install_status_page(settings.public_root)
    engine = zone_engine(settings, "internet")
    log = published_log(settings, engine)
    report = receive_channel(
        engine,
        channel="outbound",
        transport=transport_for(settings, "outbound"),
        keyring=receiver_keyring(settings, "outbound"),
        decryption_keys=decryption_keys(settings, "outbound"),
        quarantine_dir=settings.internet_quarantine,
        apply=log.apply(with_catalogue(apply_status_bundle(settings.public_root, settings.internet_quarantine),
                                      settings.public_root)),
        inspect=log.inspect,
    )
    return asdict(report)


@logged_stage
def public_store_compact(settings: Settings | None = None) -> dict[str, Any]:
    """Internet zone, nightly: merge the public status store's full tiers of segments."""
    settings = settings or load_settings()
    merges = compact_status_store(settings.public_root, zone_engine(settings, "internet"))
    return {"merges": merges}


def channel_policy(settings: Settings) -> ChannelPolicy:
    return ChannelPolicy(
        heartbeat_after=timedelta(minutes=settings.heartbeat_minutes),
        silence_alarm_after=timedelta(minutes=settings.silence_alarm_minutes),
        retention=timedelta(hours=settings.outbox_retention_hours),
    )


def _upkeep(settings: Settings, sends: str) -> dict[str, Any]:
    policy = channel_policy(settings)
    report = upkeep_sender(
        channel_sender(settings, sends), policy, catalogue_version=load_catalogue(settings).version
    )
    receives = REVERSE[sends]
    silent = check_silence(zone_engine(settings, CHANNEL_SENDER[sends]), receives, policy)
    if silent is not None:
        report.alarms.append(silent)
    return asdict(report)


@logged_stage
def inbound_upkeep(settings: Settings | None = None) -> dict[str, Any]:
    """Internet zone: resend inbound bundles a receipt asks for, prune acknowledged copies,
    send a heartbeat when idle, and raise an alarm when the outbound channel is silent."""
    return _upkeep(settings or load_settings(), "inbound")


@logged_stage
def outbound_upkeep(settings: Settings | None = None) -> dict[str, Any]:
    """Administration zone: the same for the outbound channel (alarm: inbound silent)."""
    return _upkeep(settings or load_settings(), "outbound")
def _catalogue_documents(settings: Settings) -> list[dict[str, Any]]:
    return [dict(item.document) for item in load_catalogue(settings).items.values()]


@logged_stage
def quality_check(
    settings: Settings | None = None, *, suites: tuple[str, ...], day: date | None = None,
    label: str | None = None, bundles: list[str] | None = None,
) -> dict[str, Any]:
    """Administration zone: run the named quality suites over ``day``'s data (today by
    default), or over what ``bundles`` carried (a stage run's own bundles), and the
    reconciliation; a reconciliation mismatch raises (fails the task)."""
    from quality.report import raise_on_mismatch, run_quality

    settings = settings or load_settings()
    day = day or now().date()
    run = run_quality(
        settings.quality_root, zone_engine(settings, "admin"),
        internet=zone_engine(settings, "internet") if settings.loads("internet") else None,
        day=day, suites=suites, catalogue_documents=_catalogue_documents(settings), label=label,
        bundles=bundles,
    )
    raise_on_mismatch(run)
    return run.report()


@logged_stage
def quality_report(settings: Settings | None = None, *, day: date | None = None) -> dict[str, Any]:
    """Administration zone: the daily report, every suite over the day's data."""
    from quality.report import ALL_SUITES

    return quality_check(settings, suites=ALL_SUITES, day=day)


def gate_allows(batch_scope: str, record_kinds: tuple[str, ...] | None = None,
                settings: Settings | None = None) -> bool:
    """Whether the provincial batch of ``batch_scope`` (a day ``YYYY-MM-DD`` or a batch
    name) may be sent: no critical expectation failed for it (``HUB_QUALITY_GATE=off``
    reports only). The province_report DAG calls this before sending a batch."""
    from quality.gate import FEED_KINDS
    from quality.gate import gate_allows as allows

    settings = settings or load_settings()
    return allows(batch_scope, record_kinds or FEED_KINDS, root=settings.quality_root,
                  mode=settings.quality_gate)


@logged_stage
def supervision(settings: Settings | None = None, *, at: datetime | None = None) -> dict[str, Any]:
    """Administration zone: the incremental supervision pass (clocks, alerts, orders); the
    alerts go up in the province feed. A year the calendar lacks raises CALENDAR_GAP."""
    from connectors.supervision import run_pass
    from hub.settings import load_alert_policy
    from rules.calendar import parse_working_hours

    settings = settings or load_settings()
    report = run_pass(
        zone_engine(settings, "admin"), catalogue=load_catalogue(settings),
        policy=load_alert_policy(settings.alert_policy), periods=parse_working_hours(settings.working_hours), at=at,
        disclosure_days=settings.disclosure_days,
    )
    return asdict(report)


@logged_stage
def supervision_reports(settings: Settings | None = None) -> dict[str, Any]:
    """Administration zone: the supervision office's page and this month's statistics so far
    (``$HUB_QUALITY_ROOT/supervision``)."""
    from quality.supervision_report import write_dashboard, write_monthly_statistics

    settings = settings or load_settings()
    engine = zone_engine(settings, "admin")
    out = settings.quality_root / "supervision"
    moment = now()
    departments = load_catalogue(settings).departments()
    page = write_dashboard(engine, out, now=moment)
    files = write_monthly_statistics(engine, out, moment.strftime("%Y-%m"), catalogue_departments=departments)
    return {"dashboard": str(page), "statistics": [str(f) for f in files]}


@logged_stage
def legal_documents(settings: Settings | None = None) -> dict[str, Any]:
    """Administration zone: render the legal documents (受理通知书, 不予受理决定书, 补正告知书)
    of the status changes after the last one handled; refusals become steward findings."""
    from connectors.legal_documents import document_store, render_documents

    settings = settings or load_settings()
    report = render_documents(
        zone_engine(settings, "admin"), store=document_store(settings.admin_root),
        catalogue=load_catalogue(settings),
    )
    return asdict(report)


STAGES = {
    "intake": intake,
    "inbound_receive": inbound_receive,
    "applications_load": applications_load,
    "case_processing": case_processing,
    "status_publish": status_publish,
    "catalogue_publish": catalogue_publish,
    "portal_publish": portal_publish,
    "public_store_compact": public_store_compact,
    "audit_publish": audit_publish,
    "inbound_upkeep": inbound_upkeep,
    "outbound_upkeep": outbound_upkeep,
    "supervision": supervision,
    "supervision_reports": supervision_reports,
    "legal_documents": legal_documents,
}


def compact(report: dict[str, Any], keep: int = 10, whole: tuple[str, ...] = ("bundles",)) -> dict[str, Any]:
    """A report small enough for XCom: long lists become their length and first entries,
    but for the keys in ``whole`` (the bundle refs a later task works on)."""
    result: dict[str, Any] = {}
    for key, value in report.items():
        if isinstance(value, list) and len(value) > keep and key not in whole:
            result[key] = {"count": len(value), "first": value[:keep]}
        else:
            result[key] = value
    return result
