"""The one-page steward summary (数据质量简报): a self-contained HTML page per quality run.

First line: the reconciliation verdict (a mismatch comes first, with the ids to look up).
Then the failing rules ranked by the number of records that fail them, each with a few
masked example rows, then the trend over the last runs. Pure rendering: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from quality.reconciliation import Balance, describe

_STYLE = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}small{color:#666}
.verdict{padding:.6em 1em;font-weight:bold;border-radius:4px}
.bad{background:#fde2e1;color:#8a1c14}.good{background:#e3f4e1;color:#1d5e17}
table{border-collapse:collapse;margin:.4em 0 1em}td,th{border:1px solid #ccc;padding:.25em .5em;
font-size:.9em;text-align:left;vertical-align:top}th{background:#f3f3f3}
.critical{color:#8a1c14;font-weight:bold}.warning{color:#8a5a00}
.bar{display:inline-block;height:.8em;background:#c0392b}.wbar{display:inline-block;height:.8em;background:#e0a800}
"""


def _label(zh: str, en: str) -> str:
    return f"{escape(zh)} <small>{escape(en)}</small>"


def render_summary(
    run: Mapping[str, Any],
    outcomes: Sequence[Mapping[str, Any]],
    balances: Sequence[Balance],
    history: Sequence[Mapping[str, Any]],
    *,
    data_docs: str | None = None,
    findings: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The summary page. ``run``: run_id, at, scope; ``outcomes``: ``RuleOutcome.as_dict()``;
    ``history``: earlier run records (oldest first), each with at, critical, warnings,
    mismatches; ``findings``: open conditions a steward must act on (kind, at, message),
    such as a year missing from the working-day calendar."""
    wrong = [b for b in balances if not b.balanced]
    lines = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        f"<title>数据质量简报 Data-quality summary {escape(str(run['scope']))}</title>",
        f"<style>{_STYLE}</style></head><body>",
    ]
    if wrong:
        lines.append('<p class="verdict bad" id="reconciliation">对账不平 · RECONCILIATION MISMATCH: '
                     + escape(describe(wrong[0]))
                     + (f" (+{len(wrong) - 1} more)" if len(wrong) > 1 else "") + "</p>")
    else:
        lines.append(f'<p class="verdict good" id="reconciliation">对账平衡 · reconciliation balanced '
                     f"({len(balances)} checks)</p>")
    lines.append(f"<h1>{_label('数据质量简报', 'Data-quality summary')} · {escape(str(run['scope']))}</h1>")
    lines.append(f"<p>运行 run <code>{escape(str(run['run_id']))}</code> · {escape(str(run['at']))}"
                 + (f' · <a href="{escape(data_docs)}">Data Docs</a>' if data_docs else "") + "</p>")

    if wrong:
        lines.append(f"<h2>{_label('对账差异', 'Reconciliation mismatches')}</h2><table>")
        lines.append("<tr><th>范围 scope</th><th>等式 identity</th><th>左 left</th><th>右 right</th>"
                     "<th>计数 counts</th><th>缺失 missing</th><th>重复 more than once</th></tr>")
        for b in wrong:
            counts = ", ".join(f"{k}={v}" for k, v in b.counts.items())
            lines.append(
                f"<tr><td>{escape(b.scope)}</td><td>{escape(b.identity)}</td><td>{b.left}</td>"
                f"<td>{b.right}</td><td>{escape(counts)}</td><td>{escape(', '.join(b.missing[:20]))}</td>"
                f"<td>{escape(', '.join(b.duplicated[:20]))}</td></tr>")
        lines.append("</table>")

    if findings:
        lines.append(f'<h2 id="findings">{_label("待处理事项", "Open findings to act on")}</h2><ul>')
        for finding in findings:
            lines.append(f'<li class="critical"><b>{escape(str(finding["kind"]))}</b> '
                         f'({escape(str(finding["at"]))}): {escape(str(finding["message"]))}</li>')
        lines.append("</ul>")

    failing = sorted((o for o in outcomes if not o["success"]), key=lambda o: (-o["failed"], o["rule"]))
    lines.append(f"<h2>{_label('未通过的规则', 'Failing rules, most records first')}</h2>")
    if not failing:
        lines.append("<p>全部规则通过 · every rule passed.</p>")
    for rank, outcome in enumerate(failing, start=1):
        severity = outcome["severity"]
        tag = "严重 critical" if severity == "critical" else "警告 warning"
        lines.append(
            f'<h3 id="{escape(outcome["rule"])}">{rank}. {escape(outcome["label"])} '
            f'<span class="{escape(severity)}">[{tag}]</span> — {outcome["failed"]} / {outcome["checked"]} '
            f"<small>({escape(outcome['suite'])} · {escape(outcome['rule'])})</small></h3>")
        ids = outcome["record_ids"]
        lines.append("<p>查询编号 ids to look up: " + escape(", ".join(ids[:10]))
                     + (" …" if len(ids) > 10 else "") + "</p>")
        examples = outcome["examples"]
        if examples:
            columns = list(examples[0])
            lines.append("<table><tr>" + "".join(f"<th>{escape(c)}</th>" for c in columns) + "</tr>")
            for row in examples:
                lines.append("<tr>" + "".join(
                    f"<td>{escape('' if row.get(c) is None else str(row.get(c)))}</td>" for c in columns
                ) + "</tr>")
            lines.append("</table>")

    lines.append(f"<h2>{_label('近期趋势', 'Trend over the last runs')}</h2>")
    lines.append("<table><tr><th>时间 at</th><th>范围 scope</th><th>严重 critical</th><th>警告 warnings</th>"
                 "<th>对账差异 mismatches</th><th></th></tr>")
    peak = max([1, *(int(h.get("critical", 0)) + int(h.get("warnings", 0)) for h in history)])
    for entry in history:
        critical, warnings = int(entry.get("critical", 0)), int(entry.get("warnings", 0))
        lines.append(
            f"<tr><td>{escape(str(entry.get('at')))}</td><td>{escape(str(entry.get('scope')))}</td>"
            f"<td>{critical}</td><td>{warnings}</td><td>{int(entry.get('mismatches', 0))}</td>"
            f'<td><span class="bar" style="width:{round(8 * critical / peak, 2)}em"></span>'
            f'<span class="wbar" style="width:{round(8 * warnings / peak, 2)}em"></span></td></tr>')
    lines.append("</table>")
    lines.append("<p><small>示例行已脱敏 · example rows are masked (ID numbers keep the first 6 and last 4 "
                 "characters, phones 138****5678, names keep the surname).</small></p>")
    lines.append("</body></html>")
    return "\n".join(lines)
