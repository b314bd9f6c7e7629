"""Composition root: turn the settings into each zone's database, keys, transports and catalogue."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from sqlalchemy import Engine

from connectors.db import engine_for
from ferry.keys import (
    DecryptionKey,
    Keyring,
    RecipientKey,
    SigningKey,
    load_decryption_keys,
    load_keyring,
    load_recipient_key,
    load_signing_key,
)
from ferry.transport import LocalFolderTransport, Transport
from hub.settings import Settings
from rules.catalogue import Catalogue, build_catalogue

CHANNEL_SENDER = {"inbound": "internet", "outbound": "admin"}
CHANNEL_RECEIVER = {"inbound": "admin", "outbound": "internet"}


def zone_url(settings: Settings, zone: str) -> str:
    return settings.internet_db_url if zone == "internet" else settings.exchange_db_url


def zone_engine(settings: Settings, zone: str) -> Engine:
    return _prepared_engine(zone_url(settings, zone), zone, settings.crypto_suite)


def zone_reader(settings: Settings, zone: str) -> Engine:
    """The zone's database for a command that only reads it (``hub trace``): neither migrated
    nor written to, so the answer does not wait for Alembic or for a write lock."""
    return engine_for(zone_url(settings, zone))


@cache
def _prepared_engine(url: str, zone: str, suite: str = "intl") -> Engine:
    # Here, not at the top: Alembic is needed only by the commands that open a zone to write.
    from connectors.audit import start_log
    from connectors.migrate import ZONE_TABLES, upgrade

    engine = engine_for(url)
    upgrade(engine, zone)  # Alembic ``upgrade head``; a no-op when already there
    # A log with no leaf yet takes the deployment's suite as its tree hash (it keeps it) and
    # notes which rows of the audited tables predate it.
    start_log(engine, suite, ZONE_TABLES[zone])
    return engine


def transport_for(settings: Settings, channel: str) -> Transport:
    """SFTP when an ``AIRFLOW_CONN_HUB_FERRY_<CHANNEL>`` connection is set, else the local folder."""
    uri = os.environ.get(f"AIRFLOW_CONN_HUB_FERRY_{channel.upper()}")
    if uri:
        from ferry.sftp import SftpConfig, SftpTransport  # paramiko only when used

        return SftpTransport(SftpConfig.from_uri(uri))
    folder = settings.channel_dir(channel)
    folder.mkdir(parents=True, exist_ok=True)
    return LocalFolderTransport(folder)


def signing_key(settings: Settings, channel: str) -> SigningKey:
    zone = CHANNEL_SENDER[channel]
    return load_signing_key(settings.keys_dir(zone), zone)


def recipient_key(settings: Settings, channel: str) -> RecipientKey:
    """The receiving zone's current public encryption key, as the sending zone trusts it."""
    sender, receiver = CHANNEL_SENDER[channel], CHANNEL_RECEIVER[channel]
    return load_recipient_key(settings.keys_dir(sender), receiver)


def decryption_keys(settings: Settings, channel: str) -> dict[str, DecryptionKey]:
    """The receiving zone's private encryption keys (current and not yet expired)."""
    receiver = CHANNEL_RECEIVER[channel]
    return load_decryption_keys(settings.keys_dir(receiver), receiver)


def receiver_keyring(settings: Settings, channel: str) -> Keyring:
    """The keys the receiving zone trusts for ``channel``: only the sending zone's."""
    receiver = "admin" if channel == "inbound" else "internet"
    trusted = load_keyring(settings.keys_dir(receiver))
    return Keyring({key_id: key for key_id, key in trusted.items() if key.zone == CHANNEL_SENDER[channel]})


def load_catalogue(settings: Settings) -> Catalogue:
    """The catalogue imported into the exchange database (administration zone), else the
    deployment's catalogue file, else the embedded sample catalogue."""
    if settings.loads("admin"):
        from connectors.catalogue_store import store_mark

        engine = zone_engine(settings, "admin")
        mark = store_mark(engine)
        if mark[0]:
            return _stored_catalogue(engine, mark)
    path = settings.catalogue_file or Path(__file__).parent / "defaults" / "catalogue.json"
    return _catalogue_from(path, path.stat().st_mtime_ns)


@cache
def _catalogue_from(path: Path, _mtime: int) -> Catalogue:
    return build_catalogue(json.loads(path.read_text("utf-8")))


@cache
def _stored_catalogue(engine: Engine, _mark: tuple[int, str | None]) -> Catalogue:
    from connectors.catalogue_store import stored_catalogue

    catalogue = stored_catalogue(engine)
    assert catalogue is not None
    return catalogue
