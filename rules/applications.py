"""Application validation: envelope schema, identifiers, catalogue item state and materials.

Every problem of a record is reported, each as a ``Reason``; the accept path only runs
the compiled schema check and the cheap rules.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

import schemas
from rules.catalogue import Catalogue
from rules.identifiers import is_valid_org_code, is_valid_resident_id, is_valid_uscc
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
    "maxItems": "条目过多",
}
SUBMISSION_CLOCK_SKEW = timedelta(minutes=10)


def _schema_reasons(envelope: Any) -> list[Reason]:
    return [
        Reason(
            code="SCHEMA_" + error.keyword.upper(),
            path=error.path,
            message=f"{SCHEMA_MESSAGES.get(error.keyword, '不符合申请格式')}（{error.path or '申请'}）",
        )
        for error in schemas.errors("application", envelope)
    ]


def _party_reasons(party: Mapping[str, Any], path: str) -> list[Reason]:
    id_type, number = party["id_type"], party["id_number"]
    if id_type == "resident_id" and not is_valid_resident_id(number.upper()):
        return [Reason("ID_CHECK_DIGIT", f"{path}/id_number", "居民身份证号码校验不通过，请核对")]
    if id_type == "uscc" and not is_valid_uscc(number):
        return [Reason("USCC_CHECK_DIGIT", f"{path}/id_number", "统一社会信用代码校验不通过，请核对")]
    if id_type == "org_code" and not is_valid_org_code(number):
        return [Reason("ORG_CODE_CHECK_DIGIT", f"{path}/id_number", "组织机构代码校验不通过，请核对")]
    return []


def _item_reasons(envelope: Mapping[str, Any], catalogue: Catalogue) -> list[Reason]:
    item = catalogue.get(envelope["power_code"])
    if item is None:
        return [Reason("ITEM_UNKNOWN", "/power_code", "申请的事项不在本单位权力事项目录中")]
    reasons = []
    if item.state == "T":
        reasons.append(Reason("ITEM_SUSPENDED", "/power_code", f"事项“{item.name}”已挂起，暂停受理"))
    elif item.state == "X":
        reasons.append(Reason("ITEM_ABOLISHED", "/power_code", f"事项“{item.name}”已废止，不再受理"))
    if item.agency_code != envelope["agency_code"]:
        reasons.append(Reason("AGENCY_MISMATCH", "/agency_code", "受理单位与事项的实施主体不一致"))
    given = {m["material_code"]: (i, m) for i, m in enumerate(envelope["materials"])}
    for rule in item.materials:
        if rule.material_code not in given:
            if rule.required:
                reasons.append(
                    Reason("MATERIAL_MISSING", "/materials", f"缺少必需材料：{rule.name}")
                )
            continue
        index, material = given[rule.material_code]
        if material["media_type"] not in rule.media_types:
            reasons.append(
                Reason(
                    "MATERIAL_TYPE_NOT_ALLOWED",
                    f"/materials/{index}/media_type",
                    f"材料“{rule.name}”的文件类型不被接受",
                )
            )
    return reasons


def validate_application(
    envelope: Any,
    catalogue: Catalogue,
    *,
    received_at: datetime,
    attachments: Collection[str],
) -> list[Reason]:
    """All reasons to refuse ``envelope``; an empty list means it is accepted.

    ``attachments`` holds the SHA-256 of every attachment that arrived with it (already
    verified against its content by the ferry).
    """
    if not schemas.fast_check("application")(envelope):
        reasons = _schema_reasons(envelope)
        if not isinstance(envelope, Mapping) or any(r.code == "SCHEMA_TYPE" for r in reasons):
            return sorted(reasons)
        # The record has its shape in part: report what else can be checked safely.
        if "applicant" in envelope and _party_ok(envelope["applicant"]):
            reasons += _party_reasons(envelope["applicant"], "/applicant")
        return sorted(reasons)

    reasons = _party_reasons(envelope["applicant"], "/applicant")
    if "contact" in envelope:
        reasons += _party_reasons(envelope["contact"], "/contact")
    reasons += _item_reasons(envelope, catalogue)
    for index, material in enumerate(envelope["materials"]):
        if material["sha256"] not in attachments:
            reasons.append(
                Reason("MATERIAL_FILE_ABSENT", f"/materials/{index}", f"材料“{material['name']}”的文件未收到")
            )
    submitted = datetime.fromisoformat(envelope["submitted_at"])
    if submitted > received_at + SUBMISSION_CLOCK_SKEW:
        reasons.append(Reason("SUBMITTED_IN_FUTURE", "/submitted_at", "申请时间晚于接收时间"))
    return sorted(reasons)


def _party_ok(party: Any) -> bool:
    return (
        isinstance(party, Mapping)
        and isinstance(party.get("id_type"), str)
        and isinstance(party.get("id_number"), str)
    )
