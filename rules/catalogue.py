"""The power catalogue (权力事项目录): versioned items, their state machine, the public
catalogue and the catalogue version id.

States: ``A`` 在用 (in use), ``T`` 挂起 (suspended), ``X`` 废止 (abolished, terminal);
解挂 returns a suspended item to ``A``. Every change is a new version of the item, made
by someone, at a time, for a reason, and approved along the full chain (department →
legal office → bureau leader → provincial legal office). Only items in ``A`` accept new
applications; which state counts is the state in force when the application was made.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Final

import jsonschema_rs
import orjson

import schemas
from schemas.exceptions import TerminalError

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
# The approval chain of every catalogue change, in order (审批链).
UNASSIGNED_DEPARTMENT: Final = "未分配处室"
APPROVAL_ROLES: Final = ("department", "legal_office", "bureau_leader", "provincial_legal_office")
APPROVAL_ROLE_NAMES: Mapping[str, str] = {
    "department": "业务处室",
    "legal_office": "法制处",
    "bureau_leader": "局领导",
    "provincial_legal_office": "省法制办",
}
ACTION_NAMES: Mapping[str, str] = {
    "create": "新增",
    "revise": "修订",
    "suspend": "挂起",
    "resume": "解挂",
    "abolish": "废止",
}
# (state before, state after) → action; a pair not listed is an illegal transition.
TRANSITIONS: Mapping[tuple[str | None, str], str] = {
    (None, "A"): "create",
    (None, "T"): "create",  # the province may list an item that is already suspended
    ("A", "A"): "revise",
    ("T", "T"): "revise",
    ("A", "T"): "suspend",
    ("T", "A"): "resume",
    ("A", "X"): "abolish",
    ("T", "X"): "abolish",
}

# Per category: the disclosure fields it must publish, and the item fields its public
# entry carries. Both come from the category's schema (one source of truth).
DISCLOSURE_FIELDS: Mapping[str, tuple[str, ...]] = {
    code: tuple(schemas.load_schema(schemas.category_schema_name(code))["properties"]["disclosure"]["required"])
    for code in CATEGORIES
}
PUBLIC_FIELDS: Mapping[str, tuple[str, ...]] = {
    code: tuple(schemas.load_schema(schemas.category_schema_name(code))["x-public-fields"])
    for code in CATEGORIES
}


class CatalogueError(TerminalError, ValueError):
    """A catalogue document or change that the hub must not use (terminal: fix the data)."""


class TransitionError(CatalogueError):
    """A state change the catalogue's state machine does not allow."""


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
    effective_from: datetime | None = None
    form_check: Callable[[Any], bool] | None = field(default=None, compare=False, repr=False)

    @property
    def department(self) -> str:
        """The office that handles the item's cases (承办处室, the document's ``office``): the
        department supervision counts its clocks and alerts under."""
        return str(self.document.get("office") or UNASSIGNED_DEPARTMENT)

    @property
    def accepts_applications(self) -> bool:
        return self.state == "A"

    # Derived from ``materials`` once, for the accept path.
    media_types_of: Mapping[str, frozenset[str]] = field(init=False, compare=False, repr=False)
    required_materials: frozenset[str] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "media_types_of", {r.material_code: frozenset(r.media_types) for r in self.materials}
        )
        object.__setattr__(
            self, "required_materials", frozenset(r.material_code for r in self.materials if r.required)
        )

    @property
    def form_schema(self) -> Mapping[str, Any] | None:
        found: Mapping[str, Any] | None = self.document.get("form_schema")
        return found


@dataclass(frozen=True)
class Catalogue:
    """The approved catalogue of one deployment, addressed by power code.

    ``items`` holds each item's current version; ``history`` every version of each
    item, oldest first, each with the time it took effect.
    """

    items: Mapping[str, PowerItem]
    version: str
    history: Mapping[str, tuple[PowerItem, ...]] = field(default_factory=dict)
    _starts: Mapping[str, tuple[datetime, ...]] = field(default_factory=dict, repr=False)

    def get(self, code: str) -> PowerItem | None:
        return self.items.get(code)

    def departments(self) -> dict[str, str]:
        """Each item's department by power code."""
        return {code: item.department for code, item in self.items.items()}

    def in_use(self) -> list[PowerItem]:
        return [item for item in self.items.values() if item.accepts_applications]

    def item_at(self, code: str, moment: datetime) -> PowerItem | None:
        """The version of ``code`` in force at ``moment``; None if the item did not exist
        then (or is unknown). Items without a history are in force at any time."""
        starts = self._starts.get(code)
        if starts is None:
            return self.items.get(code)
        index = bisect.bisect_right(starts, moment)
        return self.history[code][index - 1] if index else None


