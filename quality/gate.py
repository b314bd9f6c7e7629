"""The quality gate of the provincial feed: failures of critical expectations stop the
provincial batch they concern; warnings never do.

Each quality run records, per scope (a day ``YYYY-MM-DD`` or a batch name), the critical
rules that failed and the provincial record kind they concern (case, step, result,
penalty, catalogue, batch) in ``<quality root>/gate.json``; the latest run of a scope
replaces the earlier one, so fixing the data and re-running the report opens the gate.
A scope no run has looked at is allowed (the gate stops failures, not silence).

``batch_verdict`` is the verdict on one built provincial batch (its own scope and its
day's); ``quality.report.check_provincial_batch`` runs the batch's suite, then asks it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

GATE_FILE = "gate.json"
FEED_KINDS = frozenset({"case", "step", "result", "penalty"})


def _load(root: Path) -> dict[str, dict[str, list[str]]]:
    path = root / GATE_FILE
    return json.loads(path.read_text("utf-8")) if path.exists() else {}


def record_gate(root: Path, scope: str, failures: Iterable[tuple[str, str]]) -> None:
    """Keep the critical failures (record kind, rule) of the latest run of ``scope``."""
    state = _load(root)
    kinds: dict[str, list[str]] = {}
    for kind, rule in failures:
        kinds.setdefault(kind, [])
        if rule not in kinds[kind]:
            kinds[kind].append(rule)
    state[scope] = kinds
    root.mkdir(parents=True, exist_ok=True)
    part = root / (GATE_FILE + ".part")
    part.write_text(json.dumps(state, ensure_ascii=False, indent=1, sort_keys=True), "utf-8")
    part.replace(root / GATE_FILE)


def blocking_rules(root: Path, batch_scope: str, record_kinds: Iterable[str] = FEED_KINDS) -> list[str]:
    """The critical rules that stop a batch of ``record_kinds`` for ``batch_scope``."""
    kinds = set(record_kinds) | {"batch"}
    recorded = _load(root).get(batch_scope, {})
    return sorted({rule for kind, rules in recorded.items() if kind in kinds for rule in rules})


def gate_allows(
    batch_scope: str,
    record_kinds: Iterable[str] = FEED_KINDS,
    *,
    root: Path,
    mode: str = "critical",
) -> bool:
    """Whether the provincial batch of ``batch_scope`` may be sent: False when the latest
    quality run of that scope found a critical failure in one of the batch's record kinds
    (or in the batch file itself). ``mode="off"`` reports only and always allows."""
    if mode == "off":
        return True
    return not blocking_rules(root, batch_scope, record_kinds)


def batch_verdict(
    root: Path, batch_id: str, manifest: Mapping[str, Any], *, mode: str = "critical"
) -> str | None:
    """Whether the built provincial batch ``batch_id`` (its signed ``manifest.json``) may go
    up: None when it may, else why it is held. Held when the latest quality run of the
    batch itself, or of the day it was built, failed a critical expectation for a record
    kind the batch carries (``mode="off"``: report only)."""
    kinds = tuple(kind for kind, count in manifest["manifest"]["counts"].items() if count)
    day = str(manifest["manifest"]["created_at"])[:10]
    if gate_allows(batch_id, kinds, root=root, mode=mode) and gate_allows(day, kinds, root=root, mode=mode):
        return None
    rules = blocking_rules(root, batch_id, kinds) + blocking_rules(root, day, kinds)
    return "held by the quality gate: " + ", ".join(sorted(set(rules)))
