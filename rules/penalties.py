"""Penalty kinds (处罚种类): one code list for the exchange database, the provincial feed
and the public results disclosure (双公示), which shows the Chinese names."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

PENALTY_KINDS: Mapping[str, str] = {
    "warning": "警告",
    "criticism": "通报批评",
    "fine": "罚款",
    "confiscation": "没收违法所得、没收非法财物",
    "licence_suspension": "暂扣许可证件",
    "licence_revocation": "吊销许可证件",
    "stop_business": "责令停产停业",
    "detention": "行政拘留",
}


def penalty_kind_names(codes: Iterable[str]) -> list[str]:
    """The Chinese names of penalty-kind codes, for what the public reads."""
    names = []
    for code in codes:
        if code not in PENALTY_KINDS:
            raise ValueError(f"unknown penalty kind {code!r}; expected one of {', '.join(PENALTY_KINDS)}")
        names.append(PENALTY_KINDS[code])
    return names
