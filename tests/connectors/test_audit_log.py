"""The audit trail in a zone database (connectors.audit), on SQLite and PostgreSQL: leaves
appended with their rows, signed checkpoints, and `verify_log` naming the first changed
entry after every kind of tampering, truncation, reordering, a fork and a crash mid-append."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, func, select, text, update

from connectors import audit
from connectors.alarms import raise_alarm, resolve_open
from connectors.db import (
    alarms,
    audit_checkpoints,
    audit_entries,
    audit_hash_pages,
    audit_head,
    catalogue_transitions,
    provenance,
    quarantine_actions,
    supervision_alerts,
    supervision_orders,
    transaction,
)
from connectors.migrate import ZONE_TABLES
from connectors.provenance import record_events
from ferry.suites import get_suite
from ferry.tlog import (
    Frontier,
    NoteSigner,
    open_checkpoint,
    prove_consistency,
    stored_hash_count,
    tree_hasher,
    verify_consistency,
    verify_inclusion,
)
from schemas.exceptions import TerminalError

AT = "2026-12-01T10:00:00+08:00"
ADMIN = ZONE_TABLES["admin"]


def _signer(name: str = "power-exchange-hub/test/admin") -> NoteSigner:
    return NoteSigner(name, "intl", get_suite("intl").generate_signing_key())


def _events(n: int, prefix: str = "NET20261201") -> list[Any]:
    return [(f"{prefix}{i:06d}", "inbound_receive", "received", f"inbound#{i % 3}",
             None if i % 2 else {"code": "X", "名": i, "list": [1, 2]}) for i in range(n)]


def _verify(engine: Engine, signer: NoteSigner) -> audit.VerifyReport:
    return audit.verify_log(engine, [signer.verifier()], ADMIN)


def _sample(engine: Engine, signer: NoteSigner) -> None:
    """A log with a row of every audited source, two checkpoints."""
    with transaction(engine) as c:
        record_events(c, _events(5), AT)
        alarm = raise_alarm(c, "security", {"code": "FORK"}, AT)
        action = c.execute(quarantine_actions.insert().values(
            quarantine_id=1, action="discard", reason="forged", operator="op", at=AT)).inserted_primary_key
        assert action is not None
        audit.log_rows(c, "quarantine_actions", [action[0]], AT)
    audit.checkpoint_if_grown(engine, signer, AT)
    with transaction(engine) as c:
        alert = c.execute(supervision_alerts.insert().values(
            rule="CASE_LATE", level="warning", case_number="32010000010000000001", step_no=0, department="d",
            power_code="p", state="open", raised_at=AT, detail="late", open_key="k")).inserted_primary_key
        order = c.execute(supervision_orders.insert().values(
            case_number="32010000010000000001", issued_by="张", instruction="办", deadline=AT, issued_at=AT,
            state="issued")).inserted_primary_key
        transition = c.execute(catalogue_transitions.insert().values(
            code="P1", action="create", to_state="A", to_version=1, changed_by="法制处", changed_at=AT, reason="新",
            approvals=[{"by": "局长"}], source="f.jsonl", recorded_at=AT)).inserted_primary_key
        assert alert and order and transition
        audit.log_rows(c, "supervision_alerts", [alert[0]], AT)
        audit.log_rows(c, "supervision_orders", [order[0]], AT)
        audit.log_rows(c, "catalogue_transitions", [transition[0]], AT)
        c.execute(update(supervision_orders).values(state="answered", answer="已办", answered_by="李", answered_at=AT))
        audit.log_rows(c, "supervision_orders", [order[0]], AT)
        resolve_open(c, "security", "checked", datetime.fromisoformat(AT))
        record_events(c, _events(3, "NET20261202"), AT)
    assert alarm
    audit.checkpoint_if_grown(engine, signer, AT)


def test_appends_follow_the_rows_and_verify_clean(exchange_engine: Engine) -> None:
    signer = _signer()
    _sample(exchange_engine, signer)
    report = _verify(exchange_engine, signer)
    assert report.findings == []
    # 5 + 1 alarm + 1 action, then alert, order, transition, order again, alarm resolved, 3
    assert report.size == 15
    assert report.checkpoints == 2 and report.newest_checkpoint == 15
    with exchange_engine.connect() as c:
        sources = [r.source for r in c.execute(select(audit_entries).order_by(audit_entries.c.seq))]
        assert sources.count("provenance") == 8 and sources.count("alarms") == 2
        assert sources.count("supervision_orders") == 2
        note = audit.latest_checkpoint(c)
    assert note is not None
    opened = open_checkpoint(note.note, [signer.verifier()])
    assert (opened.size, opened.origin) == (15, signer.name)


def test_the_fast_provenance_entry_is_the_registry_entry(exchange_engine: Engine) -> None:
    with transaction(exchange_engine) as c:
        record_events(c, [("NET1", "s", "o", None, {"b": 1, "a": ["中", 2.5, None], 10: "x", 9: "y"}),
                          ("NET2", 's"\\', "o\n", "b#1", None)], AT)
    source = audit.SOURCES["provenance"]
    with exchange_engine.connect() as c:
        rows = {r[0]: r._mapping for r in c.execute(source.select_rows())}
        for entry in c.execute(select(audit_entries)):
            salt = json.loads(entry.entry)["salt"]
            assert entry.entry == source.entry(entry.source_key, rows[entry.source_key], salt)


def test_no_checkpoint_when_nothing_was_appended(exchange_engine: Engine) -> None:
    signer = _signer()
    assert audit.checkpoint_if_grown(exchange_engine, signer, AT) is None
    with transaction(exchange_engine) as c:
        record_events(c, _events(2), AT)
    first = audit.checkpoint_if_grown(exchange_engine, signer, AT)
    assert first is not None and first.size == 2
    assert audit.checkpoint_if_grown(exchange_engine, signer, AT) is None


# --- tampering: each kind of row, the entries, the hashes -----------------------------------

TAMPER = [
    ("provenance", "outcome", lambda c: c.execute(update(provenance).where(provenance.c.id == 3).values(outcome="rejected"))),
    ("provenance", "detail", lambda c: c.execute(update(provenance).where(provenance.c.id == 2).values(detail={"code": "Y"}))),
    ("alarms", "resolution", lambda c: c.execute(update(alarms).values(resolution="nothing to see"))),
    ("quarantine_actions", "reason", lambda c: c.execute(update(quarantine_actions).values(reason="routine"))),
    ("supervision_alerts", "level", lambda c: c.execute(update(supervision_alerts).values(level="reminder"))),
    ("supervision_orders", "answer", lambda c: c.execute(update(supervision_orders).values(answer="改"))),
    ("catalogue_transitions", "approvals",
     lambda c: c.execute(update(catalogue_transitions).values(approvals=[{"by": "nobody"}]))),
]


@pytest.mark.parametrize(("table", "field", "tamper"), TAMPER, ids=[f"{t}.{f}" for t, f, _ in TAMPER])
def test_a_changed_field_of_each_kind_of_row_is_named(exchange_engine: Engine, table: str, field: str, tamper: Any) -> None:
    signer = _signer()
    _sample(exchange_engine, signer)
    with transaction(exchange_engine) as c:
        tamper(c)
    report = _verify(exchange_engine, signer)
    first = report.first
    assert first is not None and (first.code, first.table, first.field) == (audit.ROW_CHANGED, table, field)
    with exchange_engine.connect() as c:
        newest = c.execute(select(func.max(audit_entries.c.seq)).where(audit_entries.c.source == table)).scalar()
    if table == "provenance":
        assert first.seq == (2 if field == "outcome" else 1)
    else:
        assert first.seq == newest


def test_a_deleted_row_and_an_unlogged_row_are_named(exchange_engine: Engine) -> None:
    signer = _signer()
    _sample(exchange_engine, signer)
    with transaction(exchange_engine) as c:
        c.execute(delete(provenance).where(provenance.c.id == 4))
        c.execute(provenance.insert().values(record_id="NETX", stage="s", outcome="o", at=AT))
    report = _verify(exchange_engine, signer)
    assert report.first is not None
    assert (report.first.code, report.first.seq, report.first.table) == (audit.ROW_DELETED, 3, "provenance")
    assert [f.code for f in report.findings].count(audit.ROW_NOT_LOGGED) == 1


def test_a_changed_entry_is_named_by_its_leaf(exchange_engine: Engine) -> None:
    signer = _signer()
    _sample(exchange_engine, signer)
    with transaction(exchange_engine) as c:
        entry = c.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == 6)).scalar()
        c.execute(update(audit_entries).where(audit_entries.c.seq == 6).values(entry=entry.replace("forged", "FORGED")))
    first = _verify(exchange_engine, signer).first
    assert first is not None
    assert (first.code, first.seq, first.table, first.field) == (audit.ENTRY_CHANGED, 6, "quarantine_actions", "reason")


def test_reordered_entries_are_named_at_the_first_moved_leaf(exchange_engine: Engine) -> None:
    signer = _signer()
    _sample(exchange_engine, signer)
    with transaction(exchange_engine) as c:
        rows = {r.seq: r for r in c.execute(select(audit_entries).where(audit_entries.c.seq.in_([2, 3])))}
        for seq, other in ((2, 3), (3, 2)):
            c.execute(update(audit_entries).where(audit_entries.c.seq == seq).values(
                entry=rows[other].entry, source_key=rows[other].source_key))
    first = _verify(exchange_engine, signer).first
    assert first is not None and (first.code, first.seq) == (audit.ENTRY_CHANGED, 2)


def test_reordered_source_rows_are_named(exchange_engine: Engine) -> None:
    signer = _signer()
    _sample(exchange_engine, signer)
    with transaction(exchange_engine) as c:
        a, b = (c.execute(select(provenance).where(provenance.c.id == i)).one() for i in (1, 2))
        for target, row in ((1, b), (2, a)):
            c.execute(update(provenance).where(provenance.c.id == target).values(
                record_id=row.record_id, detail=row.detail))
    first = _verify(exchange_engine, signer).first
    assert first is not None and (first.code, first.seq, first.table, first.field) == (
        audit.ROW_CHANGED, 0, "provenance", "record_id")


def test_a_deleted_entry_is_a_gap(exchange_engine: Engine) -> None:
    signer = _signer()
    _sample(exchange_engine, signer)
    with transaction(exchange_engine) as c:
        c.execute(delete(audit_entries).where(audit_entries.c.seq == 9))
    first = _verify(exchange_engine, signer).first
    assert first is not None and (first.code, first.seq) == (audit.ENTRY_MISSING, 9)


def test_truncation_is_named_against_the_signed_checkpoint(exchange_engine: Engine) -> None:
    signer = _signer()
    _sample(exchange_engine, signer)
    hasher = tree_hasher("intl")
    with transaction(exchange_engine) as c:
        # Cut the log back to 12 leaves, consistently: entries, hashes and head.
        c.execute(delete(audit_entries).where(audit_entries.c.seq >= 12))
        kept = stored_hash_count(12)
        first = c.execute(select(audit_hash_pages.c.hashes).where(audit_hash_pages.c.page == 0)).scalar_one()
        c.execute(delete(audit_hash_pages))
        c.execute(audit_hash_pages.insert().values(page=0, hashes=first[:kept * 32]))
        root = Frontier.read(12, audit.hash_reader(c), hasher).root()
        c.execute(update(audit_head).values(size=12, root=root))
    report = _verify(exchange_engine, signer)
    assert [(f.code, f.seq) for f in report.findings if f.code == audit.TRUNCATED] == [(audit.TRUNCATED, 12)]
    # and the rows whose leaves were cut show up as unlogged
    assert any(f.code == audit.ROW_NOT_LOGGED for f in report.findings)


def test_a_rewritten_log_is_a_fork_of_the_signed_checkpoint(exchange_engine: Engine) -> None:
    """Rewrite a row, its entry and every stored hash consistently: only the signed
    checkpoint still remembers, and verify says where the tree stops matching it."""
    signer = _signer()
    _sample(exchange_engine, signer)
    with transaction(exchange_engine) as c:
        c.execute(update(provenance).where(provenance.c.id == 2).values(outcome="rejected"))
        rows = list(c.execute(select(audit_entries).order_by(audit_entries.c.seq)))
        c.execute(delete(audit_hash_pages))
        source = audit.SOURCES["provenance"]
        row = c.execute(source.select_rows().where(provenance.c.id == 2)).one()
        entries = [r.entry if r.seq != 1 else source.entry(2, row._mapping, "c2FsdA==") for r in rows]
        c.execute(update(audit_entries).where(audit_entries.c.seq == 1).values(entry=entries[1]))
        c.execute(update(audit_head).values(size=0, root=None))
        head = audit.lock_head(c)
        # re-append in place of the old hashes (delete the entries first, re-insert them)
        c.execute(delete(audit_entries))
        for r, e in zip(rows, entries, strict=True):
            audit.append_entries(c, head, r.source, [(r.source_key, e)], r.at)
    report = _verify(exchange_engine, signer)
    codes = {f.code for f in report.findings}
    assert codes == {audit.CHECKPOINT_MISMATCH}
    assert min(f.seq for f in report.findings if f.seq is not None) == 6  # the first checkpoint's last leaf


def test_a_changed_stored_hash_is_named(exchange_engine: Engine) -> None:
    signer = _signer()
    _sample(exchange_engine, signer)
    with transaction(exchange_engine) as c:
        page = c.execute(select(audit_hash_pages.c.hashes).where(audit_hash_pages.c.page == 0)).scalar_one()
        c.execute(update(audit_hash_pages).where(audit_hash_pages.c.page == 0).values(
            hashes=page[:64] + b"\x00" * 32 + page[96:]))  # stored hash 2
    first = _verify(exchange_engine, signer).first
    assert first is not None and (first.code, first.seq) == (audit.HASH_CHANGED, 1)


def test_a_checkpoint_signed_by_an_unknown_key_is_refused(exchange_engine: Engine) -> None:
    signer = _signer()
    _sample(exchange_engine, signer)
    report = audit.verify_log(exchange_engine, [_signer().verifier()], ADMIN)
    assert {f.code for f in report.findings} == {audit.CHECKPOINT_REFUSED}


# --- a crash mid-append --------------------------------------------------------------------


def test_an_append_rolled_back_leaves_no_gap_and_no_duplicate(exchange_engine: Engine) -> None:
    signer = _signer()
    with transaction(exchange_engine) as c:
        record_events(c, _events(3), AT)
    with pytest.raises(RuntimeError), transaction(exchange_engine) as c:
        record_events(c, _events(4, "NET20261203"), AT)
        raise RuntimeError("the task died before commit")
    with transaction(exchange_engine) as c:
        record_events(c, _events(2, "NET20261204"), AT)
    audit.checkpoint_if_grown(exchange_engine, signer, AT)
    report = _verify(exchange_engine, signer)
    assert report.findings == [] and report.size == 5


CRASH_CHILD = """
import os, sys
sys.path.insert(0, {root!r})
from connectors.db import engine_for, transaction
from connectors.provenance import record_events
from schemas.exceptions import TerminalError
engine = engine_for({url!r})
with transaction(engine) as c:
    record_events(c, [("NET20261205%06d" % i, "s", "o", None, None) for i in range(50)], "{at}")
    os._exit(9)  # killed between the append and the commit
