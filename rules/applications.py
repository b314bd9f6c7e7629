"""Application validation (网上申请校验): envelope schema, the item's own form schema,
identifier check digits, the item's state when the application was made, its material
list and sane dates.

Every problem of a record is reported, each as a ``Reason`` (code, JSON pointer, Chinese
message for the applicant). The accept path runs the compiled schema check and the rules
only; the full schema validator (slow, but it says where and why) runs only for records
the compiled check refuses.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any, Final

import jsonschema
import jsonschema_rs
import orjson

import schemas
from rules.catalogue import Catalogue, PowerItem
from rules.identifiers import (
    RESIDENT_ID_CHECK,
    is_valid_org_code,
    is_valid_uscc,
    resident_id_birth_date,
    resident_id_weighted_sum,
)
from rules.reasons import Reason

SCHEMA_MESSAGES: Mapping[str, str] = {
    "required": "缺少必填项",
    "minLength": "内容过短",
    "maxLength": "内容过长",
    "pattern": "格式不正确",
    "enum": "取值不在允许范围内",
    "type": "数据类型不正确",
    "additionalProperties": "包含不允许的字段",
    "format": "格式不正确",
    "minimum": "数值过小",
    "maximum": "数值过大",
    "maxItems": "条目过多",
}
FIELD_LABELS: Mapping[str, str] = {
    "net_id": "网上申请号",
    "submitted_at": "申请时间",
    "channel": "申请渠道",
    "power_code": "事项编码",
    "agency_code": "受理单位编码",
    "case_name": "办件名称",
    "summary": "申请摘要",
    "applicant": "申请人",
    "contact": "联系人",
    "form": "申请表",
    "materials": "申请材料",
}
SUBMISSION_CLOCK_SKEW: Final = timedelta(minutes=10)
OLDEST_SUBMISSION: Final = timedelta(days=366)  # older than this on arrival is no real submission
EARLIEST_BIRTH: Final = date(1900, 1, 1)
_NEGATIVE_SKEW: Final = -SUBMISSION_CLOCK_SKEW

ID_TYPES_OF: Mapping[str, frozenset[str]] = {
    "person": frozenset({"resident_id", "passport", "other"}),
    "organisation": frozenset({"uscc", "org_code", "other"}),
}
_application_ok: Final[Callable[[Any], bool]] = schemas.fast_check("application")


# --- schema ---------------------------------------------------------------------------


def _label(path: str) -> str:
    parts = path.split("/")
    return FIELD_LABELS.get(parts[1], "申请") if len(parts) > 1 else "申请"


def _schema_reason(keyword: str, path: str) -> Reason:
    message = f"{_label(path)}{SCHEMA_MESSAGES.get(keyword, '不符合申请格式')}（{path or '申请'}）"
    return Reason("SCHEMA_" + keyword.upper(), path, message)


# A submission time that passes the schema but is no datetime Python can hold (a leap
# second, 23:59:60) or, where the full validator does not check date-time, no real time.
SUBMITTED_AT_UNREADABLE: Final = _schema_reason("format", "/submitted_at")


def _schema_reasons(envelope: Any) -> list[Reason]:
    """Why the compiled check refused ``envelope``: the full validator's findings, and the
    compiled validator's own at places the full one does not flag (the two engines differ
    at the edges), so a refused record always carries a reason and is never accepted."""
    found = list(schemas.errors("application", envelope))
    flagged = {error.path for error in found}
    found += [error for error in schemas.fast_errors("application", envelope) if error.path not in flagged]
    return [_schema_reason(error.keyword, error.path) for error in found]


@cache
def _form_validator(schema_text: bytes) -> jsonschema.protocols.Validator:
    schema = orjson.loads(schema_text)
    cls = jsonschema.validators.validator_for(schema)
    validator: jsonschema.protocols.Validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return validator


@cache
def _compiled_form_validator(schema_text: bytes) -> Any:
    return jsonschema_rs.validator_for(orjson.loads(schema_text), validate_formats=True)


def _form_reasons(item: PowerItem, form: Any) -> list[Reason]:
    """Why ``form`` does not fit the item's own form schema, field by field (with the
    compiled validator's findings where the full one is silent, as for the envelope)."""
    schema = item.form_schema or {}
    fields = schema.get("properties", {})
    schema_text = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    found: list[tuple[str, list[str], Any]] = [
        (str(error.validator), [str(p) for p in error.absolute_path], error.instance)
        for error in _form_validator(schema_text).iter_errors(form)
    ]
    flagged = {tuple(parts) for _, parts, _ in found}
    for error in _compiled_form_validator(schema_text).iter_errors(form):
        parts = [str(p) for p in error.instance_path]
        if tuple(parts) not in flagged:
            found.append((str(error.schema_path[-1]) if error.schema_path else "", parts, error.instance))
    reasons = []
    for keyword, parts, instance in found:
        if keyword == "required" and isinstance(instance, dict):
            missing = next((f for f in schema.get("required", ()) if f not in instance), "")
            parts = [missing] if missing else parts
        field_name = parts[0] if parts else ""
        title = fields.get(field_name, {}).get("title", "申请表")
        pointer = "/form" + "".join("/" + p for p in parts)
        message = SCHEMA_MESSAGES.get(keyword, "不符合申请表要求")
        reasons.append(Reason("FORM_" + keyword.upper(), pointer, f"{title}：{message}"))
    return reasons


