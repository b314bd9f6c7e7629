"""Rows of the provincial platform's catalogue files turned into catalogue changes, and
the difference between two catalogue files.

A JSON Lines file holds one catalogue change per line (the catalogue-change schema). An
XLSX file holds one row per item under Chinese column headers (``COLUMNS``); cells of
list-like columns use the small text formats documented in ``docs/schemas.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from rules.catalogue import APPROVAL_ROLE_NAMES, CATEGORIES, STATES, CatalogueError

BEIJING: Final = timezone(timedelta(hours=8))

# XLSX column header → where the value goes: an item field, ``disclosure.<field>``,
# ``change.<field>``, or one of the parsed columns below.
COLUMNS: Mapping[str, str] = {
    "事项编码": "code",
    "事项名称": "name",
    "事项类别": "category",
    "状态": "state",
    "实施主体编码": "agency_code",
    "实施主体名称": "agency_name",
    "设定依据": "legal_basis",
    "承办机构": "office",
    "办理地点": "place",
    "咨询电话": "phone",
    "监督电话": "supervision_phone",
    "法定时限": "statutory_limit_days",
    "承诺时限": "promised_limit_days",
    "时限单位": "limit_unit",
    "受理条件": "disclosure.conditions",
    "收费情况": "disclosure.fee",
    "办理流程": "disclosure.procedure",
    "流程图": "disclosure.flow_chart",
    "办事指南": "disclosure.service_guide",
    "申请表格": "disclosure.forms",
    "常见问题": "disclosure.faq",
    "处罚种类": "disclosure.penalty_kinds",
    "办理期限": "disclosure.time_limit",
    "征收主体": "disclosure.implementing_body",
    "申请材料": "materials",
    "表单定义": "form_schema",
    "收费标准（分）": "fee_standard",
    "自由裁量基准": "discretion",
    "重大案件报备": "major_case",
    "变更人": "change.by",
    "变更时间": "change.at",
    "变更原因": "change.reason",
    "审批链": "change.approvals",
}
REQUIRED_COLUMNS: Final = ("事项编码", "事项名称", "事项类别", "状态", "变更人", "变更时间", "变更原因", "审批链")
LIMIT_UNITS: Mapping[str, str] = {
    "工作日": "working_days",
    "自然日": "calendar_days",
    "日": "calendar_days",
    "月": "months",
    "年": "years",
}
MEDIA_TYPES: Mapping[str, str] = {
    "pdf": "application/pdf",
    "ofd": "application/ofd",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "doc": "application/msword",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xls": "application/vnd.ms-excel",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "xml": "application/xml",
}
_CATEGORY_BY_NAME: Final = {name: code for code, name in CATEGORIES.items()}
_STATE_BY_NAME: Final = {name: code for code, name in STATES.items()}
_ROLE_BY_NAME: Final = {name: role for role, name in APPROVAL_ROLE_NAMES.items()}
_INTEGER_FIELDS: Final = ("statutory_limit_days", "promised_limit_days", "fee_standard")
_SEPARATORS: Final = str.maketrans({"；": ";", "\n": ";", "｜": "|", "，": ",", "：": ":"})


@dataclass(frozen=True)
class SourceRow:
    """One row of a catalogue file: its number (1-based line or sheet row), and either
    the catalogue change it holds or why it cannot be read."""

    number: int
    entry: dict[str, Any] | None
    error: str | None = None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _split(text: str, separator: str) -> list[str]:
    return [part.strip() for part in text.translate(_SEPARATORS).split(separator) if part.strip()]


def _timestamp(value: Any, column: str) -> str:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(_text(value))
        except ValueError:
            raise CatalogueError(f"{column}: {_text(value)!r} is not a date and time") from None
    if moment.tzinfo is None:  # the provincial platform writes Beijing time
        moment = moment.replace(tzinfo=BEIJING)
    return moment.isoformat()


def parse_materials(text: str) -> list[dict[str, Any]]:
    """``编码|名称|必要|pdf,jpg`` entries separated by ``;`` or new lines."""
    materials = []
    for entry in _split(text, ";"):
        parts = [p.strip() for p in entry.translate(_SEPARATORS).split("|")]
        if len(parts) != 4:
            raise CatalogueError(f"申请材料: {entry!r} is not 编码|名称|必要或可选|类型")
        code, name, need, types = parts
        if need not in ("必要", "可选"):
            raise CatalogueError(f"申请材料: {entry!r}: the third part must be 必要 or 可选")
        media_types = []
        for short in _split(types.lower(), ","):
            if short not in MEDIA_TYPES:
                raise CatalogueError(f"申请材料: {entry!r}: unknown file type {short!r}")
            media_types.append(MEDIA_TYPES[short])
        materials.append(
            {"material_code": code, "name": name, "required": need == "必要", "media_types": media_types}
        )
    return materials


def parse_approvals(text: str) -> list[dict[str, str]]:
    """``业务处室/张三/2026-03-01`` entries separated by ``;``, in chain order."""
    approvals = []
    for entry in _split(text, ";"):
        parts = [p.strip() for p in entry.split("/")]
        if len(parts) not in (3, 4) or parts[0] not in _ROLE_BY_NAME:
            raise CatalogueError(
                f"审批链: {entry!r} is not 环节/审批人/日期 with 环节 one of {', '.join(_ROLE_BY_NAME)}"
            )
        approval = {"role": _ROLE_BY_NAME[parts[0]], "approver": parts[1], "at": parts[2]}
        if len(parts) == 4:
            approval["opinion"] = parts[3]
        approvals.append(approval)
    return approvals


def entry_from_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The catalogue change held by one spreadsheet row (header → cell value).

    Raises ``CatalogueError`` for a cell that cannot be read; whether the change itself
    is acceptable is decided by ``rules.catalogue.plan_change``.
    """
    missing = [c for c in REQUIRED_COLUMNS if not _text(row.get(c))]
    if missing:
        raise CatalogueError(f"empty required column(s): {', '.join(missing)}")
    item: dict[str, Any] = {}
    disclosure: dict[str, str] = {}
    change: dict[str, Any] = {}
    for column, target in COLUMNS.items():
        value = row.get(column)
        text = _text(value)
        if not text:
            continue
        if target == "category":
            item["category"] = _CATEGORY_BY_NAME.get(text, text)
        elif target == "state":
            item["state"] = _STATE_BY_NAME.get(text, text)
        elif target in _INTEGER_FIELDS:
            if not text.isdigit():
                raise CatalogueError(f"{column}: {text!r} is not a whole number" + (" of days" if target != "fee_standard" else ""))
            item[target] = int(text)
        elif target == "limit_unit":
            item[target] = LIMIT_UNITS.get(text, text)
        elif target == "materials":
            item["materials"] = parse_materials(text)
        elif target in ("form_schema", "discretion", "major_case"):
            try:
                item[target] = json.loads(text)
            except json.JSONDecodeError as error:
                raise CatalogueError(f"{column}: not JSON: {error}") from None
        elif target == "change.at":
            change["at"] = _timestamp(value, column)
        elif target == "change.approvals":
            change["approvals"] = parse_approvals(text)
        elif target.startswith("change."):
            change[target.removeprefix("change.")] = text
        elif target.startswith("disclosure."):
            disclosure[target.removeprefix("disclosure.")] = text
        else:
            item[target] = text
    item["disclosure"] = disclosure
    item.setdefault("materials", [])
    return {"item": item, "change": change}