@dataclass(frozen=True)
class Approval:
    """One step of the approval chain: which office, who, when, and their opinion."""

    role: str
    approver: str
    at: str
    opinion: str = ""

    def as_dict(self) -> dict[str, str]:
        found = {"role": self.role, "approver": self.approver, "at": self.at}
        if self.opinion:
            found["opinion"] = self.opinion
        return found


@dataclass(frozen=True)
class Transition:
    """One recorded catalogue change: a new version of ``code`` and how it came about."""

    code: str
    action: str
    from_state: str | None
    to_state: str
    from_version: int | None
    to_version: int
    by: str
    at: datetime
    reason: str
    approvals: tuple[Approval, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "action": self.action,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "by": self.by,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "approvals": [a.as_dict() for a in self.approvals],
        }


def transition_action(from_state: str | None, to_state: str) -> str:
    """The action that takes an item from ``from_state`` (None: new item) to ``to_state``.

    Raises ``TransitionError`` for a transition the state machine does not allow.
    """
    action = TRANSITIONS.get((from_state, to_state))
    if action is not None:
        return action
    if to_state not in STATES:
        raise TransitionError(f"unknown state {to_state!r}; states are {', '.join(STATES)}")
    if from_state == "X":
        raise TransitionError(
            f"item is abolished (废止); an abolished item cannot become {to_state} ({STATES[to_state]})"
        )
    if from_state is None:
        raise TransitionError(f"a new item cannot start in state {to_state} ({STATES[to_state]})")
    raise TransitionError(f"illegal transition {from_state} → {to_state}")


def catalogue_version(documents: Iterable[Mapping[str, Any]]) -> str:
    """A content-derived catalogue id: SHA-256 over the canonical item documents."""
    digest = hashlib.sha256()
    for document in sorted(documents, key=lambda d: (str(d["code"]), int(d["version"]))):
        digest.update(orjson.dumps(document, option=orjson.OPT_SORT_KEYS))
        digest.update(b"\n")
    return "cat-" + digest.hexdigest()[:16]


def content_digest(document: Mapping[str, Any]) -> str:
    """SHA-256 of an item's content without its version: equal digests mean no change."""
    content = {k: v for k, v in document.items() if k != "version"}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def item_problems(document: Any) -> list[str]:
    """Everything wrong with one item version: its schema (with its category's
    disclosure fields), its time limits and its form schema. Empty means usable."""
    if not schemas.fast_check("power_item")(document):
        # The compiled check's own findings where the full validator finds none (the two
        # differ at the edges): an item it refuses is never usable.
        found = list(schemas.errors("power_item", document)) or list(schemas.fast_errors("power_item", document))
        return [f"{e.path or '/'}: {e.message}" for e in found]
    problems = []
    if document["promised_limit_days"] > document["statutory_limit_days"]:
        problems.append(
            f"/promised_limit_days: promised limit exceeds the statutory limit "
            f"({document['promised_limit_days']} > {document['statutory_limit_days']})"
        )
    codes = [m["material_code"] for m in document["materials"]]
    if len(codes) != len(set(codes)):
        problems.append("/materials: a material code is listed twice")
    if "discretion" in document:
        from rules.discretion import standard_problems

        if document["category"] != "CF":
            problems.append(f"/discretion: only penalty (CF) items have a discretion standard, not {document['category']}")
        problems.extend(standard_problems(document["discretion"]))
    if "form_schema" in document:
        try:
            _compile_form(document["form_schema"])
        except (ValueError, jsonschema_rs.ValidationError) as error:
            problems.append(f"/form_schema: not a usable JSON Schema: {error}")
    return problems


def _compile_form(form_schema: Mapping[str, Any]) -> Callable[[Any], bool]:
    check: Callable[[Any], bool] = jsonschema_rs.validator_for(
        dict(form_schema), validate_formats=True
    ).is_valid
    return check


def _power_item(doc: Mapping[str, Any], effective_from: datetime | None) -> PowerItem:
    return PowerItem(
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
        effective_from=effective_from,
        form_check=_compile_form(doc["form_schema"]) if "form_schema" in doc else None,
    )


def build_catalogue(documents: Iterable[Mapping[str, Any]]) -> Catalogue:
    """Check each item document and index the catalogue by code (no history: every item
    is taken as in force at any time).

    Raises ``CatalogueError`` naming every broken item; a catalogue is used whole or not at all.
    """
    docs = list(documents)
    problems: list[str] = []
    items: dict[str, PowerItem] = {}
    for index, doc in enumerate(docs):
        label = f"item {index} ({doc.get('code', '?') if isinstance(doc, Mapping) else '?'})"
        found = item_problems(doc)
        if found:
            problems += [f"{label}{p}" for p in found]
            continue
        if doc["code"] in items:
            problems.append(f"{label}: duplicate power code")
            continue
        items[doc["code"]] = _power_item(doc, None)
    if problems:
        raise CatalogueError("catalogue rejected:\n" + "\n".join(problems))
    return Catalogue(items=items, version=catalogue_version(docs))


