"""Deployment settings, read from the environment (never from files in the repository).

One place names every setting; the README's settings table mirrors this module.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.exceptions import TerminalError

if TYPE_CHECKING:
    from rules.alerts import AlertPolicy

ZONES = ("internet", "admin")
ZONE_CHOICES = ("internet", "admin", "both")
QUALITY_GATES = ("critical", "off")
# Where intake reads the portal's submissions: the front database (前置库) and/or the drop folder.
INGRESSES = ("front_db", "drop", "both")
DEFAULT_WORKING_HOURS = "09:00-12:00,13:30-17:30"


class SettingsError(TerminalError, ValueError):
    """A setting has a value the hub cannot run with (terminal: fix the setting)."""


@dataclass(frozen=True)
class Settings:
    """Where each zone keeps its data and which zone's DAGs this deployment loads."""

    zone: str
    data_root: Path
    internet_root: Path
    admin_root: Path
    ferry_root: Path
    exchange_db_url: str
    internet_db_url: str
    catalogue_file: Path | None
    agency_code: str
    simulate: bool
    quality_root: Path
    quality_gate: str
    heartbeat_minutes: float = 15.0
    silence_alarm_minutes: float = 60.0
    outbox_retention_hours: float = 24.0
    alarm_webhook: str | None = None
    crypto_suite: str = "intl"
    working_hours: str = DEFAULT_WORKING_HOURS
    alert_policy: str = "JS-2013A"
    disclosure_days: int = 7
    ingress: str = "both"

    def reads_front_db(self) -> bool:
        """True when intake reads the portal's front database (前置库)."""
        return self.ingress in ("front_db", "both")

    def reads_drop(self) -> bool:
        """True when intake reads the portal's drop folder."""
        return self.ingress in ("drop", "both")

    def loads(self, zone: str) -> bool:
        """True when DAGs of ``zone`` belong to this deployment."""
        if zone not in ZONES:
            raise SettingsError(f"unknown zone {zone!r}; expected one of {ZONES}")
        return self.zone in (zone, "both")

    # Folder layout of the internet zone (外网).
    @property
    def portal_drop(self) -> Path:
        return self.internet_root / "portal" / "drop"

    @property
    def portal_collected(self) -> Path:
        return self.internet_root / "portal" / "collected"

    @property
    def portal_store(self) -> Path:
        """The portal's content-addressed attachment store beside the front database:
        ``<sha256[:2]>/<sha256>``, written by the portal, only read by the hub."""
        return self.internet_root / "portal" / "attachments"

    @property
    def internet_quarantine(self) -> Path:
        return self.internet_root / "quarantine"

    @property
    def public_root(self) -> Path:
        return self.internet_root / "public"

    # Folder layout of the administration zone (内网).
    @property
    def admin_quarantine(self) -> Path:
        return self.admin_root / "quarantine"

    @property
    def attachment_store(self) -> Path:
        return self.admin_root / "attachments"

    def keys_dir(self, zone: str) -> Path:
        return (self.internet_root if zone == "internet" else self.admin_root) / "keys"

    def channel_dir(self, channel: str) -> Path:
        """The local-folder ferry: what a gap appliance's synchronised folder looks like."""
        return self.ferry_root / channel

    def outbox_dir(self, channel: str) -> Path:
        """Sent bundles kept by the sending zone until a receipt covers them."""
        sender = "internet" if channel == "inbound" else "admin"
        return (self.internet_root if sender == "internet" else self.admin_root) / "sent" / channel


