"""Writing the public feed: documents of the layout before the store, the daily 双公示 pages
and the public side's own allow-lists."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors import public_feed, status_store
from ferry.bundle import record_line
from rules.query_password import lookup_bytes


def test_documents_of_the_flat_layout_move_into_their_folders(tmp_path: Path) -> None:
    """Documents published before the store, in the earliest flat layout, are still found:
    moved into their folders on the way."""
    status = tmp_path / "status"
    status.mkdir()
    flat = "ab" + "c" * 62
    (status / f"{flat}.json").write_bytes(b'{"events": []}')
    (status / "readme.txt").write_bytes(b"not a document")
    assert status_store.public_lookup(tmp_path, None, flat) == {
        "lookup": flat, "events": [], "audit": [], "legacy": {"events": []}}
    assert status_store.legacy_document_path(tmp_path, flat).read_bytes() == b'{"events": []}'
    assert sorted(p.name for p in status.iterdir()) == ["ab", "readme.txt"]
    assert list(status_store.legacy_documents(tmp_path)) == [status_store.legacy_document_path(tmp_path, flat)]


class _Bundle:
    """Just what the disclosure writer reads of a verified bundle."""

    def __init__(self, sequence: int, records: list[dict[str, object]]) -> None:
        self.manifest = type("Manifest", (), {"sequence": sequence})()
        self._lines = [orjson.dumps(r) for r in records]

    def iter_records(self, kind: str) -> list[bytes]:
        return self._lines if kind == "disclosures" else []


def _disclosure(record_id: int, day: str, kind: str = "licence") -> dict[str, object]:
    return {"record_id": record_id, "kind": kind, "decided_at": f"{day}T10:00:00+08:00",
            "power_code": "P", "decision": "准予许可"}


def test_each_bundle_writes_its_own_page_of_a_day_and_again_the_same(tmp_path: Path) -> None:
    folder = tmp_path / "disclosure"
    first = _Bundle(1, [_disclosure(2, "2026-11-12"), _disclosure(1, "2026-11-12", "penalty")])
    second = _Bundle(2, [_disclosure(3, "2026-11-12"), _disclosure(4, "2026-11-13")])
    assert public_feed._merge_disclosures(folder, first, []) == 2
    assert public_feed._merge_disclosures(folder, second, []) == 2
    page = folder / "2026-11-12" / "b00000001.json"
    before = page.read_bytes()
    assert public_feed._merge_disclosures(folder, first, []) == 2  # applied again after a crash
    assert page.read_bytes() == before
    index = orjson.loads((folder / "index.json").read_bytes())
    assert index["days"]["2026-11-12"]["licence"] == 2 and index["days"]["2026-11-12"]["penalty"] == 1
    assert sorted(index["days"]["2026-11-12"]["pages"]) == ["b00000001.json", "b00000002.json"]
    ids = [r["record_id"] for p in public_feed.disclosure_pages(tmp_path) for r in orjson.loads(p.read_bytes())["records"]]
    assert sorted(ids) == [1, 2, 3, 4]  # nothing twice
    public_feed._retract_disclosures(folder, {2, 4})
    index = orjson.loads((folder / "index.json").read_bytes())
    assert index["days"]["2026-11-12"]["licence"] == 1 and index["days"]["2026-11-13"]["licence"] == 0


def test_a_daily_list_of_the_earlier_layout_becomes_its_days_first_page(tmp_path: Path) -> None:
    folder = tmp_path / "disclosure"
    folder.mkdir()
    (folder / "2026-11-12.json").write_bytes(orjson.dumps({"date": "2026-11-12", "records": [_disclosure(1, "2026-11-12")]}))
    (folder / "index.json").write_bytes(orjson.dumps({"days": {"2026-11-12": {"licence": 1, "penalty": 0}}}))
    public_feed._merge_disclosures(folder, _Bundle(5, [_disclosure(9, "2026-11-12", "penalty")]), [])
    index = orjson.loads((folder / "index.json").read_bytes())
    assert index["days"]["2026-11-12"] == {"licence": 1, "penalty": 1, "pages": {
        "b00000000.json": {"licence": 1, "penalty": 0}, "b00000005.json": {"licence": 0, "penalty": 1}}}
    assert not (folder / "2026-11-12.json").exists()


def test_the_public_side_keeps_only_allow_listed_fields_whatever_arrives(tmp_path: Path) -> None:
    # Defence in depth: the administration side sends nothing else, but a field that is
    # not on the allow-list must never reach a public page.
    leaky = {**_disclosure(1, "2026-11-12"), "applicant_id_number": "110101199003074258"}
    folder = tmp_path / "disclosure"
    assert public_feed._merge_disclosures(folder, _Bundle(1, [leaky, _disclosure(2, "2026-11-12")]), []) == 2
    records = orjson.loads((folder / "2026-11-12" / "b00000001.json").read_bytes())["records"]
    assert [sorted(r) for r in records] == [sorted(_disclosure(1, "2026-11-12"))] * 2

    event = {"net_id": "NET2026112000000001", "status": "accepted", "internal_note": "x"}
    assert public_feed._allowed(event, "status_events") == {"net_id": "NET2026112000000001", "status": "accepted"}
    clean = {"net_id": "NET2026112000000001", "status": "accepted"}
    assert public_feed._allowed(clean, "status_events") == clean
    assert public_feed._allowed(["not", "a", "record"], "status_events") is None


_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what JSON of orjson holds
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_lookups = st.one_of(st.text("abcdefghijklmnop", min_size=64, max_size=64),
                     st.text("abcdefghijklmnopq\n", min_size=63, max_size=65), _ints)
_net_ids = st.one_of(st.none(), st.from_regex(r"NET[0-9A-Z]{8,24}", fullmatch=True),
                     st.text("NET0123456789AZaz- ", max_size=30), _ints)
_sealed = st.one_of(st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
                    st.text(_B64 + "= -\n", max_size=40), _ints)
_event_ids = st.one_of(_ints, st.integers(min_value=-10, max_value=10),
                       st.text(max_size=3), st.floats(allow_nan=False))
_records = st.one_of(
    st.fixed_dictionaries({  # as status publishing writes them
        "event_id": st.integers(min_value=0, max_value=2**63 - 1),
        "lookup": st.text("abcdefghijklmnop", min_size=64, max_size=64),
        "net_id": st.one_of(st.none(), st.from_regex(r"NET[0-9A-Z]{8,24}", fullmatch=True)),
        "sealed": st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode())}),
    st.fixed_dictionaries({"event_id": _event_ids, "lookup": _lookups, "net_id": _net_ids, "sealed": _sealed},
                          optional={"status": st.just("registered")}),
)


@given(record=_records, sort_keys=st.booleans(), indent=st.booleans())
@settings(max_examples=600)
def test_the_fast_reading_of_a_sealed_line_agrees_with_the_parsed_record(
    record: dict[str, object], sort_keys: bool, indent: bool
) -> None:
    """Where the line reader answers (canonical lines), it gives what the parsed record's
    checks give: the same event, its lookup name as bytes, and the same NET_ID."""
    option = (orjson.OPT_SORT_KEYS if sort_keys else 0) | (orjson.OPT_INDENT_2 if indent else 0)
    line = orjson.dumps(record, option=option)
    parsed = public_feed._sealed_event(orjson.loads(line))
    expected = None if parsed is None else (lookup_bytes(parsed[0]), parsed[1], parsed[2])
    fast = public_feed._raw_sealed_event(line)
    if fast is None:
        return  # not canonical: the parsed record is judged
    event, net_id = fast
    assert event == expected
    if event is not None:
        assert net_id == record["net_id"]


def test_the_administration_sides_lines_take_the_fast_reading() -> None:
    """What status publishing writes (``record_line``) is canonical: no record of a real
    bundle is parsed twice, so the agreement above covers them all."""
    record = {"event_id": 41, "lookup": "p" * 64, "net_id": "NET20261109000042",
              "sealed": base64.b64encode(b"\x00sealed\xff").decode()}
    for net_id in ("NET20261109000042", None):
        fast = public_feed._raw_sealed_event(record_line({**record, "net_id": net_id})[:-1])
        assert fast == ((b"\xff" * 32, 41, b"\x00sealed\xff"), net_id)
    unpadded = public_feed._raw_sealed_event(record_line({**record, "sealed": "QQ"})[:-1])
    assert unpadded is not None and unpadded[0] is None  # matched, but not base64: no event


class _OutboundBundle:
    """Just what the public feed reads of a verified outbound bundle: lines by kind."""

    def __init__(self, sequence: int, lines: dict[str, list[bytes]]) -> None:
        self.manifest = type("Manifest", (), {"sequence": sequence})()
        self._lines = lines

    def iter_records(self, kind: str) -> list[bytes]:
        return self._lines.get(kind, [])


def test_records_the_public_side_refuses_are_kept_with_their_reasons(hub_settings: Any) -> None:
    """A record of an applied bundle that is not what its kind must be is never dropped: its
    line and reason are kept in the quarantine, with one alarm for the bundle, and the rest
    of the bundle is published. Such a record cannot be released, only discarded once the
    administration zone published it again."""
    import json

    from sqlalchemy import select

    from connectors.db import alarms, quarantine, transaction
    from connectors.exchange import sealed_status_line
    from connectors.ferry_control import discard, release
    from hub.zones import zone_engine
    from rules.query_password import status_keys
    from rules.status_seal import Sealer
    from schemas.exceptions import TerminalError

    lookup, key = status_keys("32010000010000000001", "ABCDEFGHJKMNPQRSTUVWXYZAB")
    sealers = {"NET2026112000000001": Sealer(key, lookup)}
    good = [sealed_status_line({"event_id": n, "lookup": lookup, "net_id": "NET2026112000000001", "status": "accepted"},
                               sealers) for n in (1, 2)]
    not_base64 = (b'{"event_id":3,"lookup":"' + lookup.encode() + b'","net_id":"NET2026112000000001",'
                  b'"sealed":"A"}\n')
    bundle = _OutboundBundle(1, {
        "status_events": [good[0], not_base64, b"{not json\n", good[1], b'{"event_id":4,"lookup":"x","net_id":null,"sealed":""}\n'],
        "retractions": [b'["a list"]\n', orjson.dumps({"record_ids": [7]}) + b"\n"],
        "disclosures": [orjson.dumps(_disclosure(8, "2026-11-20")) + b"\n",
                        orjson.dumps({**_disclosure(9, "2026-11-20"), "decided_at": "soon"}) + b"\n"],
    })
    settings = hub_settings
    engine = zone_engine(settings, "internet")
    apply = public_feed.apply_status_bundle(settings.public_root, settings.internet_quarantine)
    with transaction(engine) as connection:
        assert apply(connection, bundle, "outbound#1", "2026-11-20T10:00:00+08:00") == 3  # 2 events, 1 disclosure
    with status_store.opened(settings.public_root, readonly=True) as store:
        assert store is not None and store.counts() == (1, 2)
    with engine.connect() as connection:
        held = connection.execute(select(quarantine).order_by(quarantine.c.id)).all()
        raised = connection.execute(select(alarms).where(alarms.c.kind == "PUBLIC_RECORD_REFUSED")).all()
    assert [(r.kind, r.code, r.record_ids) for r in held] == [
        ("record", "NOT_SEALED", ["outbound#1/status_events/1"]),
        ("record", "NOT_SEALED", ["outbound#1/status_events/2"]),
        ("record", "NOT_SEALED", ["outbound#1/status_events/4"]),
        ("record", "NOT_A_RECORD", ["outbound#1/retractions/0"]),
        ("record", "NO_DECISION_DAY", ["outbound#1/disclosures/1"]),
    ]
    kept = json.loads(Path(held[0].stored_as).read_text("utf-8"))
    assert kept["line"] == not_base64.decode().rstrip("\n") and kept["code"] == "NOT_SEALED"
    assert "base64" in held[0].detail and "status_events record 1" in held[0].detail
    assert len(raised) == 1 and raised[0].detail["refused"] == {"NOT_SEALED": 3, "NOT_A_RECORD": 1, "NO_DECISION_DAY": 1}
    # Reconciliation counts the refused status records: sent, never published.
    from quality.reconciliation import _refused_status_records

    assert _refused_status_records(engine) == 3

    with pytest.raises(TerminalError, match="cannot|nothing here can make it publishable"):
        release(engine, held[0].id, target=settings.internet_root, operator="op")
    discard(engine, held[0].id, reason="published again corrected in outbound#2", operator="op")
    assert not Path(held[0].stored_as).exists()


def test_a_leaf_record_that_is_not_one_is_refused_and_the_others_filed(hub_settings: Any) -> None:
    from connectors.audit_feed import LEAF_KIND, _file_leaves
    from connectors.db import transaction
    from hub.zones import zone_engine

    lookup = "a" * 64
    leaf = {"lookup": lookup, "event_id": 5, "seq": 9, "sealed": base64.b64encode(b"sealed entry").decode()}
    bundle = _OutboundBundle(2, {LEAF_KIND: [orjson.dumps(leaf) + b"\n", orjson.dumps({**leaf, "seq": "9"}) + b"\n",
                                             orjson.dumps({**leaf, "sealed": "%%"}) + b"\n", b"[]\n"]})
    refused: list[public_feed.Refused] = []
    with transaction(zone_engine(hub_settings, "internet")) as connection:
        assert _file_leaves(hub_settings.public_root, bundle, connection, refused) == 1
    assert [(r.kind, r.index, r.code) for r in refused] == [(LEAF_KIND, i, "NOT_A_LEAF") for i in (1, 2, 3)]


def test_a_bundle_of_unsealed_status_records_from_an_earlier_hub_is_refused_whole(hub_settings: Any) -> None:
    from connectors.db import quarantine, transaction
    from hub.zones import zone_engine
    from schemas.exceptions import TerminalError

    plain = orjson.dumps({"event_id": 1, "lookup": "a" * 64, "net_id": "NET2026112000000001", "status": "accepted"})
    apply = public_feed.apply_status_bundle(hub_settings.public_root, hub_settings.internet_quarantine)
    engine = zone_engine(hub_settings, "internet")
    with pytest.raises(TerminalError, match="unsealed status records.*upgrade both zones"), transaction(engine) as c:
        apply(c, _OutboundBundle(1, {"status_events": [plain + b"\n"]}), "outbound#1", "2026-11-20T10:00:00+08:00")
    with engine.connect() as c:
        assert c.execute(quarantine.select()).all() == []  # not a refused record: the bundle waits for the upgrade
    with status_store.opened(hub_settings.public_root, readonly=True) as store:
        assert store is None or store.counts() == (0, 0)  # nothing of it published