# --- identifiers ----------------------------------------------------------------------


def _resident_id_reasons(number: str, path: str, submitted: date | None) -> list[Reason]:
    """GB 11643: 18 characters with check character and a real birth date, or a historic
    15-digit number with a real birth date."""
    length = len(number)
    if length == 18 and number.isascii() and number[:17].isdigit():
        expected = RESIDENT_ID_CHECK[resident_id_weighted_sum(number[:17])]
        if expected != number[17].upper():
            return [Reason("ID_CHECK_DIGIT", path, "居民身份证号码校验不通过，请核对")]
    elif not (length == 15 and number.isascii() and number.isdigit()):
        return [Reason("ID_FORMAT", path, "居民身份证号码应为18位（或15位旧号码），请核对")]
    born = resident_id_birth_date(number)
    if born is None or born < EARLIEST_BIRTH or (submitted is not None and born > submitted):
        return [Reason("ID_BIRTH_DATE", path, "居民身份证号码中的出生日期不正确，请核对")]
    return []


def _party_reasons(party: Mapping[str, Any], path: str, submitted: date | None) -> list[Reason]:
    id_type, number = party["id_type"], party["id_number"]
    reasons = []
    if id_type == "resident_id":
        reasons = _resident_id_reasons(number, f"{path}/id_number", submitted)
    elif id_type == "uscc" and not is_valid_uscc(number):
        reasons = [Reason("USCC_CHECK_DIGIT", f"{path}/id_number", "统一社会信用代码校验不通过，请核对")]
    elif id_type == "org_code" and not is_valid_org_code(number):
        reasons = [Reason("ORG_CODE_CHECK_DIGIT", f"{path}/id_number", "组织机构代码校验不通过，请核对")]
    if id_type not in ID_TYPES_OF.get(party["type"], ()):
        reasons.append(Reason("PARTY_ID_TYPE", f"{path}/id_type", "证件类型与申请人类型不符"))
    credit_code = party.get("credit_code")
    if credit_code and not is_valid_uscc(credit_code):
        reasons.append(
            Reason("USCC_CHECK_DIGIT", f"{path}/credit_code", "统一社会信用代码校验不通过，请核对")
        )
    return reasons


# --- the item, its materials and form -------------------------------------------------


def _item_at(envelope: Mapping[str, Any], catalogue: Catalogue, submitted: datetime) -> tuple[PowerItem | None, list[Reason]]:
    code = envelope["power_code"]
    item = catalogue.item_at(code, submitted)
    if item is None:
        if catalogue.get(code) is None:
            return None, [Reason("ITEM_UNKNOWN", "/power_code", "申请的事项不在本单位权力事项目录中")]
        return None, [Reason("ITEM_NOT_IN_FORCE", "/power_code", "申请时该事项尚未纳入权力事项目录")]
    reasons = []
    if item.state == "T":
        reasons.append(Reason("ITEM_SUSPENDED", "/power_code", f"事项“{item.name}”已挂起，暂停受理"))
    elif item.state == "X":
        reasons.append(Reason("ITEM_ABOLISHED", "/power_code", f"事项“{item.name}”已废止，不再受理"))
    if item.agency_code != envelope["agency_code"]:
        reasons.append(Reason("AGENCY_MISMATCH", "/agency_code", "受理单位与事项的实施主体不一致"))
    return item, reasons


