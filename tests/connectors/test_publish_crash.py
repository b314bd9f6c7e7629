"""A crash between handing an outbound bundle to the ferry and recording it neither loses
nor repeats a status change: in-process (an exception) and for real (SIGKILL)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from exchange_kit import carry_to_processing
from sqlalchemy import select

from connectors.channel_sender import ChannelSender
from connectors.db import ferry_sent, publish_held, publish_withheld, status_outbox
from connectors.exchange import publish_status
from connectors.public_feed import disclosure_pages
from connectors.status_store import opened, published_events
from ferry.transport import LocalFolderTransport
from hub import stages
from hub.zones import load_catalogue, zone_engine


class CrashAfterPut(LocalFolderTransport):
    """The real folder transport, failing right after the bundle is complete on the ferry
    (before the sender can mark it sent)."""

    def put(self, name: str, source: Path) -> None:
        super().put(name, source)
        raise RuntimeError("crash after put")


def _sender(settings: Any, transport: LocalFolderTransport) -> ChannelSender:
    return replace(stages.channel_sender(settings, "outbound"), transport=transport)


def _prepare(settings: Any, count: int = 30, seed: int = 3) -> None:
    carry_to_processing(settings, count, seed)


def _published_event_ids(public_root: Path) -> Counter[int]:
    return Counter(event_id for _, event_id in published_events(public_root))


def _assert_each_change_published_once(settings: Any) -> None:
    with zone_engine(settings, "admin").connect() as connection:
        changes = set(connection.execute(select(status_outbox.c.event_id)).scalars())
        held = set(connection.execute(select(publish_held.c.event_id)).scalars())
        withheld = set(connection.execute(select(publish_withheld.c.event_id)).scalars())
        states = set(connection.execute(select(ferry_sent.c.state)).scalars())
    published = _published_event_ids(settings.public_root)
    assert states == {"sent"}
    assert set(published.values()) == {1}
    assert set(published) == changes - held - withheld
    assert withheld  # the generator's minors are among them
    from hub.demo import summary

    counts = summary()
    assert counts["balanced"], counts["checks"]


def test_an_exception_after_the_put_is_repaired_by_the_next_run(hub_settings: Any) -> None:
    _prepare(hub_settings)
    transport = CrashAfterPut(hub_settings.channel_dir("outbound"))
    with pytest.raises(RuntimeError, match="crash after put"):
        publish_status(_sender(hub_settings, transport), catalogue=load_catalogue(hub_settings))
    # The bundle reached the internet zone before the crash and is applied there.
    assert stages.portal_publish(hub_settings)["applied"] == ["outbound#1"]
    report = stages.status_publish(hub_settings)
    assert report["bundles"] == ["outbound#1"]  # rebuilt byte for byte, not planned again
    assert stages.portal_publish(hub_settings)["duplicates"] == ["outbound#1"]
    # Later changes continue after the acknowledged id.
    _prepare(hub_settings, count=12, seed=4)
    stages.status_publish(hub_settings)
    stages.portal_publish(hub_settings)
    _assert_each_change_published_once(hub_settings)


CHILD = """
import os, signal, sys
from pathlib import Path
from ferry.transport import LocalFolderTransport
from dataclasses import replace
from connectors.exchange import publish_status
from hub.settings import load_settings
from hub.stages import channel_sender
from hub.zones import load_catalogue

class KilledAfterPut(LocalFolderTransport):
    def put(self, name, source):
        super().put(name, source)
        os.kill(os.getpid(), signal.SIGKILL)

