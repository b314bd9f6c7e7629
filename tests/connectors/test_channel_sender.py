"""The one sending protocol: a plan of any kind left unsent by a crash is rebuilt by its
kind's rebuilder and sent before anything new, in sequence order, exactly once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from loopkit import make_loop
from sqlalchemy import Engine, select

from connectors.catalogue_feed import CATALOGUE_PLAN, publish_catalogue
from connectors.channel_sender import BuiltBundle, ChannelSender, Rebuild
from connectors.clock import iso, now
from connectors.db import catalogue_publications, ferry_sent, transaction
from connectors.exchange import publish_status
from connectors.ferry_ledger import DATA, HEARTBEAT, PlannedBundle, plan_next
from ferry.transport import LocalFolderTransport
from hub import stages
from hub.settings import Settings
from hub.zones import load_catalogue, zone_engine
from rules.catalogue import public_catalogue
from schemas.exceptions import TerminalError


class RecordingTransport(LocalFolderTransport):
    """The real folder transport, remembering the order bundles were handed to it."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.put_names: list[str] = []

    def put(self, name: str, source: Path) -> None:
        super().put(name, source)
        self.put_names.append(name)


def _recording(sender: ChannelSender, calls: list[tuple[str, int]]) -> ChannelSender:
    """The sender with every rebuilder wrapped to note (kind, sequence) when it is called."""

    def wrap(kind: str, rebuild: Rebuild) -> Rebuild:
        def recorded(engine: Engine, plan: PlannedBundle) -> BuiltBundle:
            calls.append((kind, plan.sequence))
            return rebuild(engine, plan)

        return recorded

    return replace(sender, rebuilders={kind: wrap(kind, r) for kind, r in sender.rebuilders.items()})


def _plan_crashed(settings: Settings, kind: str) -> PlannedBundle:
    """Plan an outbound bundle of ``kind`` the way its producer does, and send nothing (the
    producer was killed right after its plan committed)."""
    catalogue = load_catalogue(settings)
    at = iso(now())
    with transaction(zone_engine(settings, "admin")) as connection:
        if kind == CATALOGUE_PLAN:
            records = public_catalogue(catalogue)
            plan = plan_next(
                connection, "outbound", created_at=at, catalogue_version=catalogue.version,
                record_count=len(records), kind=CATALOGUE_PLAN,
            )
            connection.execute(
                catalogue_publications.insert().values(
                    sequence=plan.sequence, catalogue_version=catalogue.version, records=records,
                    planned_at=at,
                )
            )
            return plan
        # A status plan over an outbox range with no rows: an empty but real status bundle.
        return plan_next(
            connection, "outbound", created_at=at, catalogue_version=catalogue.version,
            record_count=0, kind=kind,
            first_key=1 if kind == DATA else None, last_key=1 if kind == DATA else None,
        )


def _states(settings: Settings) -> list[tuple[int, str, str]]:
    with zone_engine(settings, "admin").connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                select(ferry_sent.c.sequence, ferry_sent.c.kind, ferry_sent.c.state)
                .where(ferry_sent.c.channel == "outbound")
                .order_by(ferry_sent.c.sequence)
            )
        ]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_loop(tmp_path / "data")


def test_crashed_plans_of_every_kind_go_first_in_sequence_order_once(settings: Settings) -> None:
    for kind in (CATALOGUE_PLAN, HEARTBEAT, DATA):  # three producers killed after planning
        _plan_crashed(settings, kind)
    calls: list[tuple[str, int]] = []
    transport = RecordingTransport(settings.channel_dir("outbound"))
    sender = _recording(replace(stages.channel_sender(settings, "outbound"), transport=transport), calls)

    # New work: the catalogue producer (its version is already planned, so it plans nothing).
    report = publish_catalogue(sender, catalogue=load_catalogue(settings))
    assert report["bundles"] == ["outbound#1"]  # its own kind's resumed bundle
    assert calls == [(CATALOGUE_PLAN, 1), (DATA, 3)]  # the heartbeat needs no rebuilder
    assert transport.put_names == [f"outbound-00000000000{n}.peb" for n in (1, 2, 3)]
    assert _states(settings) == [
        (1, CATALOGUE_PLAN, "sent"), (2, HEARTBEAT, "sent"), (3, DATA, "sent"),
    ]
    # Nothing is resumed twice: a second producer finds nothing pending and sends only its own.
    assert sender.resume() == []
    assert publish_status(sender, catalogue=load_catalogue(settings)).bundles == []
    beat = sender.send_heartbeat(catalogue_version=load_catalogue(settings).version)
    assert beat.plan.sequence == 4
    assert calls == [(CATALOGUE_PLAN, 1), (DATA, 3)]
    assert transport.put_names[3:] == ["outbound-000000000004.peb"]

    # The receiver finds one unbroken chain: every bundle applied, none refused.
    received = stages.portal_publish(settings)
    assert received["applied"] == [f"outbound#{n}" for n in (1, 2, 3, 4)]
    assert received["quarantined"] == []


def test_a_crashed_plan_is_resumed_before_a_producers_own_new_plan(settings: Settings) -> None:
    _plan_crashed(settings, HEARTBEAT)
    transport = RecordingTransport(settings.channel_dir("outbound"))
    sender = replace(stages.channel_sender(settings, "outbound"), transport=transport)
    report = publish_catalogue(sender, catalogue=load_catalogue(settings))
    assert report["bundles"] == ["outbound#2"]  # the heartbeat is not the catalogue's to report
    assert transport.put_names == ["outbound-000000000001.peb", "outbound-000000000002.peb"]
    assert _states(settings) == [(1, HEARTBEAT, "sent"), (2, CATALOGUE_PLAN, "sent")]
    assert stages.portal_publish(settings)["applied"] == ["outbound#1", "outbound#2"]


def test_upkeep_resumes_a_crashed_data_plan_instead_of_sending_a_heartbeat_past_it(
    settings: Settings,
) -> None:
    _plan_crashed(settings, DATA)
    report = stages.outbound_upkeep(settings)
    assert report["heartbeat"] is None  # the resumed bundle just left: no heartbeat due
    assert _states(settings) == [(1, DATA, "sent")]
    assert stages.portal_publish(settings)["applied"] == ["outbound#1"]


def test_a_plan_nobody_can_rebuild_stops_the_channel(settings: Settings) -> None:
    _plan_crashed(settings, CATALOGUE_PLAN)
    sender = replace(stages.channel_sender(settings, "outbound"), rebuilders={})
    with pytest.raises(TerminalError, match="outbound#1 is planned as 'catalogue'"):
        sender.send_heartbeat(catalogue_version=load_catalogue(settings).version)
    assert _states(settings) == [(1, CATALOGUE_PLAN, "planned")]  # no heartbeat jumped it
    assert list(settings.channel_dir("outbound").glob("*.peb")) == []
