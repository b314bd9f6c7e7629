"""Negative opinions must give their reasons (行政许可法 Art. 38; DOMAIN "Steps"): a
decision not to accept (不予受理), a refusal (不予许可) or a veto (否决) with no stated
reason is bad data. One definition, used by the supervision alert and by the provincial
feed, which refuses to send such a record and lists it for the data stewards."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

NEGATIVE_RESULTS: Final = (1, 3)  # 1 不予受理, 3 不予许可
VETO_STEP: Final = 2  # step status 2: passed with a veto (否决意见)
CODE: Final = "NEGATIVE_WITHOUT_REASONS"
# A bare verdict is no reason: "不予许可" alone says what, not why.
BARE_VERDICTS: Final = frozenset({
    "不予受理", "不予许可", "不予批准", "不同意", "否决", "驳回", "不通过", "不予通过", "不符合", "不符合条件",
})
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)


def states_reasons(text: str | None) -> bool:
    """Whether an opinion says why: something beyond whitespace, punctuation and a bare verdict."""
    core = _NOISE.sub("", text or "")
    return bool(core) and core not in BARE_VERDICTS


def refusal(kind: str, record: Mapping[str, Any]) -> str | None:
    """Why the hub refuses to carry a provincial-feed record of ``kind``, or None."""
    if kind == "result" and record.get("result") in NEGATIVE_RESULTS and not states_reasons(record.get("note")):
        return f"{CODE}: 不予受理/不予许可决定未说明理由（result {record.get('result')}，note 为空或只有结论）"
    if kind == "step" and record.get("status") == VETO_STEP and not states_reasons(record.get("opinion")):
        return f"{CODE}: 否决意见未说明理由（第{record.get('step_no')}环节）"
    return None
