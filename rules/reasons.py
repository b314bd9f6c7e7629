"""Rejection reasons as data: a code, a JSON pointer and a Chinese message for the applicant."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, order=True)
class Reason:
    """Why an application is refused (不予受理/退回理由)."""

    code: str
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)