settings = load_settings()
sender = replace(channel_sender(settings, "outbound"), transport=KilledAfterPut(settings.channel_dir("outbound")))
publish_status(sender, catalogue=load_catalogue(settings))
sys.exit(3)  # never reached
"""


def test_a_sigkill_after_the_put_is_repaired_by_the_next_run(hub_settings: Any) -> None:
    _prepare(hub_settings)
    root = Path(__file__).parents[2]
    child = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=root, env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    with zone_engine(hub_settings, "admin").connect() as connection:
        assert connection.execute(select(ferry_sent.c.state)).scalars().all() == ["planned"]
    stages.status_publish(hub_settings)
    stages.portal_publish(hub_settings)
    stages.status_publish(hub_settings)  # nothing new: no second bundle
    stages.portal_publish(hub_settings)
    _assert_each_change_published_once(hub_settings)


def test_a_case_marked_secret_later_is_taken_down_and_never_published_again(hub_settings: Any) -> None:
    from sqlalchemy import insert, update

    from connectors.db import cases, query_passwords
    from hub.demo import summary

    _prepare(hub_settings)
    stages.status_publish(hub_settings)
    stages.portal_publish(hub_settings)
    engine = zone_engine(hub_settings, "admin")
    with engine.connect() as connection:
        withheld = set(connection.execute(select(publish_withheld.c.net_id)).scalars())
        disclosed_ids = {
            r["record_id"]
            for path in disclosure_pages(hub_settings.public_root)
            for r in json.loads(path.read_text("utf-8"))["records"]
        }
        disclosed = set(connection.execute(
            select(status_outbox.c.net_id).where(status_outbox.c.event_id.in_(disclosed_ids))
        ).scalars())
        case = next(
            row for row in connection.execute(
                select(cases.c.net_id, cases.c.case_number, query_passwords.c.lookup)
                .join(query_passwords, query_passwords.c.net_id == cases.c.net_id)
                .order_by(cases.c.case_number)
            )
            if row.net_id not in withheld and row.net_id in disclosed
        )
    with opened(hub_settings.public_root, readonly=True) as store:
        assert store is not None
        published_ids = {e["event_id"] for e in store.sealed(case.lookup)["events"]}  # type: ignore[index]
    assert published_ids & disclosed_ids  # its result is in a 双公示 list
    # The case-processing system marks the case secret with its next change.
    with engine.begin() as connection:
        connection.execute(update(cases).where(cases.c.case_number == case.case_number).values(secret=True))
        connection.execute(insert(status_outbox).values(
            net_id=case.net_id, case_number=case.case_number, status="in_progress",
            at="2026-11-20T10:00:00+08:00", step="审查", opinion="涉及国家秘密，转入保密程序"))
    assert stages.status_publish(hub_settings)["withheld"] == 1
    stages.portal_publish(hub_settings)
    with opened(hub_settings.public_root, readonly=True) as store:
        assert store is not None and store.sealed(case.lookup) is None
    for path in (p for p in hub_settings.public_root.rglob("*") if p.is_file()):
        text = path.read_text("utf-8")
        assert case.net_id not in text and case.case_number not in text, path
    for path in disclosure_pages(hub_settings.public_root):
        records = json.loads(path.read_text("utf-8"))["records"]
        assert not {r["record_id"] for r in records} & published_ids, path
    with engine.connect() as connection:
        reasons = connection.execute(
            select(publish_withheld.c.reason).where(publish_withheld.c.net_id == case.net_id)
        ).scalars().all()
    assert reasons == ["secret"]
    counts = summary()
    assert counts["balanced"], counts["checks"]
    assert counts["status_changes_retracted"] > 0


def test_a_change_without_its_sealing_key_fails_before_its_bundle_is_planned(hub_settings: Any) -> None:
    """A published change whose document has no key (its query password row gone) cannot be
    sealed: the run fails before anything is planned or recorded, so no plan waits for a
    bundle that can never be built; with the key back, everything goes out once."""
    from sqlalchemy import delete, insert

    from connectors.db import query_passwords
    from schemas.exceptions import TerminalError

    _prepare(hub_settings)
    engine = zone_engine(hub_settings, "admin")
    with engine.begin() as connection:
        lost = connection.execute(select(query_passwords).limit(1)).one()._asdict()
        connection.execute(delete(query_passwords).where(query_passwords.c.net_id == lost["net_id"]))
    sender = stages.channel_sender(hub_settings, "outbound")
    with pytest.raises(TerminalError, match=f"no sealing key for the status document of {lost['net_id']}"):
        publish_status(sender, catalogue=load_catalogue(hub_settings))
    with engine.connect() as connection:
        assert connection.execute(select(ferry_sent)).all() == []
        assert connection.execute(select(publish_withheld)).all() == []
    with engine.begin() as connection:
        connection.execute(insert(query_passwords), [lost])
    publish_status(sender, catalogue=load_catalogue(hub_settings))
    stages.portal_publish(hub_settings)
    _assert_each_change_published_once(hub_settings)
