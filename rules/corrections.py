"""Corrections of case data (第十九条): what may be corrected or deleted, and what a request
must carry before it is applied: a written reason, who asks and who approves (two people).

Pure: ``connectors.corrections`` applies a request this module lets through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

SET: Final = "set"
DELETE: Final = "delete"
ACTIONS: Final = (SET, DELETE)
REASON_MIN_LENGTH: Final = 10


@dataclass(frozen=True)
class Correctable:
    """One table of case data: its key columns, the fields a correction may set, whether a
    row may be deleted, and the provincial feed kind its rows go up as (None: not sent)."""

    key: tuple[str, ...]
    fields: frozenset[str]
    deletable: bool
    feed_kind: str | None


CORRECTABLE: Final[dict[str, Correctable]] = {
    "cases": Correctable(
        ("case_number",),
        frozenset({"accepted_at", "acceptor_code", "acceptor_name", "time_limit", "time_limit_unit"}),
        deletable=False, feed_kind="case"),
    "case_registrations": Correctable(
        ("case_number",),
        frozenset({"case_name", "summary", "channel", "applicant_type", "applicant_name", "applicant_id_type",
                   "applicant_id_number", "applicant_mobile", "applicant_address", "submitted_at"}),
        deletable=False, feed_kind="case"),
    "case_steps": Correctable(
        ("case_number", "step_no"),
        frozenset({"node", "department", "officer_code", "officer_name", "status", "opinion", "started_at",
                   "finished_at", "time_limit", "time_limit_unit"}),
        deletable=True, feed_kind="step"),
    "case_results": Correctable(
        ("case_number",), frozenset({"result", "finished_at", "note", "fee_due", "fee_paid"}),
        deletable=True, feed_kind="result"),
    "penalty_cases": Correctable(
        ("case_number",),
        frozenset({"occurred_on", "source", "facts", "procedure", "decision", "penalty_kinds", "fine_amount",
                   "confiscated_value", "discretion_level", "decided_at", "violation_code", "illegal_income"}),
        deletable=False, feed_kind="penalty"),
    "case_pauses": Correctable(
        ("case_number", "pause_no"), frozenset({"kind", "started_at", "ended_at", "note"}),
        deletable=True, feed_kind=None),
    "case_filings": Correctable(
        ("case_number",), frozenset({"authority", "document_no", "filed_at"}),
        deletable=True, feed_kind="filing"),
}
# Corrections of these change what a 双公示 record shows: a published decision is
# corrected on the public side too (a ``corrected`` status change).
DISCLOSED_TARGETS: Final = frozenset({"case_registrations", "case_results", "penalty_cases"})


@dataclass(frozen=True)
class CorrectionRequest:
    """A correction as asked: the row (``target`` table and ``key``), ``set`` its fields
    to ``changes`` or ``delete`` it, with the reason and the two people."""

    target: str
    key: Mapping[str, Any]
    action: str
    reason: str
    requested_by: str
    approved_by: str
    changes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def case_number(self) -> str:
        return str(self.key["case_number"])


def correction_problems(request: CorrectionRequest) -> list[str]:
    """Why ``request`` cannot be applied (empty: it can), in Chinese for the operator."""
    problems: list[str] = []
    table = CORRECTABLE.get(request.target)
    if table is None:
        return [f"{request.target} 不是可更正的办件数据表（可更正：{'、'.join(CORRECTABLE)}）"]
    if request.action not in ACTIONS:
        problems.append(f"更正方式 {request.action!r} 无效（set 或 delete）")
    if set(request.key) != set(table.key) or any(v in (None, "") for v in request.key.values()):
        problems.append(f"{request.target} 的记录由 {'、'.join(table.key)} 确定，须全部给出")
    if request.action == SET:
        if not request.changes:
            problems.append("没有要更正的字段")
        unknown = sorted(set(request.changes) - table.fields)
        if unknown:
            problems.append(f"{request.target} 中不可更正的字段：{'、'.join(unknown)}")
    elif request.action == DELETE:
        if request.changes:
            problems.append("删除记录时不能同时更正字段")
        if not table.deletable:
            problems.append(f"{request.target} 的记录不能删除，只能更正")
    if len(request.reason.strip()) < REASON_MIN_LENGTH:
        problems.append(f"须写明更正理由（不少于{REASON_MIN_LENGTH}个字）")
    requested, approved = request.requested_by.strip(), request.approved_by.strip()
    if not requested or not approved:
        problems.append("须写明申请人和审批人")
    elif requested == approved:
        problems.append("审批人不能是申请人本人")
    return problems
