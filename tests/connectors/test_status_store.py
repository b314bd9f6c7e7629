"""The public status store and its lookup endpoint: sealed events go in once however often a
bundle is applied, come out only by lookup name, open only with the case's password, and the
site (uvicorn on loopback) serves nothing else of the store or outside the public folder."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import pytest

from connectors.status_store import (
    legacy_document_path,
    opened,
    public_lookup,
    published_events,
    read_status,
    store_path,
)
from rules.query_password import lookup_name
from rules.status_seal import SealBroken
from tests.connectors.public_site_kit import reseal, seal_into_store, served

CASE = "32010000010000000042"
PASSWORD = "3467ACDEFGHJ"


def _record(event_id: int, status: str, **more: Any) -> dict[str, Any]:
    return {"event_id": event_id, "net_id": "NET20261109000042", "lookup": lookup_name(CASE, PASSWORD),
            "case_number": CASE, "power_name": "公路超限运输许可", "case_name": "张**的申请",
            "applicant_name": "张**", "status": status, "at": f"2026-11-0{event_id}T10:00:00+08:00",
            "step": None, "opinion": None, "result": None, **more}


def test_events_go_in_once_and_make_the_applicants_document(tmp_path: Path) -> None:
    public = tmp_path / "public"
    records = [_record(1, "registered"), _record(2, "accepted"),
               _record(3, "granted", result={"code": 2, "note": "准予", "finished_at": "2026-11-03"})]
    seal_into_store(public, CASE, PASSWORD, records[:2], leaves=[(1, 10, '{"row":1}')], segment=1)
    seal_into_store(public, CASE, PASSWORD, records[:2], leaves=[(1, 10, '{"row":1}')], segment=1)  # again
    seal_into_store(public, CASE, PASSWORD, records[2:], segment=2)
    assert sorted(published_events(public)) == [(lookup_name(CASE, PASSWORD), i) for i in (1, 2, 3)]
    document = read_status(public, CASE, "3467-acde-fghj")  # as typed: groups, lower case
    assert document is not None
    assert [e["event_id"] for e in document["events"]] == [1, 2, 3]
    assert document["status"] == "granted" and document["result"]["code"] == 2
    assert document["case_number"] == CASE and document["updated_at"] == "2026-11-03T10:00:00+08:00"
    assert document["audit"] == {"1": {"seq": 10, "entry": '{"row":1}'}}
    assert read_status(public, CASE, "3467ACDEFGHK") is None
    with opened(public, readonly=True) as store:
        assert store is not None and store.counts() == (1, 3)
    # The store lies beside the public folder, never in it.
    assert store_path(public).exists() and not store_path(public).is_relative_to(public)


def test_a_document_of_the_file_layout_is_read_with_the_stores_records(tmp_path: Path) -> None:
    public = tmp_path / "public"
    lookup = lookup_name(CASE, PASSWORD)
    legacy = legacy_document_path(public, lookup)
    legacy.parent.mkdir(parents=True)
    legacy.write_text(json.dumps({"events": [_record(1, "registered")], "audit": {"1": {"seq": 4, "entry": "e"}}}))
    seal_into_store(public, CASE, PASSWORD, [_record(2, "accepted")])
    document = read_status(public, CASE, PASSWORD)
    assert document is not None and [e["status"] for e in document["events"]] == ["registered", "accepted"]
    assert document["audit"] == {"1": {"seq": 4, "entry": "e"}}
    # A retraction removes both.
    with opened(public) as store:
        assert store is not None
        store.put(99, (), removed=[lookup])
    legacy.unlink()
    with opened(public, readonly=True) as store:
        assert public_lookup(public, store, lookup) is None


def test_a_record_changed_without_the_key_does_not_open(tmp_path: Path) -> None:
    import sqlite3

    public = tmp_path / "public"
    seal_into_store(public, CASE, PASSWORD, [_record(1, "registered")])
    with sqlite3.connect(store_path(public)) as store:
        (sealed,) = store.execute("SELECT sealed FROM events").fetchone()
        store.execute("UPDATE events SET sealed = ?", (sealed[1:] + b"\x00",))
    with pytest.raises(SealBroken):
        read_status(public, CASE, PASSWORD)


def _get(url: str, method: str = "GET") -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_the_site_serves_lookups_and_the_public_folder_and_nothing_else(tmp_path: Path) -> None:
    public = tmp_path / "public"
    (public / "audit").mkdir(parents=True)
    (public / "index.html").write_text("<!doctype html><title>办件查询</title>", "utf-8")
    (public / "audit" / "checkpoint").write_text("origin\n1\nroot\n", "utf-8")
    (public / ".hidden").write_text("secret", "utf-8")
    (tmp_path / "outside.txt").write_text("outside", "utf-8")
    with served(public) as base:
        lookup = lookup_name(CASE, PASSWORD)
        # Before anything is published there is no store: every name is unknown.
        assert _get(f"{base}/lookup/{lookup}")[0] == 404
        seal_into_store(public, CASE, PASSWORD, [_record(1, "registered"), _record(2, "accepted")])
        status, headers, body = _get(f"{base}/lookup/{lookup}")
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert headers["Cache-Control"] == "no-store" and "default-src 'self'" in headers["Content-Security-Policy"]
        found = json.loads(body)
        assert [e["event_id"] for e in found["events"]] == [1, 2] and found["legacy"] is None
        assert "张" not in body.decode("utf-8") and CASE not in body.decode("utf-8")
        # Published later, seen at once (the reader follows the writer).
        seal_into_store(public, CASE, PASSWORD, [_record(3, "in_progress")])
        assert len(json.loads(_get(f"{base}/lookup/{lookup}")[2])["events"]) == 3
        # A change sealed again shows at the next lookup too.
        reseal(public, CASE, PASSWORD, 3, record=_record(3, "returned"))
        assert read_status(public, CASE, PASSWORD)["status"] == "returned"  # type: ignore[index]
        assert _get(f"{base}/lookup/{'a' * 64}")[0] == 404
        for bad in ("short", "q" * 64, lookup.upper(), lookup + "a", "../" + lookup[3:]):
            assert _get(f"{base}/lookup/{bad}")[0] == 404, bad
        status, headers, body = _get(f"{base}/")
        assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8" and "办件查询" in body.decode()
        status, headers, _ = _get(f"{base}/audit/checkpoint")
        assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
        assert _get(f"{base}/lookup/{lookup}", "HEAD")[2] == b""
        status, headers, _ = _get(f"{base}/index.html", "POST")
        assert status == 405 and headers["Allow"] == "GET, HEAD"
        for refused in ("/.hidden", "/../outside.txt", "/%2e%2e/outside.txt", "/audit/../../outside.txt",
                        "/public-store/status.sqlite", "/../public-store/status.sqlite", "/audit/"):
            assert _get(base + refused)[0] == 404, refused
        # The documents of the file layout: only through the lookup route.
        legacy = legacy_document_path(public, lookup_name(CASE, "3467ACDE"))
        legacy.parent.mkdir(parents=True)
        legacy.write_text('{"events": []}', "utf-8")
        assert _get(f"{base}/status/{legacy.parent.name}/{legacy.name}")[0] == 404
        assert json.loads(_get(f"{base}/lookup/{legacy.stem}")[2])["legacy"] == {"events": []}


def test_compaction_merges_full_tiers_of_applied_bundles_and_keeps_every_record(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors import status_store
    from rules.query_password import status_keys
    from rules.status_seal import Sealer

    monkeypatch.setattr(status_store, "MERGE_FAN_IN", 3)
    public = tmp_path / "public"
    cases = [(f"320100000100000000{n:02d}", PASSWORD) for n in range(10)]
    expected: dict[str, list[int]] = {}
    with opened(public) as store:
        assert store is not None
        for sequence in range(1, 11):  # ten bundles, each with every case's next change
            events = []
            for key, password in cases:
                lookup, seal_key = status_keys(key, password, iterations=1)
                event_id = sequence * 100 + int(key[-2:])
                events.append((lookup, event_id, Sealer(seal_key, lookup).seal(event_id, b"{}")))
                expected.setdefault(lookup, []).append(event_id)
            store.put(sequence, events, [(events[0][0], events[0][1], 7, events[0][2], None)])
        before = {lookup: store.sealed(lookup) for lookup in expected}
        # Bundle 10 is not marked applied yet: it stays out of every merge.
        merges = store.compact(set(range(1, 10)))
        # 9 applied bundles: three merges into tier 1, then one of those three into tier 2.
        assert merges == 4
        tiers = store._db.execute("SELECT id, tier FROM segments ORDER BY tier, id").fetchall()
        assert tiers == [(10, 0), (-4, 2)]
        assert {lookup: store.sealed(lookup) for lookup in expected} == before
        assert store.counts() == (10, 100)
        assert store.compact(set(range(1, 11))) == 0  # one segment of tier 0: nothing full
        first = next(iter(expected))
        assert [e["event_id"] for e in store.sealed(first)["events"]] == sorted(expected[first])  # type: ignore[index]


def test_a_new_store_has_large_pages_and_an_older_one_keeps_its_own(tmp_path: Path) -> None:
    import sqlite3

    from connectors.status_store import PAGE_BYTES

    lookup = lookup_name(CASE, PASSWORD)
    with opened(tmp_path / "new" / "public") as store:
        assert store is not None
        store.put(1, [(lookup, 1, b"sealed")])
    with sqlite3.connect(store_path(tmp_path / "new" / "public")) as db:
        assert db.execute("PRAGMA page_size").fetchone() == (PAGE_BYTES,)
    older = store_path(tmp_path / "old" / "public")
    older.parent.mkdir(parents=True)
    with sqlite3.connect(older) as db:  # a store made before: default pages, WAL already on
        db.execute("PRAGMA page_size=4096")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE segments (id INTEGER PRIMARY KEY, tier INTEGER NOT NULL, records INTEGER NOT NULL)")
    with opened(tmp_path / "old" / "public") as store:
        assert store is not None
        store.put(1, [(lookup, 1, b"sealed")])
        assert store.counts() == (1, 1)
    with sqlite3.connect(older) as db:
        assert db.execute("PRAGMA page_size").fetchone() == (4096,)
