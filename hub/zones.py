"""Composition root: turn the settings into each zone's database, keys, transports and catalogue."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from sqlalchemy import Engine

from connectors.db import engine_for
from connectors.migrate import upgrade
from ferry.keys import Keyring, SigningKey, load_keyring, load_signing_key
from ferry.transport import LocalFolderTransport, Transport
from hub.settings import Settings
from rules.catalogue import Catalogue, build_catalogue

CHANNEL_SENDER = {"inbound": "internet", "outbound": "admin"}


def zone_engine(settings: Settings, zone: str) -> Engine:
    url = settings.internet_db_url if zone == "internet" else settings.exchange_db_url
    return _prepared_engine(url, zone)


@cache
def _prepared_engine(url: str, zone: str) -> Engine:
    engine = engine_for(url)
    upgrade(engine, zone)  # Alembic ``upgrade head``; a no-op when already there
    return engine


def transport_for(settings: Settings, channel: str) -> Transport:
    folder = settings.channel_dir(channel)
    folder.mkdir(parents=True, exist_ok=True)
    return LocalFolderTransport(folder)


def signing_key(settings: Settings, channel: str) -> SigningKey:
    zone = CHANNEL_SENDER[channel]
    return load_signing_key(settings.keys_dir(zone), zone)


def receiver_keyring(settings: Settings, channel: str) -> Keyring:
    """The keys the receiving zone trusts for ``channel``: only the sending zone's."""
    receiver = "admin" if channel == "inbound" else "internet"
    trusted = load_keyring(settings.keys_dir(receiver))
    return Keyring({key_id: key for key_id, key in trusted.items() if key.zone == CHANNEL_SENDER[channel]})


def load_catalogue(settings: Settings) -> Catalogue:
    """The deployment's catalogue file, or the embedded sample catalogue."""
    path = settings.catalogue_file or Path(__file__).parent / "defaults" / "catalogue.json"
    return _catalogue_from(path, path.stat().st_mtime_ns)


@cache
def _catalogue_from(path: Path, _mtime: int) -> Catalogue:
    return build_catalogue(json.loads(path.read_text("utf-8")))