def _material_reasons(
    item: PowerItem, materials: list[dict[str, Any]], attachments: Collection[str]
) -> list[Reason]:
    reasons = []
    rules = {rule.material_code: rule for rule in item.materials}
    given = set()
    for index, material in enumerate(materials):
        code = material["material_code"]
        given.add(code)
        rule = rules.get(code)
        if rule is None:
            reasons.append(
                Reason("MATERIAL_NOT_LISTED", f"/materials/{index}/material_code", f"材料“{material['name']}”不在该事项的材料清单中")
            )
        elif material["media_type"] not in rule.media_types:
            reasons.append(
                Reason("MATERIAL_TYPE_NOT_ALLOWED", f"/materials/{index}/media_type", f"材料“{rule.name}”的文件类型不被接受")
            )
        if material["sha256"] not in attachments:
            reasons.append(
                Reason("MATERIAL_FILE_ABSENT", f"/materials/{index}", f"材料“{material['name']}”的文件未收到")
            )
    for rule in item.materials:
        if rule.required and rule.material_code not in given:
            reasons.append(Reason("MATERIAL_MISSING", "/materials", f"缺少必需材料：{rule.name}"))
    return reasons


def _date_reasons(submitted: datetime, received_at: datetime) -> list[Reason]:
    if submitted > received_at + SUBMISSION_CLOCK_SKEW:
        return [Reason("SUBMITTED_IN_FUTURE", "/submitted_at", "申请时间晚于接收时间")]
    if submitted < received_at - OLDEST_SUBMISSION:
        return [Reason("SUBMITTED_TOO_OLD", "/submitted_at", "申请时间早于接收时间一年以上，请重新申请")]
    return []


# --- all rules ------------------------------------------------------------------------


def _rule_reasons(
    envelope: Mapping[str, Any],
    catalogue: Catalogue,
    received_at: datetime,
    attachments: Collection[str],
    *,
    guarded: bool,
) -> list[Reason]:
    """The rules beyond the envelope schema. With ``guarded`` (the record failed the
    schema), a rule group that meets malformed data is skipped: the schema reasons
    already say what is wrong there. A submission time that is a string but no datetime
    Python can read gives ``SUBMITTED_AT_UNREADABLE`` either way."""
    reasons: list[Reason] = []
    submitted: datetime | None = None
    try:
        submitted = datetime.fromisoformat(envelope["submitted_at"])
        reasons += _date_reasons(submitted, received_at)
    except ValueError:
        reasons.append(SUBMITTED_AT_UNREADABLE)  # dropped by the caller if a schema reason says it
    except (KeyError, TypeError):
        if not guarded:
            raise
    day = submitted.date() if submitted is not None else None
    for key in ("applicant", "contact"):
        party = envelope.get(key)
        if party is None:
            continue
        try:
            reasons += _party_reasons(party, "/" + key, day)
        except (KeyError, TypeError, AttributeError):
            if not guarded:
                raise
    if submitted is None:
        return reasons
    try:
        item, item_reasons = _item_at(envelope, catalogue, submitted)
        reasons += item_reasons
    except (KeyError, TypeError):
        if not guarded:
            raise
        return reasons
    if item is None:
        return reasons
    try:
        reasons += _material_reasons(item, envelope["materials"], attachments)
    except (KeyError, TypeError, AttributeError):
        if not guarded:
            raise
    if item.form_check is not None:
        form = envelope.get("form", {})
        if not item.form_check(form):
            reasons += _form_reasons(item, form)
    return reasons


# Real birth dates as ISO text, filled as they are met. Only days from EARLIEST_BIRTH to
# the end of 2099 are kept, so the table never holds more than 73,049 entries, whatever
# the input; any other 8-digit text is worked out again each time (such IDs are refused).
_BIRTH_DAYS: dict[str, str] = {}
_NO_BIRTH_DAY: Final = "~"  # sorts after every ISO date, so "born on or before" fails
_BIRTH_DAYS_UNTIL: Final = date(2099, 12, 31)