def rows_from_sheet(rows: Iterable[tuple[Any, ...]]) -> list[SourceRow]:
    """Sheet rows (the first one the header) as catalogue changes, row by row."""
    iterator = iter(rows)
    header = [_text(h) for h in next(iterator, ())]
    unknown = [h for h in header if h and h not in COLUMNS]
    if unknown:
        raise CatalogueError(f"unknown column(s) {', '.join(unknown)}; known: {', '.join(COLUMNS)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise CatalogueError(f"missing column(s): {', '.join(missing)}")
    found = []
    for number, values in enumerate(iterator, start=2):
        if all(_text(v) == "" for v in values):
            continue
        cells = dict(zip(header, values))
        try:
            found.append(SourceRow(number, entry_from_row(cells)))
        except CatalogueError as error:
            found.append(SourceRow(number, None, str(error)))
    return found


def rows_from_json_lines(lines: Iterable[bytes | str]) -> list[SourceRow]:
    """JSON Lines, one catalogue change per line; blank lines are skipped."""
    found = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            found.append(SourceRow(number, None, f"not JSON: {error}"))
            continue
        if not isinstance(entry, dict):
            found.append(SourceRow(number, None, "a line must hold one JSON object"))
            continue
        found.append(SourceRow(number, entry))
    return found


def diff_entries(old: Iterable[SourceRow], new: Iterable[SourceRow]) -> dict[str, Any]:
    """What changes from one catalogue file to another, item by item (by code; the last
    row of a code counts). Unreadable rows are listed, not compared."""

    def index(rows: Iterable[SourceRow]) -> tuple[dict[str, dict[str, Any]], list[int]]:
        items: dict[str, dict[str, Any]] = {}
        broken = []
        for row in rows:
            item = row.entry.get("item") if row.entry else None
            if not isinstance(item, dict) or not isinstance(item.get("code"), str):
                broken.append(row.number)
                continue
            items[item["code"]] = {k: v for k, v in item.items() if k != "version"}
        return items, broken

    before, broken_before = index(old)
    after, broken_after = index(new)
    changed = []
    for code in sorted(before.keys() & after.keys()):
        fields = sorted(
            key for key in before[code].keys() | after[code].keys()
            if before[code].get(key) != after[code].get(key)
        )
        if fields:
            change: dict[str, Any] = {"code": code, "fields": fields}
            if "state" in fields:
                change["state"] = [before[code].get("state"), after[code].get("state")]
            changed.append(change)
    return {
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "changed": changed,
        "unreadable_rows": {"old": broken_before, "new": broken_after},
    }
