"""The catalogue model: category disclosure rules, the state machine, versions with
history, and the public entry of each item."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import schemas
from rules.catalogue import (
    CATEGORIES,
    DISCLOSURE_FIELDS,
    STATES,
    TRANSITIONS,
    CatalogueError,
    TransitionError,
    build_catalogue,
    catalogue_from_versions,
    item_problems,
    plan_change,
    public_catalogue,
    public_entry,
    transition_action,
)

CATALOGUE_FILE = Path(__file__).parents[2] / "hub" / "defaults" / "catalogue.json"
DOCUMENTS: list[dict[str, Any]] = json.loads(CATALOGUE_FILE.read_text("utf-8"))
CHAIN = [
    {"role": "department", "approver": "王建", "at": "2026-03-02"},
    {"role": "legal_office", "approver": "李敏", "at": "2026-03-03"},
    {"role": "bureau_leader", "approver": "陈刚", "at": "2026-03-04"},
    {"role": "provincial_legal_office", "approver": "赵磊", "at": "2026-03-05"},
]


def document_of(category: str) -> dict[str, Any]:
    return copy.deepcopy(next(d for d in DOCUMENTS if d["category"] == category))


def change(at: str = "2026-03-06T09:00:00+08:00", **overrides: Any) -> dict[str, Any]:
    return {"by": "法制处 周洁", "at": at, "reason": "年度目录调整", "approvals": copy.deepcopy(CHAIN), **overrides}


def entry(item: dict[str, Any], **change_overrides: Any) -> dict[str, Any]:
    return {"item": {k: v for k, v in item.items() if k != "version"}, "change": change(**change_overrides)}


def test_demo_catalogue_is_realistic() -> None:
    catalogue = build_catalogue(DOCUMENTS)
    counts = {c: sum(1 for d in DOCUMENTS if d["category"] == c) for c in CATEGORIES}
    assert len(catalogue.items) >= 40
    assert all(counts[c] >= 1 for c in CATEGORIES)
    assert (counts["XK"], counts["CF"], counts["QZ"]) == (8, 7, 24)
    assert [d["state"] for d in DOCUMENTS].count("T") >= 1


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_each_category_requires_its_disclosure_fields(category: str) -> None:
    document = document_of(category)
    assert item_problems(document) == []
    required = DISCLOSURE_FIELDS[category]
    assert required == tuple(
        schemas.load_schema(schemas.category_schema_name(category))["properties"]["disclosure"]["required"]
    )
    for field in required:
        broken = copy.deepcopy(document)
        del broken["disclosure"][field]
        problems = item_problems(broken)
        assert any(field in p for p in problems), (category, field, problems)


def test_disclosure_fields_follow_the_domain_table() -> None:
    assert set(DISCLOSURE_FIELDS["XK"]) == {"conditions", "fee", "flow_chart", "service_guide", "forms", "faq"}
    assert set(DISCLOSURE_FIELDS["CF"]) == {"procedure", "penalty_kinds", "time_limit"}
    assert set(DISCLOSURE_FIELDS["ZS"]) == {"conditions", "procedure", "implementing_body"}
    assert set(DISCLOSURE_FIELDS["QZ"]) == {"procedure", "time_limit"}
    for category in ("JL", "QR", "CJ", "QT", "SP", "GF", "ZY"):
        assert set(DISCLOSURE_FIELDS[category]) == {"procedure", "service_guide", "flow_chart"}


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_public_entry_has_exactly_the_category_fields(category: str) -> None:
    document = document_of(category)
    other = next(c for c in CATEGORIES if set(DISCLOSURE_FIELDS[c]) - set(DISCLOSURE_FIELDS[category]))
    item = build_catalogue([document]).items[document["code"]]
    entry = public_entry(item)
    assert set(entry["disclosure"]) == set(DISCLOSURE_FIELDS[category])
    assert not set(DISCLOSURE_FIELDS[other]) - set(DISCLOSURE_FIELDS[category]) & set(entry["disclosure"])
    assert "materials" not in entry and "state" not in entry and "agency_code" not in entry
    assert ("promised_limit_days" in entry) == (category == "XK")
    assert list(schemas.errors("public_catalogue_item", entry)) == []


def test_a_disclosure_field_of_another_category_is_refused() -> None:
    document = document_of("QZ")
    document["disclosure"]["faq"] = "无"
    assert any("faq" in p for p in item_problems(document))


def test_public_catalogue_lists_only_items_in_use() -> None:
    catalogue = build_catalogue(DOCUMENTS)
    listed = {e["code"] for e in public_catalogue(catalogue)}
    assert listed == {d["code"] for d in DOCUMENTS if d["state"] == "A"}


def test_promised_limit_never_above_statutory_and_codes_unique() -> None:
    document = document_of("XK")
    document["promised_limit_days"] = document["statutory_limit_days"] + 1
    assert any("promised limit exceeds" in p for p in item_problems(document))
    with pytest.raises(CatalogueError, match="duplicate power code"):
        build_catalogue([document_of("XK"), document_of("XK")])


ALL_PAIRS = [(a, b) for a in (None, *STATES) for b in STATES]


@pytest.mark.parametrize(("before", "after"), ALL_PAIRS)
def test_every_transition_is_allowed_or_refused(before: str | None, after: str) -> None:
    legal = {
        (None, "A"): "create", (None, "T"): "create", ("A", "A"): "revise", ("T", "T"): "revise",
        ("A", "T"): "suspend", ("T", "A"): "resume", ("A", "X"): "abolish", ("T", "X"): "abolish",
    }
    assert dict(TRANSITIONS) == legal
    if (before, after) in legal:
        assert transition_action(before, after) == legal[(before, after)]
    else:
        with pytest.raises(TransitionError):
            transition_action(before, after)


@pytest.mark.parametrize(("before", "after"), ALL_PAIRS)
def test_plan_change_applies_the_state_machine(before: str | None, after: str) -> None:
    base = document_of("XK")
    current = None
    if before is not None:
        base["state"] = before
        current = catalogue_from_versions(
            [(base, datetime.fromisoformat("2026-01-01T00:00:00+08:00"))]
        ).items[base["code"]]
    proposed = {**base, "state": after, "name": base["name"] + "（2026年版）"}
    if (before, after) not in TRANSITIONS:
        with pytest.raises(TransitionError):
            plan_change(current, entry(proposed))
        return
    planned = plan_change(current, entry(proposed))
    assert planned is not None
    document, transition = planned
    assert document["version"] == (1 if before is None else base["version"] + 1)
    assert (transition.from_state, transition.to_state) == (before, after)
    assert transition.by == "法制处 周洁" and transition.reason == "年度目录调整"
    assert [a.role for a in transition.approvals] == [
        "department", "legal_office", "bureau_leader", "provincial_legal_office"
    ]


def test_abolished_is_terminal_with_a_clear_error() -> None:
    base = {**document_of("XK"), "state": "X"}
    current = catalogue_from_versions([(base, datetime.fromisoformat("2026-01-01T00:00:00+08:00"))]).items[base["code"]]
    with pytest.raises(TransitionError, match="abolished"):
        plan_change(current, entry({**base, "state": "A"}))


def test_same_content_is_no_change() -> None:
    base = document_of("XK")
    current = catalogue_from_versions([(base, datetime.fromisoformat("2026-01-01T00:00:00+08:00"))]).items[base["code"]]
    assert plan_change(current, entry(base)) is None


@pytest.mark.parametrize(
    "broken",
    [
        {"approvals": CHAIN[:3]},  # provincial legal office missing
        {"approvals": [CHAIN[1], CHAIN[0], CHAIN[2], CHAIN[3]]},  # out of order
        {"approvals": [CHAIN[0], CHAIN[1], {**CHAIN[2], "at": "2026-03-01"}, CHAIN[3]]},  # dates backwards
        {"at": "2026-03-04T09:00:00+08:00"},  # in force before the last approval
        {"by": ""},
        {"reason": ""},
    ],
)
def test_a_change_needs_who_when_why_and_the_full_approval_chain(broken: dict[str, Any]) -> None:
    with pytest.raises(CatalogueError):
        plan_change(None, entry(document_of("XK"), **broken))


def test_a_change_cannot_predate_the_current_version() -> None:
    base = document_of("XK")
    current = catalogue_from_versions([(base, datetime.fromisoformat("2026-04-01T00:00:00+08:00"))]).items[base["code"]]
    with pytest.raises(CatalogueError, match="predates"):
        plan_change(current, entry({**base, "state": "T"}))


def test_item_at_follows_the_history() -> None:
    first = document_of("XK")
    second = {**first, "version": 2, "state": "T"}
    third = {**first, "version": 3, "state": "A"}
    catalogue = catalogue_from_versions(
        [
            (first, datetime.fromisoformat("2026-01-01T00:00:00+08:00")),
            (second, datetime.fromisoformat("2026-06-01T00:00:00+08:00")),
            (third, datetime.fromisoformat("2026-09-01T00:00:00+08:00")),
        ]
    )
    code = first["code"]
    assert catalogue.item_at(code, datetime.fromisoformat("2025-12-31T23:59:59+08:00")) is None
    assert catalogue.item_at(code, datetime.fromisoformat("2026-05-31T23:59:59+08:00")).state == "A"  # type: ignore[union-attr]
    assert catalogue.item_at(code, datetime.fromisoformat("2026-06-01T00:00:00+08:00")).state == "T"  # type: ignore[union-attr]
    assert catalogue.item_at(code, datetime.fromisoformat("2026-10-01T00:00:00+08:00")).version == 3  # type: ignore[union-attr]
    assert catalogue.items[code].version == 3


def test_form_schema_must_be_a_usable_schema() -> None:
    document = document_of("SP")
    document["form_schema"] = {"type": "object", "properties": {"x": {"type": "strin", "title": "X"}}}
    assert any(p.startswith("/form_schema") or "form_schema" in p for p in item_problems(document))
