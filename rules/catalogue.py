"""The power catalogue (权力事项目录): items, their states and the catalogue version id.

Only items in state ``A`` (在用) accept new applications; ``T`` (挂起) and ``X`` (废止)
refuse them, each with its own reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

import schemas

CATEGORIES: Mapping[str, str] = {
    "XK": "行政许可",
    "CF": "行政处罚",
    "ZS": "行政征收",
    "QZ": "行政强制",
    "JL": "行政奖励",
    "QR": "行政确认",
    "CJ": "行政裁决",
    "QT": "其他行政权力",
    "SP": "非行政许可审批",
    "GF": "行政给付",
    "ZY": "行政征用",
}
STATES: Mapping[str, str] = {"A": "在用", "T": "挂起", "X": "废止"}
# Per category: the public disclosure fields (公开要素) an item must fill, besides code,
# name, legal basis, office, place, phone and supervision phone (DOMAIN.md).
_GENERAL_DISCLOSURE = ("procedure", "service_guide", "flow_chart")
DISCLOSURE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "XK": ("conditions", "fee", "flow_chart", "service_guide", "forms", "faq"),
    "CF": ("procedure", "penalty_kinds", "time_limit"),
    "ZS": ("conditions", "procedure", "implementing_body"),
    "QZ": ("procedure", "time_limit"),
    **{code: _GENERAL_DISCLOSURE for code in ("JL", "QR", "CJ", "QT", "SP", "GF", "ZY")},
}


class CatalogueError(ValueError):
    """A catalogue document that the hub must not use."""


@dataclass(frozen=True)
class MaterialRule:
    """One entry of an item's material list (申请材料)."""

    material_code: str
    name: str
    required: bool
    media_types: tuple[str, ...]


@dataclass(frozen=True)
class PowerItem:
    """One version of a power item (行政权力事项)."""

    code: str
    version: int
    name: str
    category: str
    state: str
    agency_code: str
    statutory_limit_days: int
    promised_limit_days: int
    materials: tuple[MaterialRule, ...]
    document: Mapping[str, Any]

    @property
    def accepts_applications(self) -> bool:
        return self.state == "A"


@dataclass(frozen=True)
class Catalogue:
    """The approved catalogue of one deployment, addressed by power code."""

    items: Mapping[str, PowerItem]
    version: str

    def get(self, code: str) -> PowerItem | None:
        return self.items.get(code)

    def in_use(self) -> list[PowerItem]:
        return [item for item in self.items.values() if item.accepts_applications]


def catalogue_version(documents: Iterable[Mapping[str, Any]]) -> str:
    """A content-derived catalogue id: SHA-256 over the canonical item documents."""
    digest = hashlib.sha256()
    for document in sorted(documents, key=lambda d: (str(d["code"]), int(d["version"]))):
        digest.update(orjson.dumps(document, option=orjson.OPT_SORT_KEYS))
        digest.update(b"\n")
    return "cat-" + digest.hexdigest()[:16]


def build_catalogue(documents: Iterable[Mapping[str, Any]]) -> Catalogue:
    """Check each item document and index the catalogue by code.

    Raises ``CatalogueError`` naming every broken item; a catalogue is used whole or not at all.
    """
    docs = list(documents)
    problems: list[str] = []
    items: dict[str, PowerItem] = {}
    for index, doc in enumerate(docs):
        label = f"item {index} ({doc.get('code', '?')})"
        for error in schemas.errors("power_item", doc):
            problems.append(f"{label}{error.path}: {error.message}")
        if problems and problems[-1].startswith(label):
            continue
        if doc["promised_limit_days"] > doc["statutory_limit_days"]:
            problems.append(f"{label}: promised limit exceeds the statutory limit")
        if doc["code"] in items:
            problems.append(f"{label}: duplicate power code")
            continue
        items[doc["code"]] = PowerItem(
            code=doc["code"],
            version=doc["version"],
            name=doc["name"],
            category=doc["category"],
            state=doc["state"],
            agency_code=doc["agency_code"],
            statutory_limit_days=doc["statutory_limit_days"],
            promised_limit_days=doc["promised_limit_days"],
            materials=tuple(
                MaterialRule(m["material_code"], m["name"], m["required"], tuple(m["media_types"]))
                for m in doc["materials"]
            ),
            document=doc,
        )
    if problems:
        raise CatalogueError("catalogue rejected:\n" + "\n".join(problems))
    return Catalogue(items=items, version=catalogue_version(docs))
