"""The legal documents (法律文书) the hub knows the content of: 受理通知书, 不予受理决定书 and
补正告知书, built from a case's facts as plain values (``LegalDocument``). Rendering them
(PDF) and storing them is ``connectors.legal_documents``'s work.

The documents are addressed to the applicant, so they carry the applicant's name; they
never leave the administration zone. A document that cannot be made as the law requires
(a non-acceptance decision without reasons, a correction notice without the items to
correct) is refused with ``DocumentRefused``, which the caller turns into a steward
finding: it is never skipped silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from schemas.exceptions import TerminalError

# Raised whenever the layout or the wording of a document changes, so a stored document
# says which template made it.
TEMPLATE_VERSION: Final = "2026.1"

ACCEPTANCE_NOTICE: Final = "acceptance_notice"
NON_ACCEPTANCE_DECISION: Final = "non_acceptance_decision"
CORRECTION_NOTICE: Final = "correction_notice"
TITLES: Final[Mapping[str, str]] = {
    ACCEPTANCE_NOTICE: "受理通知书",
    NON_ACCEPTANCE_DECISION: "不予受理决定书",
    CORRECTION_NOTICE: "补正告知书",
}
# The status change (status_outbox.status) each document answers.
KIND_OF_STATUS: Final[Mapping[str, str]] = {
    "accepted": ACCEPTANCE_NOTICE,
    "not_accepted": NON_ACCEPTANCE_DECISION,
    "correction_requested": CORRECTION_NOTICE,
}
DOCUMENT_STATUSES: Final = tuple(KIND_OF_STATUS)
# The word of the document number (文号) of each kind: 〔2026〕受字第0123号.
NUMBER_WORDS: Final[Mapping[str, str]] = {
    ACCEPTANCE_NOTICE: "受",
    NON_ACCEPTANCE_DECISION: "不受",
    CORRECTION_NOTICE: "补",
}
# Categories acted on ex officio (依职权): a penalty's 立案 is no acceptance of an
# application, so these get none of the three documents.
EX_OFFICIO_CATEGORIES: Final = frozenset({"CF", "QZ", "ZS", "ZY"})
LICENSING: Final = "XK"
LIMIT_UNITS: Final[Mapping[str, str]] = {
    "working_days": "个工作日",
    "calendar_days": "日",
    "months": "个月",
    "years": "年",
}

LICENSING_LAW: Final = "《中华人民共和国行政许可法》"
# Standard wording of the remedies (行政复议法 第二十条: sixty days; 行政诉讼法 第四十六条: six
# months), in every decision that refuses the applicant something.
REMEDIES: Final = (
    "如不服本决定，可以自收到本决定书之日起六十日内依法申请行政复议，"
    "或者自收到本决定书之日起六个月内依法向人民法院提起行政诉讼。"
)
SEAL: Final = "（本机关专用印章）"


class DocumentRefused(TerminalError, ValueError):
    """A document the hub must not issue as it stands (terminal: the case's data must be
    completed first). ``code``: ``NO_REASONS``, ``NO_CORRECTION_ITEMS``, ``MISSING_FACTS``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class CaseFacts:
    """What the hub knows of a case at one status change: the change (event id, status,
    time, opinion and reasons), the application (case number, applicant, when it was made)
    and the catalogue item it was made under (name, category, legal basis, agency, office,
    place, phone, time limits). ``occurrence``: the how-many-th change to this status of
    the case this is (a case can be asked for corrections twice)."""

    event_id: int
    case_number: str
    status: str
    event_at: datetime
    applied_at: datetime
    applicant_name: str
    item_name: str
    category: str
    legal_basis: str
    agency_name: str
    opinion: str | None = None
    reasons: tuple[str, ...] = ()
    office: str | None = None
    place: str | None = None
    phone: str | None = None
    promised_limit: int | None = None
    statutory_limit: int | None = None
    limit_unit: str | None = None
    occurrence: int = 1


