"""Every example in docs/schemas.md validates against the schema its code fence names,
and every schema has an example."""

from __future__ import annotations

import json
import re
from pathlib import Path

import schemas

DOC = Path(__file__).parents[2] / "docs" / "schemas.md"
EXAMPLE = re.compile(r"```json schema=([a-z_]+)\n(.*?)\n```", re.DOTALL)


def test_every_example_validates_and_every_schema_has_one() -> None:
    examples = EXAMPLE.findall(DOC.read_text("utf-8"))
    assert {name for name, _ in examples} == set(schemas.SCHEMA_NAMES)
    for name, text in examples:
        errors = [f"{e.path}: {e.message}" for e in schemas.errors(name, json.loads(text))]
        assert errors == [], (name, errors)


def test_a_broken_example_would_be_caught() -> None:
    name, text = next((n, t) for n, t in EXAMPLE.findall(DOC.read_text("utf-8")) if n == "power_item_cf")
    document = json.loads(text)
    del document["disclosure"]["penalty_kinds"]
    assert list(schemas.errors(name, document))
