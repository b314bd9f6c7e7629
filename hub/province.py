"""Stages of the provincial feed (administration zone), each taking the settings and
returning a small JSON-able report; the ``province_report`` and ``catalogue_sync`` DAGs
and ``hub run`` call these.

A layer above ``hub.stages`` (it re-publishes the catalogue with its stage); ``hub.stages``
never imports this module: ``STAGES`` here adds the province's stages to its registry."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from connectors.audit import Witness
from connectors.db import province_batches
from connectors.province_catalogue import (
    apply_province_catalogue,
    pending_files,
    pull_catalogue_files,
    send_receipts,
)
from connectors.province_feed import (
    FeedPaths,
    build_batch,
    check_lag,
    exchange,
    feed_status,
    plan_batches,
    scan_changes,
)
from connectors.province_sftp import DEFAULT_CONN_ID, SftpSettings, province_session
from hub import stages
from hub.settings import Settings, load_settings
from hub.stages import catalogue_publish, logged_stage
from hub.zones import signing_key, zone_engine


def feed_paths(settings: Settings) -> FeedPaths:
    """``<admin root>/province/``: built batches, receipts, the steward report."""
    return FeedPaths(settings.admin_root / "province")


def catalogue_inbox(settings: Settings) -> Path:
    return settings.admin_root / "province" / "catalogue"


def sftp_settings() -> SftpSettings:
    """The province's SFTP connection (``HUB_PROVINCE_CONN_ID``, default ``province_sftp``)."""
    return SftpSettings.from_connection(os.environ.get("HUB_PROVINCE_CONN_ID") or DEFAULT_CONN_ID)


@logged_stage
def province_plan(settings: Settings | None = None, *, at: datetime | None = None) -> dict[str, Any]:
    """Queue changed rows, put them into signed batches in the local outbox, and raise the
    lag alarm when the oldest undelivered change is older than 20 hours. No network."""
    settings = settings or load_settings()
    engine = zone_engine(settings, "admin")
    marked = scan_changes(engine, at=at)
    planned = plan_batches(engine, agency_code=settings.agency_code, at=at)
    paths = feed_paths(settings)
    key = signing_key(settings, "outbound")  # the administration zone's key
    with engine.connect() as connection:
        unbuilt = connection.execute(
            select(province_batches.c.batch_id).where(province_batches.c.state == "planned").order_by(province_batches.c.sequence)
        ).scalars().all()
    for batch_id in unbuilt:
        build_batch(engine, batch_id, paths=paths, key=key, agency_code=settings.agency_code)
    return {"marked": marked, "planned": planned, "lag_alarm": check_lag(engine, at=at)}


@logged_stage
def province_exchange(
    settings: Settings | None = None, *, sftp: SftpSettings | None = None, at: datetime | None = None,
) -> dict[str, Any]:
    """Upload planned batches in order, ingest the province's receipts, rewrite the steward
    report. Raises ``ProvinceUnreachable`` (retry) or ``ProvinceRefused`` (operator)."""
    settings = settings or load_settings()
    sftp = sftp or sftp_settings()
    report = exchange(
        zone_engine(settings, "admin"), sftp, paths=feed_paths(settings), at=at,
        gate=quality_gate(settings), witness=province_witness(settings, sftp),
    )
    return asdict(report)


def province_witness(settings: Settings, sftp: SftpSettings) -> Witness | None:
    """The province as the audit log's witness: its pinned ``witness_key`` and the keys of
    the administration zone's log; None when no witness key is pinned."""
    from ferry.tlog import parse_verifier_key
    from hub.audit import zone_verifiers

    if not sftp.witness_key:
        return None
    return Witness(tuple(zone_verifiers(settings, "admin")), parse_verifier_key(sftp.witness_key))


def quality_gate(settings: Settings) -> Callable[[str], str | None]:
    """The provincial gate of the data-quality checks (``quality.report.check_provincial_batch``):
    before a batch goes up its files are checked against its manifest, and the batch is
    held when that check, or the day's quality report, failed a critical expectation for a
    record kind the batch carries (``HUB_QUALITY_GATE=off``: report only)."""

    def check(batch_id: str) -> str | None:
        from quality.report import check_provincial_batch

        return check_provincial_batch(
            settings.quality_root, zone_engine(settings, "admin"), feed_paths(settings).batch_dir(batch_id),
            mode=settings.quality_gate,
        )

    return check


@logged_stage
def province_report(settings: Settings | None = None, *, sftp: SftpSettings | None = None, at: datetime | None = None) -> dict[str, Any]:
    """Both steps of the hourly report."""
    settings = settings or load_settings()
    planned = province_plan(settings, at=at)
    return {**planned, **province_exchange(settings, sftp=sftp, at=at)}


@logged_stage
def catalogue_sync(settings: Settings | None = None, *, sftp: SftpSettings | None = None) -> dict[str, Any]:
    """Pull the province's approved catalogue files, apply them with the catalogue import,
    and re-publish the public catalogue when anything was applied."""
    settings = settings or load_settings()
    engine = zone_engine(settings, "admin")
    inbox = catalogue_inbox(settings)
    connection = sftp or sftp_settings()
    with province_session(connection) as session:
        pulled = pull_catalogue_files(engine, session, inbox, pinned_key=connection.catalogue_key)
        files = pending_files(engine)
        applied = apply_province_catalogue(engine, files) if files else []
        receipts = send_receipts(engine, session)
    report: dict[str, Any] = {"pulled": pulled.pulled, "skipped": pulled.skipped, "applied": applied,
                              "receipts": receipts}
    if any(a["state"] == "applied" and a.get("applied") for a in applied):
        report["republished"] = catalogue_publish(settings)
    return report


def status(settings: Settings | None = None) -> dict[str, Any]:
    settings = settings or load_settings()
    found = feed_status(zone_engine(settings, "admin"))
    found["steward_report"] = str(feed_paths(settings).steward_report)
    return found


# Every stage ``hub run`` knows: the loop's (``hub.stages``) and the province's.
STAGES: dict[str, Callable[..., dict[str, Any]]] = {
    **stages.STAGES, "province_report": province_report, "catalogue_sync": catalogue_sync,
}
