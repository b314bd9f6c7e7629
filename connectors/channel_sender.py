"""The one sending protocol of a ferry channel, for both zones: a bundle is planned in the
sending zone's database, built from its plan and sent; a plan left unsent by a crash is
rebuilt, byte-identical, by the rebuilder registered for its kind, and every such plan is
sent, in sequence order, before anything new is planned (the digest chain links each bundle
to the one before it, so none may be built before its predecessor is sent).

Producers (intake, status publishing, the public catalogue, heartbeats) only plan and build
items; the ``ChannelSender`` owns the order and the resuming.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from connectors.clock import iso, now
from connectors.db import transaction
from connectors.ferry_ledger import (
    HEARTBEAT,
    PlannedBundle,
    plan_next,
    planned_unsent,
    send_planned,
)
from ferry.bundle import ItemSource
from ferry.keys import RecipientKey, SigningKey
from ferry.transport import Transport
from schemas.exceptions import TerminalError


@dataclass(frozen=True)
class BuiltBundle:
    """What a planned bundle carries (built from its plan alone, so a rebuild gives the
    same bytes), and what its producer records once it has been sent."""

    items: Iterable[ItemSource]
    counts: Mapping[str, int]
    after_send: Callable[[], None] | None = None


@dataclass(frozen=True)
class SentBundle:
    """A bundle handed to the transport and marked sent."""

    plan: PlannedBundle
    counts: Mapping[str, int]
    digest: str


# Builds the bundle of a plan of one kind again from what the plan fixed in the database.
Rebuild = Callable[[Engine, PlannedBundle], BuiltBundle]


def rebuild_heartbeat(engine: Engine, plan: PlannedBundle) -> BuiltBundle:
    """A heartbeat carries nothing but the receipt its plan fixed."""
    return BuiltBundle(items=[], counts={})


@dataclass(frozen=True)
class ChannelSender:
    """What a zone needs to send on one channel, and one rebuilder per plan kind it may
    find unsent (heartbeats are always known)."""

    engine: Engine
    channel: str
    key: SigningKey
    recipient: RecipientKey
    outbox: Path
    transport: Transport
    rebuilders: Mapping[str, Rebuild] = field(default_factory=dict)

    def send(self, plan: PlannedBundle, built: BuiltBundle) -> SentBundle:
        """Build ``plan``'s bundle into the outbox, hand it to the transport, mark it sent,
        then let its producer record what it carried."""
        digest = send_planned(
            self.engine, plan, items=built.items, counts=dict(built.counts), key=self.key,
            recipient=self.recipient, outbox=self.outbox, transport=self.transport,
        )
        if built.after_send is not None:
            built.after_send()
        return SentBundle(plan, built.counts, digest)

    def resume(self) -> list[SentBundle]:
        """Send every bundle planned but not sent (left by a crash), in sequence order, each
        rebuilt by its kind's rebuilder. Producers call this before planning anything new.
        A plan of a kind nobody can rebuild stops the channel: no later bundle may go first."""
        with self.engine.connect() as connection:
            plans = planned_unsent(connection, self.channel)
        sent = []
        for plan in plans:
            rebuild = rebuild_heartbeat if plan.kind == HEARTBEAT else self.rebuilders.get(plan.kind)
            if rebuild is None:
                raise TerminalError(
                    f"{plan.ref} is planned as {plan.kind!r} but this sender has no rebuilder "
                    f"for that kind; it must be sent before anything else on {self.channel}"
                )
            sent.append(self.send(plan, rebuild(self.engine, plan)))
        return sent

    def send_heartbeat(self, *, catalogue_version: str) -> SentBundle:
        """A bundle carrying only the receipt of the reverse channel, after whatever a
        crash left planned."""
        self.resume()
        with transaction(self.engine) as connection:
            plan = plan_next(
                connection, self.channel, created_at=iso(now()),
                catalogue_version=catalogue_version, record_count=0, kind=HEARTBEAT,
            )
        return self.send(plan, rebuild_heartbeat(self.engine, plan))


def resumed_of(sent: Iterable[SentBundle], kind: str) -> list[SentBundle]:
    """The resumed bundles of one plan kind (what a producer reports as its own)."""
    return [bundle for bundle in sent if bundle.plan.kind == kind]
