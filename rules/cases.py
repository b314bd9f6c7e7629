"""Cases of every origin (办件来源) and what a case the case-processing system opens itself
must carry: an internet application the hub handed over, an application made at the
counter (网下申请, 第十四条) or a case opened ex officio (依职权, most penalties).

Pure: the connector writes what ``registration_problems`` lets through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from rules.catalogue import Catalogue
from rules.identifiers import identifier_valid

INTERNET: Final = "internet"
COUNTER: Final = "counter"
EX_OFFICIO: Final = "ex_officio"
CASE_ORIGINS: Final = (INTERNET, COUNTER, EX_OFFICIO)
ORIGIN_NAMES: Final = {INTERNET: "网上申请", COUNTER: "窗口受理", EX_OFFICIO: "依职权"}

# DOMAIN "Cases": the application channel (申请方式) of a case record.
CHANNELS: Final = {0: "现场", 1: "网上", 2: "电话", 3: "传真", 5: "信函", 6: "电子邮件", 7: "其他"}
ONLINE_CHANNEL: Final = 1
# Categories whose cases start only on an application; the others may be opened ex officio.
APPLICATION_ONLY: Final = frozenset({"XK", "QR", "GF", "SP"})
# Categories whose cases the office opens itself, never on an application at the counter.
EX_OFFICIO_ONLY: Final = frozenset({"CF", "QZ"})
SUMMARY_MIN_LENGTH: Final = 5
PARTY_TYPES: Final = ("person", "organisation")
REGISTRATION_FIELDS: Final = (
    "origin", "power_code", "agency_code", "case_name", "summary", "channel", "applicant_type",
    "applicant_name", "applicant_id_type", "applicant_id_number", "submitted_at",
)


@dataclass(frozen=True)
class RegistrationProblem:
    """Why a case registration cannot be taken: a code, the field and a Chinese message."""

    code: str
    field: str
    message: str


def registration_problems(
    record: Mapping[str, Any], catalogue: Catalogue, *, registered_at: datetime
) -> list[RegistrationProblem]:
    """Everything wrong with a counter or ex-officio case registration (empty: take it).

    The item must be in the catalogue and in use (在用) when the case is registered; a case
    of an application-only category (licences and the like) cannot be opened ex officio;
    a counter application is not made online; the party's document number passes its check
    digit; the summary has at least five characters (DOMAIN "Cases")."""
    problems: list[RegistrationProblem] = []

    def problem(code: str, field: str, message: str) -> None:
        problems.append(RegistrationProblem(code, field, message))

    for name in REGISTRATION_FIELDS:
        value = record.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            problem("REQUIRED", name, f"缺少必填字段 {name}")
    if problems:
        return problems
    origin = record["origin"]
    if origin not in (COUNTER, EX_OFFICIO):
        problem("ORIGIN", "origin", f"办件来源 {origin!r} 不能由办件系统登记（只有 counter、ex_officio）")
    item = catalogue.get(str(record["power_code"]))
    if item is None:
        problem("UNKNOWN_ITEM", "power_code", f"权力事项 {record['power_code']} 不在目录中")
    else:
        if item.state != "A":
            problem("ITEM_NOT_IN_USE", "power_code", f"权力事项 {item.code} 状态为 {item.state}，不能新建办件")
        if origin == EX_OFFICIO and item.category in APPLICATION_ONLY:
            problem("NOT_EX_OFFICIO", "origin", f"{item.category} 类事项须依申请办理，不能依职权立案")
        if origin == COUNTER and item.category in EX_OFFICIO_ONLY:
            problem("NOT_ON_APPLICATION", "origin", f"{item.category} 类事项由机关依职权立案，不受理窗口申请")
    channel = record["channel"]
    if channel not in CHANNELS:
        problem("CHANNEL", "channel", f"申请方式 {channel!r} 无效")
    elif origin == COUNTER and channel == ONLINE_CHANNEL:
        problem("CHANNEL", "channel", "网上申请须经外网受理，窗口办件的申请方式不能为网上")
    if record["applicant_type"] not in PARTY_TYPES:
        problem("PARTY_TYPE", "applicant_type", f"当事人类型 {record['applicant_type']!r} 无效")
    if not identifier_valid(record["applicant_id_type"], record["applicant_id_number"]):
        problem("PARTY_ID", "applicant_id_number", "当事人证件号码校验位不正确")
    if len(str(record["summary"]).strip()) < SUMMARY_MIN_LENGTH:
        problem("SUMMARY", "summary", f"办件摘要不少于{SUMMARY_MIN_LENGTH}个字")
    try:
        submitted = datetime.fromisoformat(str(record["submitted_at"]))
    except ValueError:
        problem("DATE", "submitted_at", "申请（立案）时间格式无效")
    else:
        if submitted.tzinfo is None or submitted > registered_at:
            problem("DATE", "submitted_at", "申请（立案）时间须带时区且不晚于登记时间")
    return problems
