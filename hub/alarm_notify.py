"""Telling the information centre about new alarms (告警通知). After every task of the hub's
DAGs (an Airflow task callback, ``hub.airflow_policy.DEFAULT_ARGS``) and on ``hub alarms
notify``, each open alarm not yet notified is logged at ERROR level (for the log monitor)
and, when ``HUB_ALARM_WEBHOOK`` is set, POSTed as JSON to that address (the agency's
messaging or SMS gateway inside its own network). An alarm is marked notified only once
the webhook accepted it; a failed delivery is tried again after the next task."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from connectors.alarms import mark_notified, unnotified
from hub.settings import ZONES, Settings, load_settings
from hub.zones import zone_engine

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10


@dataclass
class NotifyReport:
    notified: list[str] = field(default_factory=list)
    failed: str | None = None


def notify_new_alarms(settings: Settings) -> NotifyReport:
    """Notify every configured zone's open alarms that have not been notified yet."""
    report = NotifyReport()
    for zone in ZONES:
        if not settings.loads(zone):
            continue
        engine = zone_engine(settings, zone)
        fresh = unnotified(engine)
        if not fresh:
            continue
        for alarm in fresh:
            log.error("ALARM %s:%s %s at %s: %s", zone, alarm["id"], alarm["kind"], alarm["at"],
                      json.dumps(alarm["detail"], ensure_ascii=False))
        if settings.alarm_webhook:
            payload = {"zone": zone, "alarms": [{**alarm, "id": f"{zone}:{alarm['id']}"} for alarm in fresh]}
            try:
                _post(settings.alarm_webhook, payload)
            except (OSError, urllib.error.URLError) as error:
                report.failed = f"{settings.alarm_webhook}: {error}"
                log.warning("alarm webhook failed (will try again after the next task): %s", report.failed)
                continue
        mark_notified(engine, [alarm["id"] for alarm in fresh])
        report.notified += [f"{zone}:{alarm['id']}" for alarm in fresh]
    return report


def _post(url: str, payload: dict[str, Any]) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
        if response.status >= 300:
            raise OSError(f"HTTP {response.status}")


def after_task(context: Any) -> None:
    """Airflow task callback (success and failure): notify what the task raised. It never
    fails the task: notifying is the operator's channel, not part of the data path."""
    from hub.shared_paths import SharedPathsUnreachable

    if isinstance(context.get("exception"), SharedPathsUnreachable):
        # This host does not see the zone's shared folders: opening the zone's database here
        # would write beside the share. The refusal itself is in the task's log and state.
        log.error("alarm notification skipped on this host: %s", context["exception"])
        return
    try:
        notify_new_alarms(load_settings())
    except Exception:  # a broken notifier must not turn a good run into a failed one
        log.exception("alarm notification failed")
