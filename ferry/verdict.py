"""What a receiver does with one verified bundle, decided from facts alone: refuse it (with a
reason code), drop it as a harmless duplicate, or apply it. The receiving connector gathers
the facts (the file name, the manifest, the ledger rows beside its sequence, its receipt)
and carries the verdict out; nothing here reads a file or a database.

The checks come in this order, and the first that fails decides: the file name must be the
manifest's own; a sequence already applied with the same digest is a duplicate, with another
digest a conflict; the bundle must link to its applied neighbours in the digest chain; the
receipt it carries for the reverse channel must be valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import orjson

from ferry.bundle import BundleRejected, VerifiedBundle, bundle_file_name, records_name
from ferry.receipts import RECEIPT_INVALID, RECEIPTS_KIND, REVERSE, Receipt

SEQUENCE_CONFLICT = "SEQUENCE_CONFLICT"  # the same sequence was applied with another digest
CHAIN_BROKEN = "CHAIN_BROKEN"  # previous_digest does not link to the neighbouring bundle
NAME_MISMATCH = "NAME_MISMATCH"  # file name does not match the manifest's channel and sequence
NOT_A_REGULAR_FILE = "NOT_A_REGULAR_FILE"  # a symlink, FIFO or device under a bundle name
SECURITY_CODES = frozenset({SEQUENCE_CONFLICT, CHAIN_BROKEN})  # these raise a security alarm


@dataclass(frozen=True)
class Link:
    """A bundle's place in its channel's digest chain."""

    sequence: int
    digest: str
    previous_digest: str | None


@dataclass(frozen=True)
class Refuse:
    """Quarantine the bundle with this reason."""

    code: str
    detail: str


@dataclass(frozen=True)
class Duplicate:
    """Applied before with the same digest: remove it, apply nothing."""


@dataclass(frozen=True)
class Apply:
    """Apply the bundle (records unless it is a heartbeat) and store its receipt."""

    heartbeat: bool
    receipt: Receipt | None


Verdict = Refuse | Duplicate | Apply


def refusal(rejected: BundleRejected) -> Refuse:
    """The verdict on a bundle its codec refused."""
    return Refuse(rejected.code, rejected.detail)


def read_receipt(bundle: VerifiedBundle) -> Receipt | None:
    """The receipt a bundle carries for the reverse channel, checked; None if it has none.
    Raises ``BundleRejected`` (``RECEIPT_INVALID``) for a malformed one."""
    name = records_name(RECEIPTS_KIND)
    try:
        bundle.item(name)
    except KeyError:
        return None
    lines = list(bundle.iter_records(RECEIPTS_KIND))
    if len(lines) != 1:
        raise BundleRejected(RECEIPT_INVALID, f"{name} must hold exactly one receipt")
    try:
        receipt = Receipt.from_record(orjson.loads(lines[0]))
    except ValueError:
        raise BundleRejected(RECEIPT_INVALID, f"{name} is not JSON") from None
    if receipt.channel != REVERSE[bundle.manifest.channel]:
        raise BundleRejected(RECEIPT_INVALID, f"a {bundle.manifest.channel} bundle reports on "
                             f"{receipt.channel}")
    return receipt


def carried_receipt(bundle: VerifiedBundle) -> Receipt | Refuse | None:
    """``read_receipt`` as a fact for ``judge``: the refusal of a malformed receipt."""
    try:
        return read_receipt(bundle)
    except BundleRejected as rejected:
        return refusal(rejected)


def is_heartbeat(item_names: Sequence[str]) -> bool:
    """A heartbeat carries only the receipt of the reverse channel."""
    return all(name == records_name(RECEIPTS_KIND) for name in item_names)


def chain_break(arrived: Link, applied: Mapping[int, Link]) -> str | None:
    """Why ``arrived`` does not link to the applied bundles beside it, or None if it does."""
    sequence, previous = arrived.sequence, arrived.previous_digest
    if sequence == 1 and previous is not None:
        return "sequence 1 names a previous bundle"
    before, after = applied.get(sequence - 1), applied.get(sequence + 1)
    if before is not None and previous != before.digest:
        return f"previous_digest {previous} is not the digest {before.digest} of #{sequence - 1}"
    if after is not None and after.previous_digest != arrived.digest:
        return f"#{sequence + 1} names previous digest {after.previous_digest}, not {arrived.digest}"
    return None


def judge(
    *,
    name: str,
    channel: str,
    arrived: Link,
    applied: Mapping[int, Link],
    receipt: Receipt | Refuse | None,
    item_names: Sequence[str],
) -> Verdict:
    """The verdict on the verified bundle ``arrived`` found under file ``name`` on
    ``channel``. ``applied``: the ledger's applied bundles of the channel at the sequences
    beside it (and at its own); ``receipt``: the receipt it carries, the refusal of an
    invalid one, or None; ``item_names``: the names of its manifest's items."""
    sequence = arrived.sequence
    ref = f"{channel}#{sequence}"
    if name != bundle_file_name(channel, sequence):
        return Refuse(NAME_MISMATCH, f"file {name} holds {ref}")
    known = applied.get(sequence)
    if known is not None and known.digest == arrived.digest:
        return Duplicate()
    if known is not None:
        return Refuse(
            SEQUENCE_CONFLICT,
            f"sequence {sequence} was applied with digest {known.digest}; "
            f"this bundle has digest {arrived.digest}",
        )
    broken = chain_break(arrived, applied)
    if broken:
        return Refuse(CHAIN_BROKEN, broken)
    if isinstance(receipt, Refuse):
        return receipt
    return Apply(heartbeat=is_heartbeat(item_names), receipt=receipt)