@dataclass(frozen=True)
class LegalDocument:
    """The content of one document: title, number, addressee, body paragraphs, the numbered
    items (the corrections of a 补正告知书), the legal basis of the item, the closing
    paragraphs, and the issuing agency and date."""

    kind: str
    event_id: int
    case_number: str
    title: str
    number: str
    addressee: str
    paragraphs: tuple[str, ...]
    items: tuple[str, ...]
    closing: tuple[str, ...]
    legal_basis: str
    agency_name: str
    issued_on: date
    contact: tuple[str, ...]
    template_version: str = TEMPLATE_VERSION

    def text(self) -> str:
        """Every line of the document in reading order (for checks and the command line)."""
        lines = [self.title, self.number, self.addressee, *self.paragraphs]
        lines += [f"{n}. {item}" for n, item in enumerate(self.items, 1)]
        lines += [*self.closing, f"事项设定依据：{self.legal_basis}", *self.contact]
        lines += [self.agency_name, chinese_date(self.issued_on)]
        return "\n".join(lines)


def document_kind(status: str, category: str | None) -> str | None:
    """The document a status change calls for, or None (another status, or an item acted
    on ex officio, such as a penalty's 立案)."""
    if category in EX_OFFICIO_CATEGORIES:
        return None
    return KIND_OF_STATUS.get(status)


def chinese_date(day: date) -> str:
    return f"{day.year}年{day.month}月{day.day}日"


def document_number(case_number: str, kind: str, year: int, occurrence: int = 1) -> str:
    """The document number (文号), from the case number, the kind, the year of issue and,
    from the second document of a kind for a case on, its ordinal: ``〔2026〕受字第0123号``,
    ``〔2026〕补字第0123-2号``. The case's sequence (the digits after the 10-character agency
    code) keeps numbers of one agency apart."""
    sequence = case_number[10:] if len(case_number) > 10 else case_number
    serial = str(int(sequence)).zfill(4) if sequence.isdigit() else sequence
    if occurrence > 1:
        serial += f"-{occurrence}"
    return f"〔{year}〕{NUMBER_WORDS[kind]}字第{serial}号"


# Conclusions a non-acceptance opinion ends with; what is left is its reasons.
_CONCLUSION = re.compile(r"[，,。；;\s]*(本机关)?(决定|依法)?不予受理[。.！!]?\s*$")
_SUBSTANCE = re.compile(r"[\w\u4e00-\u9fff]")


def non_acceptance_reasons(opinion: str | None, reasons: Sequence[str] = ()) -> str:
    """The reasons of a non-acceptance: the opinion without its conclusion (不予受理), and
    the reasons recorded with the change; ``DocumentRefused`` (``NO_REASONS``) when nothing
    of substance is left."""
    parts: list[str] = []
    if opinion is not None:
        text = _CONCLUSION.sub("", opinion.strip())
        if _SUBSTANCE.search(text):
            parts.append(text.rstrip("。.；;，, "))
    parts += [r.strip().rstrip("。.；;，, ") for r in reasons if _SUBSTANCE.search(r)]
    if not parts:
        raise DocumentRefused(
            "NO_REASONS",
            "不予受理决定书必须说明理由 · a non-acceptance decision must give its reasons; "
            "the opinion of the status change gives none",
        )
    return "；".join(dict.fromkeys(parts))


# An introduction such as 请补正： or 需补正的材料如下：, cut off before the items.
_INTRODUCTION = re.compile(r"^[^：:]*补正[^：:]*[：:]")
# Item separators: line breaks, semicolons, and enumerators (1. 1、 （1） (1) ①).
_SEPARATORS = re.compile(r"[\n；;]+|[（(]\d+[)）]|[①-⑳]|(?:^|(?<=[，,。：:；;\s]))\d+[.、．](?!\d)")
# The closing request of a correction opinion (请一次性补正后重新提交), not an item.
_CLOSING_REQUEST = re.compile(r"[，,。]?\s*请[^，,。；;]*(补正|提交|补齐)[^，,。；;]*[。.]?\s*$")


def correction_items(opinion: str | None) -> tuple[str, ...]:
    """The items to correct, as the opinion lists them (行政许可法 第三十二条: all at once):
    the text after an introduction (``请补正：``), split at line breaks, semicolons and
    enumerators, without the closing request (``请一次性补正后重新提交``);
    ``DocumentRefused`` (``NO_CORRECTION_ITEMS``) when it names none."""
    text = (opinion or "").strip()
    text = _INTRODUCTION.sub("", text, count=1)
    items: list[str] = []
    for piece in _SEPARATORS.split(text):
        piece = _CLOSING_REQUEST.sub("", piece.strip()).strip(" 。.，,")
        if _SUBSTANCE.search(piece):
            items.append(piece)
    if not items:
        raise DocumentRefused(
            "NO_CORRECTION_ITEMS",
            "补正告知书必须一次性告知需要补正的全部内容 · a correction notice must list every item "
            "to correct; the opinion of the status change lists none",
        )
    return tuple(items)