def catalogue_from_versions(versions: Iterable[tuple[Mapping[str, Any], datetime]]) -> Catalogue:
    """A catalogue with history from every stored version of every item and the time each
    took effect. The current version of an item is its highest version number."""
    by_code: dict[str, list[PowerItem]] = {}
    for doc, effective_from in versions:
        found = item_problems(doc)
        if found:
            raise CatalogueError(f"stored item {doc.get('code')} v{doc.get('version')}: {found[0]}")
        by_code.setdefault(doc["code"], []).append(_power_item(doc, effective_from))
    history: dict[str, tuple[PowerItem, ...]] = {}
    starts: dict[str, tuple[datetime, ...]] = {}
    for code, found_versions in by_code.items():
        ordered = tuple(sorted(found_versions, key=lambda item: item.version))
        moments = tuple(item.effective_from for item in ordered if item.effective_from is not None)
        if len(moments) != len(ordered) or list(moments) != sorted(moments):
            raise CatalogueError(f"versions of {code} are not in time order")
        history[code], starts[code] = ordered, moments
    items = {code: versions_[-1] for code, versions_ in history.items()}
    return Catalogue(
        items=items,
        version=catalogue_version(item.document for item in items.values()),
        history=history,
        _starts=starts,
    )


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _approval_day(text: str) -> date:
    return date.fromisoformat(text[:10])


def plan_change(
    current: PowerItem | None, entry: Mapping[str, Any]
) -> tuple[dict[str, Any], Transition] | None:
    """The next version of an item and its transition record for one catalogue change
    (``{"item": ..., "change": ...}``, see the catalogue-change schema), or None when
    the item is already exactly so (an import applied twice changes nothing).

    Raises ``CatalogueError`` (or ``TransitionError``) saying what is wrong.
    """
    problems = [f"{e.path or '/'}: {e.message}" for e in schemas.errors("catalogue_change", entry)]
    if problems:
        raise CatalogueError("; ".join(problems))
    proposed = {k: v for k, v in entry["item"].items() if k != "version"}
    if current is not None and content_digest(proposed) == content_digest(current.document):
        return None
    change = entry["change"]
    at = _moment(change["at"])
    if at.tzinfo is None:
        raise CatalogueError("/change/at: the change time needs a UTC offset")
    approvals = tuple(
        Approval(a["role"], a["approver"], a["at"], a.get("opinion", "")) for a in change["approvals"]
    )
    days = [_approval_day(a.at) for a in approvals]
    if days != sorted(days):
        raise CatalogueError("/change/approvals: the approval chain is not in time order")
    if days[-1] > at.date():
        raise CatalogueError(
            "/change/at: the change takes effect before its last approval "
            f"({APPROVAL_ROLE_NAMES['provincial_legal_office']} {approvals[-1].at})"
        )
    to_state = proposed.get("state")
    if not isinstance(to_state, str):
        raise CatalogueError("/item/state: the item has no state")
    from_state = current.state if current is not None else None
    action = transition_action(from_state, to_state)
    if current is not None and current.effective_from is not None and at < current.effective_from:
        raise CatalogueError(
            f"/change/at: the change ({at.isoformat()}) predates the item's current version "
            f"({current.effective_from.isoformat()})"
        )
    version = current.version + 1 if current is not None else 1
    document = {"code": proposed["code"], "version": version, **proposed}
    found = item_problems(document)
    if found:
        raise CatalogueError("; ".join(f"/item{p}" for p in found))
    transition = Transition(
        code=document["code"],
        action=action,
        from_state=from_state,
        to_state=to_state,
        from_version=current.version if current is not None else None,
        to_version=version,
        by=change["by"],
        at=at,
        reason=change["reason"],
        approvals=approvals,
    )
    return document, transition


def public_entry(item: PowerItem) -> dict[str, Any]:
    """The public catalogue entry of an item (权力事项公开): its category's public fields
    and exactly its category's disclosure fields."""
    document = item.document
    entry = {name: document[name] for name in PUBLIC_FIELDS[item.category] if name in document}
    disclosure = document.get("disclosure", {})
    entry["disclosure"] = {name: disclosure[name] for name in DISCLOSURE_FIELDS[item.category]}
    return entry


def public_catalogue(catalogue: Catalogue) -> list[dict[str, Any]]:
    """Every in-use item's public entry, ordered by code."""
    return [public_entry(item) for item in sorted(catalogue.in_use(), key=lambda i: i.code)]
