"""The compiled yes/no checks must agree with the full validator, which reports reasons."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import schemas

CATALOGUE = json.loads((Path(__file__).parents[2] / "hub" / "defaults" / "catalogue.json").read_text("utf-8"))


def _mutations(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The item with each top-level field removed, emptied or given a wrong type."""
    variants = []
    for key in item:
        removed = copy.deepcopy(item)
        del removed[key]
        variants.append(removed)
        for wrong in ("", 0, None, [], {"x": 1}):
            changed = copy.deepcopy(item)
            changed[key] = wrong
            variants.append(changed)
    return variants


@pytest.mark.parametrize("category", sorted({item["category"] for item in CATALOGUE}))
def test_power_item_fast_check_agrees_with_the_full_validator(category: str) -> None:
    """power_item refers to the form and per-category schemas (urn:pehub:...): the compiled
    check must resolve them, or a broken item would pass the catalogue's accept path."""
    check = schemas.fast_check("power_item")
    items = [item for item in CATALOGUE if item["category"] == category]
    disagreements = []
    for item in items[:3]:
        for variant in [item, *_mutations(item)]:
            has_errors = bool(list(schemas.errors("power_item", variant)))
            if check(variant) == has_errors:
                disagreements.append((variant.get("code"), sorted(set(item) - set(variant)), has_errors))
    assert not disagreements
    assert any(not check(v) for v in _mutations(items[0]))  # the mutations do break items


def test_every_schema_compiles_for_the_accept_path() -> None:
    for name in schemas.SCHEMA_NAMES:
        assert callable(schemas.fast_check(name))


def test_an_item_the_compiled_check_refuses_is_never_usable() -> None:
    """Python's ``re`` lets ``$`` match before a final newline; jsonschema-rs does not. The
    catalogue must take the compiled check's word and say why."""
    from rules.catalogue import item_problems

    item = {**CATALOGUE[0], "agency_code": CATALOGUE[0]["agency_code"] + "\n"}
    assert list(schemas.errors("power_item", item)) == []  # the full validator sees nothing
    assert [p.split(":")[0] for p in item_problems(item)] == ["/agency_code"]