def _birth_day(yyyymmdd: str) -> str:
    """The ISO date (``YYYY-MM-DD``) of an 8-digit birth date, or ``_NO_BIRTH_DAY`` when
    it is no real day on or after ``EARLIEST_BIRTH``."""
    try:
        born = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
    except ValueError:
        return _NO_BIRTH_DAY
    if born < EARLIEST_BIRTH:
        return _NO_BIRTH_DAY
    iso = born.isoformat()
    if born <= _BIRTH_DAYS_UNTIL:
        _BIRTH_DAYS[yyyymmdd] = iso
    return iso


# The accepted 18th character of a resident ID for each weighted sum mod 11 ("x" = "X").
_CHECK_CHARS: Final = tuple("Xx" if c == "X" else c for c in RESIDENT_ID_CHECK)
_NO_FORM: Final[Mapping[str, Any]] = {}


def _party_passes(party: Mapping[str, Any], day: str) -> bool:
    """The accept path's check of one party, ``day`` being the submission date as
    ``YYYY-MM-DD``; False sends the record to ``_party_reasons``."""
    if party["id_type"] == "resident_id":
        number = party["id_number"]
        if len(number) != 18 or not number.isascii() or party["type"] != "person" or "credit_code" in party:
            return False
        body = number[:17]
        born = number[6:14]
        return (
            body.isdigit()
            and number[17] in _CHECK_CHARS[2 * int(body, 13) % 11]
            and (_BIRTH_DAYS.get(born) or _birth_day(born)) <= day
        )
    if "credit_code" in party:
        return False
    id_type = party["id_type"]
    if id_type == "uscc":
        return party["type"] == "organisation" and is_valid_uscc(party["id_number"])
    if id_type == "org_code":
        return party["type"] == "organisation" and is_valid_org_code(party["id_number"])
    return id_type in ID_TYPES_OF[party["type"]]


def _passes(
    envelope: Mapping[str, Any], catalogue: Catalogue, received_at: datetime, attachments: Collection[str]
) -> bool:
    """Every rule beyond the schema, as one yes/no on a schema-valid record: the accept
    path. It must say no whenever ``_rule_reasons`` finds anything."""
    text = envelope["submitted_at"]
    try:
        submitted = datetime.fromisoformat(text)
    except ValueError:
        return False
    # One aware subtraction, then cheap timedelta comparisons (each comparison of aware
    # datetimes, or a timestamp() call, costs a time-zone lookup).
    if not _NEGATIVE_SKEW <= received_at - submitted <= OLDEST_SUBMISSION:
        return False
    day = text[:10]  # the local date of submission, as submitted.date() would give it
    if not _party_passes(envelope["applicant"], day):
        return False
    contact = envelope.get("contact")
    if contact is not None and not _party_passes(contact, day):
        return False
    item = catalogue.item_at(envelope["power_code"], submitted)
    if item is None or item.state != "A" or item.agency_code != envelope["agency_code"]:
        return False
    media_types_of = item.media_types_of
    given = set()
    for material in envelope["materials"]:
        code = material["material_code"]
        media_types = media_types_of.get(code)
        if media_types is None or material["media_type"] not in media_types or material["sha256"] not in attachments:
            return False
        given.add(code)
    if not item.required_materials <= given:
        return False
    form_check = item.form_check
    return form_check is None or form_check(envelope.get("form", _NO_FORM))


def validate_application(
    envelope: Any,
    catalogue: Catalogue,
    *,
    received_at: datetime,
    attachments: Collection[str],
) -> list[Reason]:
    """All reasons to refuse ``envelope``, sorted; an empty list means it is accepted.

    ``attachments`` holds the SHA-256 of every attachment that arrived with it (already
    verified against its content by the ferry). The item's state is the one in force at
    the record's ``submitted_at``.
    """
    if _application_ok(envelope):
        if _passes(envelope, catalogue, received_at, attachments):
            return []
        reasons = _rule_reasons(envelope, catalogue, received_at, attachments, guarded=False)
        return sorted(reasons) if reasons else reasons
    reasons = _schema_reasons(envelope)
    if isinstance(envelope, Mapping) and not any(r.code == "SCHEMA_TYPE" and r.path == "" for r in reasons):
        flagged = {r.path for r in reasons}
        reasons += [
            r
            for r in _rule_reasons(envelope, catalogue, received_at, attachments, guarded=True)
            if r != SUBMITTED_AT_UNREADABLE or r.path not in flagged
        ]
    return sorted(set(reasons))
