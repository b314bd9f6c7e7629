"""Run one ferry stage in a child process and SIGKILL it at a chosen step boundary.

Usage: python crash_child.py DATA_ROOT POINT. The real stage runs with the real
components; only a wrapper around one of them kills the process at the boundary."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillingTransport:
    """The real transport; dies before or after one of its operations."""

    def __init__(self, inner: Any, before: str = "", after: str = "") -> None:
        self.inner, self.before, self.after = inner, before, after

    def __getattr__(self, name: str) -> Any:
        real = getattr(self.inner, name)

        def call(*args: Any) -> Any:
            if name == self.before:
                die()
            result = real(*args)
            if name == self.after:
                die()
            return result

        return call


def main(data_root: Path, point: str) -> None:
    from connectors import channel_sender
    from connectors.exchange import apply_inbound, stage_attachments
    from connectors.ferry_ledger import receive_channel
    from hub import stages, zones
    from hub.settings import load_settings

    settings = load_settings({
        "HUB_DATA_ROOT": str(data_root), "HUB_ZONE": "both", "HUB_INGRESS": os.environ.get("HUB_INGRESS", "both"),
    })
    if point == "front_in_transaction":
        from connectors import front_db

        real_mark = front_db._mark_carried

        def mark_carried(*args: Any, **kwargs: Any) -> None:
            real_mark(*args, **kwargs)
            die()  # rows marked and the plan inserted, the transaction not committed

        front_db._mark_carried = mark_carried  # type: ignore[assignment]
        stages.intake(settings)
        return
    if point.startswith("send_"):
        real_transport = zones.transport_for
        if point == "send_after_plan":
            real_send = channel_sender.send_planned

            def send_planned(*args: Any, **kwargs: Any) -> Any:
                die()
                return real_send(*args, **kwargs)

            channel_sender.send_planned = send_planned  # type: ignore[assignment]
        elif point == "send_after_build":
            stages.transport_for = lambda s, c: KillingTransport(real_transport(s, c), before="put")  # type: ignore[assignment]
        elif point == "send_after_put":
            stages.transport_for = lambda s, c: KillingTransport(real_transport(s, c), after="put")  # type: ignore[assignment]
        stages.intake(settings)
        return
    stage_real = stage_attachments(settings.attachment_store)

    class KillingStaging:
        """The real attachment staging; dies while staging or around its commit."""

        def __init__(self) -> None:
            self.inner = stage_real()

        def begin(self, item: Any) -> Any:
            return self.inner.begin(item)

        def end(self, item: Any) -> None:
            self.inner.end(item)
            if point == "while_staging":
                die()  # one attachment staged, the bundle not verified to the end

        def commit(self, bundle: Any) -> None:
            if point == "after_verify":
                die()  # every attachment staged, none committed
            self.inner.commit(bundle)
            if point == "after_attachments":
                die()

        def discard(self) -> None:
            self.inner.discard()

    def apply(connection: Any, bundle: Any, ref: str, at: str) -> int:
        count = apply_inbound(connection, bundle, ref, at)
        if point == "before_commit":
            die()  # inside the transaction, records written, ledger row not yet
        return count

    transport = zones.transport_for(settings, "inbound")
    receive_channel(
        zones.zone_engine(settings, "admin"),
        channel="inbound",
        transport=KillingTransport(transport, before="remove" if point == "after_commit" else ""),
        keyring=zones.receiver_keyring(settings, "inbound"),
        decryption_keys=zones.decryption_keys(settings, "inbound"),
        quarantine_dir=settings.admin_quarantine,
        stage=KillingStaging,
        apply=apply,
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
    sys.exit(3)  # reaching the end means the kill point was never hit
