"""The project's DAG policy in one place: owner, retries, and the mapping of the hub's
error kinds onto Airflow's retry behaviour. Imported by every DAG file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import Asset
from airflow.sdk.definitions.retry_policy import ExceptionRetryPolicy, RetryAction, RetryRule

from hub.settings import load_settings

OWNER = "information-centre"

RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception="schemas.exceptions.TerminalError",
            action=RetryAction.FAIL,
            reason="terminal: retrying cannot help, an operator must act",
        ),
        RetryRule(
            exception="schemas.exceptions.TransientError",
            action=RetryAction.RETRY,
            retry_delay=timedelta(seconds=30),
            reason="transient: try again shortly",
        ),
    ],
)

def notify_alarms(context: Any) -> None:
    """Task callback: tell the deployment's notifier about new alarms (imported here, not
    at DAG parse)."""
    from hub.alarm_notify import after_task

    after_task(context)


def on_celery(executor_setting: str) -> bool:
    """Whether ``[core] executor`` (one name or a comma-separated list) runs tasks on Celery."""
    return any(name.strip().split(".")[-1] == "CeleryExecutor" for name in executor_setting.split(","))


def check_shared_paths(context: Any) -> None:
    """Task pre-execute hook: on the CeleryExecutor a task may land on any worker host, so
    it first checks that every shared folder of the zone is reachable there and carries the
    deployment's marker (``hub.shared_paths``), failing at once (terminal) naming each one
    that is not. Under the LocalExecutor there is one host and nothing to check."""
    from airflow.sdk.configuration import conf

    if not on_celery(conf.get("core", "executor")):
        return
    import os

    from hub.shared_paths import require_reachable

    require_reachable(load_settings(), os.environ)


DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "retry_policy": RETRY_POLICY,
    # On Celery, refuse to run on a host that does not see the zone's shared folders.
    "pre_execute": check_shared_paths,
    # New alarms are notified after every task, whatever its outcome (hub.alarm_notify).
    "on_success_callback": notify_alarms,
    "on_failure_callback": notify_alarms,
}

# Assets connecting the DAGs of the loop (data-aware scheduling).
PORTAL_DROP = Asset("hub://internet/portal-drop")
INBOUND_CHANNEL = Asset("hub://ferry/inbound")
INBOUND_STAGED = Asset("hub://admin/inbound-staged")
EXCHANGE_APPLICATIONS = Asset("hub://admin/exchange-db/applications")
EXCHANGE_STATUS = Asset("hub://admin/exchange-db/status-outbox")
OUTBOUND_CHANNEL = Asset("hub://ferry/outbound")
PUBLIC_FEED = Asset("hub://internet/public-status-feed")
PUBLIC_STORE = Asset("hub://internet/public-status-store")  # its segments, merged nightly
PUBLIC_CATALOGUE = Asset("hub://admin/exchange-db/public-catalogue")
QUALITY_REPORT = Asset("hub://admin/quality-report")


def zone_tags(zone: str, *extra: str) -> list[str]:
    return [f"zone:{zone}", *extra]


def loads(zone: str) -> bool:
    """Whether this deployment (``HUB_ZONE``) loads the DAGs of ``zone``."""
    return load_settings().loads(zone)
PROVINCE_FEED = Asset("hub://province/feed")
PROVINCE_RECEIPTS = Asset("hub://admin/province-receipts")
EXCHANGE_CATALOGUE = Asset("hub://admin/exchange-db/catalogue")
SUPERVISION_ALERTS = Asset("hub://admin/exchange-db/supervision-alerts")
SUPERVISION_REPORTS = Asset("hub://admin/supervision-reports")
LEGAL_DOCUMENTS = Asset("hub://admin/legal-documents")