"""


def test_a_process_killed_mid_append_leaves_no_gap(exchange_engine: Engine, exchange_url: str) -> None:
    signer = _signer()
    with transaction(exchange_engine) as c:
        record_events(c, _events(3), AT)
    root = str(Path(__file__).parents[2])
    child = subprocess.run([sys.executable, "-c", CRASH_CHILD.format(root=root, url=exchange_url, at=AT)],
                           check=False, env={**os.environ}, capture_output=True, timeout=120)
    assert child.returncode == 9, child.stderr.decode()
    with transaction(exchange_engine) as c:
        record_events(c, _events(2, "NET20261206"), AT)
    audit.checkpoint_if_grown(exchange_engine, signer, AT)
    report = _verify(exchange_engine, signer)
    assert report.findings == [] and report.size == 5
    with exchange_engine.connect() as c:
        assert c.execute(select(func.count()).select_from(provenance)).scalar() == 5


# --- stored hashes in pages (connectors.audit, migration 0015) -------------------------------


def test_stored_hashes_fill_pages_across_appends_of_every_size(exchange_engine: Engine) -> None:
    """Appends of 1 to 300 leaves, starting anywhere in a page, store exactly the hashes an
    in-memory tree computes, page after page, the last one partial."""
    hasher = tree_hasher("intl")
    memory = Frontier(0, [], hasher)
    expected: list[bytes] = []
    for batch in (1, 127, 128, 300, 3, 255, 1):
        events = _events(batch, prefix=f"NETPAGE{len(expected):06d}")
        with transaction(exchange_engine) as c:
            record_events(c, events, AT)
            entries = c.execute(select(audit_entries.c.entry).where(audit_entries.c.seq >= memory.size)
                                .order_by(audit_entries.c.seq)).scalars().all()
        expected.extend(memory.extend(hasher.leaf_hashes([e.encode("utf-8") for e in entries])))
    with exchange_engine.connect() as c:
        pages = c.execute(select(audit_hash_pages).order_by(audit_hash_pages.c.page)).all()
        stored = audit.hash_reader(c).read_hashes(range(len(expected)))
        with pytest.raises(TerminalError, match=f"lacks stored hash {len(expected)}"):
            audit.hash_reader(c).read_hashes([len(expected)])
    assert stored == expected
    assert [p.page for p in pages] == list(range(len(pages)))
    assert [len(p.hashes) for p in pages] == [256 * 32] * (len(pages) - 1) + [(len(expected) - 1) % 256 * 32 + 32]
    assert _verify(exchange_engine, _signer()).findings == []


def test_an_append_after_a_tail_that_disagrees_with_the_head_is_refused(exchange_engine: Engine) -> None:
    with transaction(exchange_engine) as c:
        record_events(c, _events(5), AT)
    with transaction(exchange_engine) as c:
        page = c.execute(select(audit_hash_pages.c.hashes).where(audit_hash_pages.c.page == 0)).scalar_one()
        c.execute(update(audit_hash_pages).values(hashes=page + bytes(32)))  # a hash beyond the head's tree
    with pytest.raises(TerminalError, match="do not end at 8"), transaction(exchange_engine) as c:
        record_events(c, _events(1, prefix="NETLATE"), AT)
    with exchange_engine.connect() as c:
        assert c.execute(select(func.count()).select_from(provenance)).scalar() == 5  # nothing of it kept


# --- proofs from the stored hashes (property tests) -----------------------------------------


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=6), data=st.data())
def test_proofs_from_the_database_verify(exchange_engine: Engine, batches: list[int], data: st.DataObject) -> None:
    with transaction(exchange_engine) as c:
        c.execute(delete(audit_entries))
        c.execute(delete(audit_hash_pages))
        c.execute(delete(audit_checkpoints))
        c.execute(delete(provenance))
        c.execute(update(audit_head).values(size=0, root=None))
    signer = _signer()
    hasher = tree_hasher("intl")
    sizes = []
    for n in batches:
        with transaction(exchange_engine) as c:
            record_events(c, _events(n), AT)
        checkpoint = audit.checkpoint_if_grown(exchange_engine, signer, AT)
        assert checkpoint is not None
        sizes.append(checkpoint.size)
    with exchange_engine.connect() as c:
        signed = {s.size: s.root for s in audit.checkpoints(c)}
        size = sizes[-1]
        seq = data.draw(st.integers(min_value=0, max_value=size - 1))
        entry = c.execute(select(audit_entries.c.entry).where(audit_entries.c.seq == seq)).scalar()
        proof = audit.inclusion_proof(c, seq, size)
        leaf = hasher.leaf_hash(entry.encode("utf-8"))
        assert verify_inclusion(hasher, seq, size, leaf, proof, signed[size])
        assert not verify_inclusion(hasher, seq, size, hasher.leaf_hash(b"other"), proof, signed[size])
        old = data.draw(st.sampled_from(sizes))
        consistency = prove_consistency(old, size, audit.hash_reader(c), hasher)
        assert verify_consistency(hasher, old, size, signed[old], signed[size], consistency)
    assert _verify(exchange_engine, signer).findings == []


def test_concurrent_appenders_number_leaves_in_commit_order(exchange_engine: Engine) -> None:
    """Two connections: the second waits for the first's lock (PostgreSQL FOR UPDATE; SQLite's
    one writer), so neither reuses a leaf number."""
    import threading

    signer = _signer()
    errors: list[BaseException] = []

    def work(prefix: str) -> None:
        try:
            for _ in range(5):
                with transaction(exchange_engine) as c:
                    record_events(c, _events(7, prefix), AT)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(p,)) for p in ("NET20261207", "NET20261208")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    audit.checkpoint_if_grown(exchange_engine, signer, AT)
    report = _verify(exchange_engine, signer)
    assert report.findings == [] and report.size == 70
    with exchange_engine.connect() as c:
        assert c.execute(text("SELECT count(DISTINCT source_key) FROM audit_entries")).scalar() == 70


def test_the_entry_is_canonical_json() -> None:
    source = audit.SOURCES["alarms"]
    entry = source.entry(7, {"kind": "k", "detail": {"b": 1, "a": "中"}, "at": AT, "resolved_at": None,
                             "resolution": None, "resolved_by": None}, "c2FsdA==")
    assert json.loads(entry)["row"]["detail"] == {"a": "中", "b": 1}
    assert entry.startswith('{"key":7,"row":{"at":') and "中" in entry and " " not in entry
    assert entry.endswith(',"salt":"c2FsdA==","table":"alarms"}')


def test_every_leaf_has_a_salt_of_its_own(exchange_engine: Engine) -> None:
    """Equal rows give different leaf hashes: a hash that leaves the zone hides its row."""
    with transaction(exchange_engine) as c:
        record_events(c, [("NET1", "s", "o", None, None)] * 3, AT)
        entries = c.execute(select(audit_entries.c.entry)).scalars().all()
    found = {json.loads(e)["salt"] for e in entries}
    assert len(found) == 3 and all(len(base64.b64decode(s)) == 16 for s in found)


def test_rows_from_before_the_log_are_told_from_rows_written_without_a_leaf(exchange_engine: Engine) -> None:
    """A deployment upgraded to the log has rows from before it: they are counted, not
    findings; a row written since without its leaf still is one."""
    signer = _signer()
    with transaction(exchange_engine) as c:
        c.execute(provenance.insert(), [{"record_id": f"OLD{i}", "stage": "s", "outcome": "o", "at": AT} for i in range(4)])
        c.execute(alarms.insert().values(kind="old", detail={}, at=AT))
    assert audit.start_log(exchange_engine, "intl", ADMIN) == "intl"
    with exchange_engine.connect() as c:
        assert c.execute(select(audit_head.c.started_after)).scalar()["provenance"] == 4
    with transaction(exchange_engine) as c:
        record_events(c, _events(3), AT)
    audit.checkpoint_if_grown(exchange_engine, signer, AT)
    report = _verify(exchange_engine, signer)
    assert report.findings == [] and report.rows_before_log == 5 and report.rows_checked == 3
    with transaction(exchange_engine) as c:
        c.execute(provenance.insert().values(record_id="NEWX", stage="s", outcome="o", at=AT))
    report = _verify(exchange_engine, signer)
    assert [(f.code, f.table) for f in report.findings] == [(audit.ROW_NOT_LOGGED, "provenance")]
    # A second start changes nothing: the log has started.
    audit.start_log(exchange_engine, "gm", ADMIN)
    with exchange_engine.connect() as c:
        assert c.execute(select(audit_head.c.suite)).scalar() == "intl"


_JSON_LEAVES = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text()
                | st.floats(allow_nan=True, allow_infinity=True))
_JSON_VALUES = st.recursive(_JSON_LEAVES, lambda inner: st.lists(inner, max_size=4)
                            | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
# What a database's JSON column takes: no NaN or infinity, no NUL in text (PostgreSQL refuses both).
_STORABLE = st.recursive(
    st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.text().map(lambda t: t.replace("\0", ""))
    | st.floats(allow_nan=False, allow_infinity=False) | st.none(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6).map(lambda t: t.replace("\0", "")),
                                                                inner, max_size=4), max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(value=_JSON_VALUES)
def test_canonical_is_sorted_compact_json_whatever_the_value(value: Any) -> None:
    """The orjson fast path of ``canonical`` gives json's text exactly (control characters,
    non-BMP text, integers beyond 64 bits and floats included: those take json's path)."""
    assert audit.canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_plain_json_refuses_floats_and_subclasses() -> None:
    class Text(str):
        pass

    assert audit.plain_json({"a": [1, "中", None, True, ("x",)]})
    assert not audit.plain_json({"a": [1, 2.5]})
    assert not audit.plain_json({1: "x"}) and not audit.plain_json(Text("x"))
    assert audit.canonical({"a": 1e16, "b": float("nan")}) == '{"a":1e+16,"b":NaN}'


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Dicts and lists, as the stages write (a bare number would meet SQLite's numeric affinity of a
# JSON column: "0.0" reads back as 0, with json.dumps as without it).
@given(details=st.lists(_STORABLE.filter(lambda v: isinstance(v, (dict, list))), min_size=1, max_size=5))
def test_a_stored_detail_reads_back_as_json_dumps_would_store_it(exchange_engine: Engine, details: list[Any]) -> None:
    """``record_events`` writes a detail's text without ``json.dumps``: it must read back as the
    value SQLAlchemy's JSON type would have stored, None as JSON null (not SQL NULL), and every
    leaf must still match its row."""
    with transaction(exchange_engine) as c:
        first = c.execute(select(func.count()).select_from(audit_entries)).scalar()
        c.execute(delete(provenance))
        record_events(c, [(f"NET{i}", "s", "o", None, d) for i, d in enumerate(details)] + [("NETN", "s", "o", None, None)], AT)
    source = audit.SOURCES["provenance"]
    with exchange_engine.connect() as c:
        stored = c.execute(select(provenance.c.record_id, provenance.c.detail)).all()
        raw_null = c.execute(select(func.count()).select_from(provenance).where(
            provenance.c.record_id == "NETN", provenance.c.detail.is_(None))).scalar()
        rows = {r[0]: r._mapping for r in c.execute(source.select_rows())}
        entries = c.execute(select(audit_entries).where(audit_entries.c.seq >= first)).all()
    assert raw_null == 0  # JSON null, not SQL NULL
    assert dict(stored) == {**{f"NET{i}": json.loads(json.dumps(d)) for i, d in enumerate(details)}, "NETN": None}
    assert len(entries) == len(details) + 1
    for entry in entries:
        assert entry.entry == source.entry(entry.source_key, rows[entry.source_key], json.loads(entry.entry)["salt"])
