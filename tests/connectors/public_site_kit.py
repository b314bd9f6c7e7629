"""The public site as tests need it: records sealed into the public status store the way
the administration zone seals them, and the site served by uvicorn on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from connectors.status_lookup import PublicSite
from connectors.status_store import opened
from rules.query_password import status_keys
from rules.status_seal import LEAF_PURPOSE, Sealer
from tests.chromium import free_port


def seal_into_store(public_root: Path, key: str, password: str, records: Iterable[dict[str, Any]],
                    leaves: Iterable[tuple[int, int, str]] = (), segment: int | None = None) -> str:
    """Seal ``records`` (public status records) and ``leaves`` ((event id, seq, entry)) of the
    case ``key`` under its password into the store of ``public_root``, as the bundle
    ``segment`` (by default one after the last); returns the lookup."""
    lookup, seal_key = status_keys(key, password)
    sealer = Sealer(seal_key, lookup)
    events = [(lookup, r["event_id"], sealer.seal(r["event_id"], orjson.dumps(r, option=orjson.OPT_SORT_KEYS)))
              for r in records]
    sealed_leaves = [(lookup, event_id, seq, sealer.seal(event_id, entry.encode("utf-8"), LEAF_PURPOSE), None)
                     for event_id, seq, entry in leaves]
    with opened(public_root) as store:
        assert store is not None
        if segment is None:
            segment = store._db.execute("SELECT coalesce(max(id), 0) + 1 FROM segments").fetchone()[0]
        store.put(segment, events, sealed_leaves)
    return lookup


@contextmanager
def served(public_root: Path) -> Iterator[str]:
    """The public site of ``public_root`` on uvicorn at 127.0.0.1; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(PublicSite(public_root), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def published_documents(settings: Any) -> Iterator[dict[str, Any]]:
    """Every published status document as its applicant sees it, opened with the passwords
    the administration zone holds (a test reads both zones; nothing in the hub does)."""
    from sqlalchemy import select

    from connectors.db import query_passwords
    from connectors.status_store import read_status
    from hub.zones import zone_engine

    with zone_engine(settings, "admin").connect() as connection:
        rows = connection.execute(select(query_passwords.c.net_id, query_passwords.c.case_number,
                                         query_passwords.c.password).order_by(query_passwords.c.net_id)).all()
    for net_id, case_number, password in rows:
        document = read_status(settings.public_root, case_number or net_id, password)
        if document is not None and document["events"]:
            yield document


def stored_leaves(public_root: Path) -> int:
    """How many audit leaves the public store holds (filed or waiting for their change)."""
    import sqlite3

    from connectors.status_store import store_path

    if not store_path(public_root).exists():
        return 0
    with sqlite3.connect(store_path(public_root)) as store:
        return int(store.execute("SELECT count(*) FROM leaves").fetchone()[0])


def reseal(public_root: Path, key: str, password: str, event_id: int, *,
           record: dict[str, Any] | None = None, entry: str | None = None) -> None:
    """Replace a stored status record or audit leaf entry with another, sealed under the right
    key: what someone who can write the store and knows the password could do, and what the
    audit proof on the status page must still catch."""
    import sqlite3

    from connectors.status_store import store_path
    from rules.query_password import lookup_bytes

    lookup, seal_key = status_keys(key, password)
    sealer = Sealer(seal_key, lookup)
    with sqlite3.connect(store_path(public_root)) as store:
        if record is not None:
            sealed = sealer.seal(event_id, orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
            store.execute("UPDATE events SET sealed = ? WHERE lookup = ? AND event_id = ?",
                          (sealed, lookup_bytes(lookup), event_id))
        if entry is not None:
            sealed = sealer.seal(event_id, entry.encode("utf-8"), LEAF_PURPOSE)
            store.execute("UPDATE leaves SET sealed = ? WHERE lookup = ? AND event_id = ?",
                          (sealed, lookup_bytes(lookup), event_id))


def unfile_leaves(settings: Any, key: str, password: str) -> list[dict[str, Any]]:
    """Take the audit leaves of case ``key`` out of the public store and leave them in
    ``audit_unfiled`` as a hub before the store left leaves that came before their status
    documents: plain, the entry being the administration zone's log entry at ``seq`` (what
    those hubs' checkpoint bundles carried and they kept verbatim). Returns the rows left."""
    import sqlite3
    from contextlib import closing

    from sqlalchemy import select

    from connectors.clock import iso, now
    from connectors.db import audit_entries, audit_unfiled, transaction
    from connectors.status_store import store_path
    from hub.zones import zone_engine
    from rules.query_password import lookup_bytes

    lookup, _ = status_keys(key, password)
    with closing(sqlite3.connect(store_path(settings.public_root))) as store, store:
        stored = store.execute("SELECT event_id, seq FROM leaves WHERE lookup = ?", (lookup_bytes(lookup),)).fetchall()
        store.execute("DELETE FROM leaves WHERE lookup = ?", (lookup_bytes(lookup),))
    with zone_engine(settings, "admin").connect() as connection:
        entries = {int(seq): str(entry) for seq, entry in connection.execute(
            select(audit_entries.c.seq, audit_entries.c.entry).where(audit_entries.c.seq.in_([s for _, s in stored])))}
    waiting = [{"lookup": lookup, "event_id": event_id, "seq": seq, "entry": entries[seq], "at": iso(now())}
               for event_id, seq in stored]
    with transaction(zone_engine(settings, "internet")) as connection:
        connection.execute(audit_unfiled.insert(), waiting)
    return waiting
