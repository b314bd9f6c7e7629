"""Helpers for the ferry fault-injection tests: two zones with their own databases and
keys on one machine, the local-folder ferry between them, and the exact-set checks."""

from __future__ import annotations

from collections import Counter
from datetime import date
from pathlib import Path

from sqlalchemy import select

from connectors.db import alarms, ferry_applied, inbound_records, intake_claims, quarantine
from hub.keys import init_keys
from hub.settings import Settings, load_settings
from hub.simulators.applicants import generate_batch
from hub.zones import load_catalogue, zone_engine

DAY = date(2026, 3, 2)


def make_loop(root: Path, **env: str) -> Settings:
    """Settings for a fresh pair of zones under ``root`` (both zones on this machine)."""
    settings = load_settings({"HUB_DATA_ROOT": str(root), "HUB_ZONE": "both", **env})
    init_keys(settings)
    return settings


def submit(settings: Settings, count: int, first_serial: int, seed: int = 5) -> set[str]:
    """Drop a seeded batch into the portal; returns its NET_IDs."""
    catalogue = load_catalogue(settings)
    truth = generate_batch(
        settings.portal_drop, count, seed, [dict(i.document) for i in catalogue.items.values()],
        settings.agency_code, DAY, first_serial=first_serial,
    )
    return set(truth)


def carried(settings: Settings) -> set[str]:
    """NET_IDs that intake put into inbound bundles (the set that must arrive exactly once)."""
    with zone_engine(settings, "internet").connect() as connection:
        return set(connection.execute(select(intake_claims.c.net_id)).scalars())


def carried_in(settings: Settings, sequence: int) -> set[str]:
    with zone_engine(settings, "internet").connect() as connection:
        return set(
            connection.execute(
                select(intake_claims.c.net_id).where(intake_claims.c.sequence == sequence)
            ).scalars()
        )


def applied_records(settings: Settings) -> Counter[str]:
    """How often each NET_ID was staged in the exchange database."""
    with zone_engine(settings, "admin").connect() as connection:
        return Counter(connection.execute(select(inbound_records.c.net_id)).scalars())


def assert_exactly(settings: Settings, expected: set[str]) -> None:
    """Every expected record applied once, nothing else, nothing twice."""
    found = applied_records(settings)
    twice = {n for n, k in found.items() if k > 1}
    assert not twice, f"applied more than once: {sorted(twice)[:5]}"
    assert set(found) == expected, (
        f"lost {sorted(expected - set(found))[:5]}, unexpected {sorted(set(found) - expected)[:5]}"
    )


def applied_sequences(settings: Settings, channel: str = "inbound") -> dict[int, str]:
    zone = "admin" if channel == "inbound" else "internet"
    with zone_engine(settings, zone).connect() as connection:
        return dict(
            connection.execute(
                select(ferry_applied.c.sequence, ferry_applied.c.digest).where(
                    ferry_applied.c.channel == channel
                )
            ).all()
        )


def quarantined(settings: Settings, zone: str = "admin") -> list[tuple[str, str, str]]:
    with zone_engine(settings, zone).connect() as connection:
        return [
            tuple(r)
            for r in connection.execute(
                select(quarantine.c.ref, quarantine.c.code, quarantine.c.state)
                .where(quarantine.c.kind == "bundle")
                .order_by(quarantine.c.id)
            )
        ]


def alarm_kinds(settings: Settings, zone: str = "admin") -> list[str]:
    with zone_engine(settings, zone).connect() as connection:
        return list(connection.execute(select(alarms.c.kind).order_by(alarms.c.id)).scalars())


def ferry_file(settings: Settings, channel: str, sequence: int) -> Path:
    return settings.channel_dir(channel) / f"{channel}-{sequence:012d}.peb"


def outbox_file(settings: Settings, channel: str, sequence: int) -> Path:
    return settings.outbox_dir(channel) / f"{channel}-{sequence:012d}.peb"


def deliver(path: Path, data: bytes) -> None:
    """What the gap delivers under ``path``: a new file with ``data`` (written beside it and
    renamed, as a transport does), never a rewrite of the sender's file in place, which
    may be the sender's outbox copy itself (LocalFolderTransport.put links it)."""
    scratch = path.with_name(path.name + ".delivering")
    scratch.write_bytes(data)
    scratch.replace(path)