def _require(facts: CaseFacts) -> None:
    missing = [
        name for name in ("case_number", "applicant_name", "item_name", "agency_name", "legal_basis")
        if not str(getattr(facts, name) or "").strip()
    ]
    if missing:
        raise DocumentRefused("MISSING_FACTS", "the case lacks " + ", ".join(missing))


def _opening(facts: CaseFacts) -> str:
    return (
        f"你（单位）于{chinese_date(facts.applied_at.date())}提出的{facts.item_name}申请"
        f"（办件流水号：{facts.case_number}）"
    )


def _article_32(facts: CaseFacts, item: str = "") -> str:
    """The legal ground of the decision on an application: Art. 32 of the licensing law for
    licences, the laws and regulations in general for other items applied for."""
    if facts.category == LICENSING:
        return f"根据{LICENSING_LAW}第三十二条第一款{item}的规定"
    return "根据有关法律、法规的规定"


def _time_limit(facts: CaseFacts) -> str | None:
    unit = LIMIT_UNITS.get(facts.limit_unit or "working_days")
    if facts.promised_limit is None or unit is None:
        return None
    sentence = f"本机关将自受理之日起{facts.promised_limit}{unit}内作出决定"
    if facts.statutory_limit is not None and facts.statutory_limit != facts.promised_limit:
        sentence += f"（法定办理时限{facts.statutory_limit}{unit}）"
    return sentence + "。"


def _contact(facts: CaseFacts) -> tuple[str, ...]:
    lines = []
    if facts.office:
        lines.append(f"承办机构：{facts.office}")
    if facts.place:
        lines.append(f"办理地点：{facts.place}")
    if facts.phone:
        lines.append(f"联系电话：{facts.phone}")
    return tuple(lines)


def build_document(facts: CaseFacts) -> LegalDocument:
    """The document the status change of ``facts`` calls for. ``DocumentRefused`` when the
    facts do not allow it (see the module docstring); ``ValueError`` for a status or an
    item that calls for no document (``document_kind``)."""
    kind = document_kind(facts.status, facts.category)
    if kind is None:
        raise ValueError(f"a {facts.status!r} change of a {facts.category} item calls for no legal document")
    _require(facts)
    items: tuple[str, ...] = ()
    if kind == ACCEPTANCE_NOTICE:
        paragraphs = [
            (f"{_opening(facts)}，经审查，申请事项属于本机关职权范围，申请材料齐全、符合法定形式。"
             f"{_article_32(facts, '第（五）项')}，本机关决定予以受理。"),
        ]
        limit = _time_limit(facts)
        if limit:
            paragraphs.append(limit)
        closing = ["请凭办件流水号和查询密码查询办理进度。"]
    elif kind == NON_ACCEPTANCE_DECISION:
        reasons = non_acceptance_reasons(facts.opinion, facts.reasons)
        paragraphs = [
            f"{_opening(facts)}，经审查，{reasons}。",
            f"{_article_32(facts)}，本机关决定不予受理。",
        ]
        closing = [REMEDIES]
    else:
        items = correction_items(facts.opinion)
        paragraphs = [
            (f"{_opening(facts)}，经审查，申请材料不齐全或者不符合法定形式。"
             f"{_article_32(facts, '第（四）项')}，现一次性告知你（单位）需要补正的全部内容如下："),
        ]
        closing = ["请按照上述要求一次性补正全部内容后重新提交。本机关自收到全部补正材料之日起依法决定是否受理。"]
    return LegalDocument(
        kind=kind,
        event_id=facts.event_id,
        case_number=facts.case_number,
        title=TITLES[kind],
        number=document_number(facts.case_number, kind, facts.event_at.year, facts.occurrence),
        addressee=f"{facts.applicant_name.strip()}：",
        paragraphs=tuple(paragraphs),
        items=items,
        closing=tuple(closing),
        legal_basis=facts.legal_basis.strip(),
        agency_name=facts.agency_name.strip(),
        issued_on=facts.event_at.date(),
        contact=_contact(facts),
    )