def _default_data_root() -> Path:
    airflow_home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(airflow_home) / "hub-data"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Build the settings from ``env`` (default: the process environment)."""
    env = dict(os.environ if env is None else env)
    zone = env.get("HUB_ZONE", "both")
    if zone not in ZONE_CHOICES:
        raise SettingsError(f"HUB_ZONE={zone!r}; expected one of {', '.join(ZONE_CHOICES)}")
    data_root = Path(env.get("HUB_DATA_ROOT") or _default_data_root()).absolute()
    internet_root = Path(env.get("HUB_INTERNET_ROOT") or data_root / "internet").absolute()
    admin_root = Path(env.get("HUB_ADMIN_ROOT") or data_root / "admin").absolute()
    ferry_root = Path(env.get("HUB_FERRY_ROOT") or data_root / "ferry").absolute()
    catalogue = env.get("HUB_CATALOGUE_FILE")
    agency = env.get("HUB_AGENCY_CODE", "3201000001")
    if len(agency) != 10 or not agency.isalnum():
        raise SettingsError(f"HUB_AGENCY_CODE={agency!r}; expected a 10-character agency code")
    ingress = env.get("HUB_INGRESS") or "both"
    if ingress not in INGRESSES:
        raise SettingsError(f"HUB_INGRESS={ingress!r}; expected one of {', '.join(INGRESSES)}")
    quality_gate = env.get("HUB_QUALITY_GATE", "critical")
    if quality_gate not in QUALITY_GATES:
        raise SettingsError(f"HUB_QUALITY_GATE={quality_gate!r}; expected one of {', '.join(QUALITY_GATES)}")
    return Settings(
        zone=zone,
        data_root=data_root,
        internet_root=internet_root,
        admin_root=admin_root,
        ferry_root=ferry_root,
        exchange_db_url=env.get("HUB_EXCHANGE_DB_URL") or f"sqlite:///{admin_root / 'exchange.sqlite'}",
        internet_db_url=env.get("HUB_INTERNET_DB_URL") or f"sqlite:///{internet_root / 'zone.sqlite'}",
        catalogue_file=Path(catalogue).absolute() if catalogue else None,
        agency_code=agency,
        simulate=env.get("HUB_SIMULATE", "0").lower() in ("1", "true", "yes"),
        heartbeat_minutes=_non_negative(env, "HUB_FERRY_HEARTBEAT_MINUTES", 15.0),
        silence_alarm_minutes=_non_negative(env, "HUB_FERRY_SILENCE_ALARM_MINUTES", 60.0),
        outbox_retention_hours=_non_negative(env, "HUB_FERRY_RETENTION_HOURS", 24.0),
        quality_root=Path(env.get("HUB_QUALITY_ROOT") or admin_root / "quality").absolute(),
        quality_gate=quality_gate,
        alarm_webhook=_webhook(env),
        crypto_suite=_suite(env),
        working_hours=_working_hours(env),
        alert_policy=_alert_policy(env),
        disclosure_days=_disclosure_days(env),
        ingress=ingress,
    )


def _disclosure_days(env: dict[str, str]) -> int:
    text = env.get("HUB_DISCLOSURE_DAYS") or "7"
    if not text.isdigit() or not 1 <= int(text) <= 60:
        raise SettingsError(f"HUB_DISCLOSURE_DAYS={text!r}; expected whole working days from 1 to 60")
    return int(text)


def _working_hours(env: dict[str, str]) -> str:
    from rules.calendar import CalendarError, parse_working_hours

    text = env.get("HUB_WORKING_HOURS") or DEFAULT_WORKING_HOURS
    try:
        parse_working_hours(text)
    except CalendarError as error:
        raise SettingsError(f"HUB_WORKING_HOURS: {error}") from None
    return text


def _alert_policy(env: dict[str, str]) -> str:
    """A preset's name (JS-2013A, JS-2013B) or the path of a JSON policy file; checked here
    so a wrong value stops the deployment at once, not the first supervision pass."""
    name = env.get("HUB_ALERT_POLICY") or "JS-2013A"
    load_alert_policy(name)
    return name


def load_alert_policy(name: str) -> AlertPolicy:
    import json

    from rules.alerts import PRESETS, AlertPolicy
    from rules.calendar import CalendarError

    if name in PRESETS:
        return PRESETS[name]
    path = Path(name)
    if not path.is_file():
        raise SettingsError(f"HUB_ALERT_POLICY={name!r}: neither a preset ({', '.join(PRESETS)}) nor a policy file")
    try:
        return AlertPolicy.from_dict(json.loads(path.read_text("utf-8")))
    except (ValueError, TypeError, CalendarError) as error:
        raise SettingsError(f"HUB_ALERT_POLICY={name!r}: {error}") from None


def _suite(env: dict[str, str]) -> str:
    from ferry.suites import SUITES

    name = env.get("HUB_CRYPTO_SUITE") or "intl"
    if name not in SUITES:
        raise SettingsError(f"HUB_CRYPTO_SUITE={name!r}; expected one of {', '.join(sorted(SUITES))}")
    return name


def _webhook(env: dict[str, str]) -> str | None:
    url = env.get("HUB_ALARM_WEBHOOK") or None
    if url is not None and not url.startswith(("http://", "https://")):
        raise SettingsError(f"HUB_ALARM_WEBHOOK={url!r}; expected an http:// or https:// address")
    return url


def _non_negative(env: dict[str, str], name: str, default: float) -> float:
    text = env.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        raise SettingsError(f"{name}={text!r}; expected a number") from None
    if value < 0:
        raise SettingsError(f"{name}={text!r}; expected a number >= 0")
    return value
