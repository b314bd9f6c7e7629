"""``hub keys init`` and ``hub keys rotate``: each zone's signing and encryption keys, with only
the public halves handed to the other zone."""

from __future__ import annotations

import getpass
from datetime import timedelta

from connectors.clock import iso, now
from connectors.db import transaction
from connectors.provenance import record_events
from ferry.keys import export_public_key, generate_zone_key, rotate_zone_keys
from hub.audit import checkpoint_zones
from hub.settings import ZONES, Settings
from hub.zones import zone_engine

PEER = {"internet": "admin", "admin": "internet"}
DEFAULT_OVERLAP_DAYS = 7


def operator() -> str:
    """Who runs this command (the operator recorded with an action)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def init_keys(settings: Settings, suite: str | None = None) -> dict[str, str]:
    """Create the signing and encryption keys of every zone this deployment runs, of
    ``suite`` (default: the ``HUB_CRYPTO_SUITE`` setting), idempotently: a zone that has
    keys keeps them (move it to another suite with ``rotate_keys(..., suite=...)``). Export
    the public keys to the peer zone's trusted folder when it is reachable here."""
    created = {}
    for zone in ZONES:
        if not settings.loads(zone):
            continue
        created[zone] = generate_zone_key(settings.keys_dir(zone), zone, suite or settings.crypto_suite)
        if settings.loads(PEER[zone]):
            export_public_key(settings.keys_dir(zone), zone, settings.keys_dir(PEER[zone]))
    return created


def rotate_keys(
    settings: Settings, zone: str, overlap_days: int = DEFAULT_OVERLAP_DAYS, suite: str | None = None
) -> tuple[str, str]:
    """Replace ``zone``'s keys; the previous ones stay valid for ``overlap_days``.

    Returns the new (signing, encryption) key ids. The public files (new ones, and the old
    ones with their expiry) go to the peer's trusted folder when it is reachable here;
    otherwise the operator carries ``keys/public/`` across.
    """
    if zone not in PEER:
        raise ValueError(f"unknown zone {zone!r}; zones: {', '.join(PEER)}")
    if settings.loads(zone):
        checkpoint_zones(settings)  # what the old key has seen, it signs before it retires
    ids = rotate_zone_keys(
        settings.keys_dir(zone), zone, overlap=timedelta(days=overlap_days), at=now(), suite=suite
    )
    if settings.loads(PEER[zone]):
        export_public_key(settings.keys_dir(zone), zone, settings.keys_dir(PEER[zone]))
    if settings.loads(zone):
        # The rotation is an operator action: a provenance event in the zone's audit trail.
        with transaction(zone_engine(settings, zone)) as connection:
            record_events(connection, [(f"keys:{zone}", "keys", "rotated", None, {
                "signing_key": ids[0], "encryption_key": ids[1], "overlap_days": overlap_days,
                "operator": operator()})], iso(now()))
    return ids
