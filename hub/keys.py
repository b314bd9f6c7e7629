"""``hub keys init``: each zone's signing key, with only the public half handed to the other zone."""

from __future__ import annotations

from ferry.keys import export_public_key, generate_zone_key
from hub.settings import ZONES, Settings

PEER = {"internet": "admin", "admin": "internet"}


def init_keys(settings: Settings) -> dict[str, str]:
    """Create the signing key of every zone this deployment runs (idempotent) and export
    its public key to the peer zone's trusted folder when that folder is reachable here."""
    created = {}
    for zone in ZONES:
        if not settings.loads(zone):
            continue
        created[zone] = generate_zone_key(settings.keys_dir(zone), zone)
        if settings.loads(PEER[zone]):
            export_public_key(settings.keys_dir(zone), zone, settings.keys_dir(PEER[zone]))
    return created
