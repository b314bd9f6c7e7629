"""What an applicant reads for each public status and result code: the one list, used by
the status page (through ``public/config.json``) and by ``hub public lookup``."""

from __future__ import annotations

from typing import Final

STATUS_LABELS: Final[dict[str, str]] = {
    "rejected": "申请未通过校验", "submitted": "已提交", "registered": "已登记", "not_accepted": "不予受理",
    "correction_requested": "需补正材料", "accepted": "已受理", "in_progress": "办理中", "paused": "暂停计时",
    "returned": "退回", "granted": "准予许可", "refused": "不予许可", "stopped": "终止办理",
    "decided": "已作出处罚决定", "revoked": "决定已撤销", "decision_changed": "决定已变更",
    "corrected": "信息已依法更正",
}
RESULT_LABELS: Final[dict[int, str]] = {1: "不予受理", 2: "准予", 3: "不予许可"}


def status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)
