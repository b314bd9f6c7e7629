"""The supervision office's dashboard (监察室看板) and the monthly statistics for performance
evaluation (绩效评估), read from the tables the supervision pass fills
(``supervision_clocks``, ``supervision_alerts``, ``supervision_orders``) and from the
exchange database's applications, rejections and results.

Everything here only reads. Figures carry case numbers, item codes, rule codes and
departments, never personal data. Times are shown in the agency's time (China Standard
Time, Asia/Shanghai); every figure is defined in ``docs/supervision-dashboard.md``.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import orjson
from sqlalchemy import Engine, and_, func, or_, select

from connectors.clock import CST, iso
from connectors.db import (
    case_results,
    cases,
    rejections,
    supervision_alerts,
    supervision_clocks,
    supervision_orders,
)
from connectors.files import write_atomic
from rules.alerts import LEVEL_NAMES, LEVELS
from rules.catalogue import UNASSIGNED_DEPARTMENT
from rules.supervision import ORDER_STATE_NAMES, RULE_NAMES

CARD_NAMES: Final = {"reminder": "提醒", "warning": "预警（黄牌）", "alarm": "报警（红牌）"}
OPEN_ORDER_STATES: Final = ("issued", "answered")
FINISHED_STATES: Final = ("finished_on_time", "finished_late")
OPEN_CLOCK_STATES: Final = ("running", "paused", "overdue")
UNASSIGNED: Final = UNASSIGNED_DEPARTMENT
# A working day's seconds under the default working hours, to show paused working time in days.
WORKING_DAY_SECONDS: Final = 7 * 3600
TITLE: Final = "电子监察 · 监察室看板"

ASSETS = Path(__file__).resolve().parent / "supervision_assets"
DASHBOARD_SCRIPT: Final = "dashboard.js"


@dataclass(frozen=True)
class VendoredFile:
    """A file of the vendored chart library: its exact npm package, its path in the package,
    its name in ``supervision_assets`` and next to the page."""

    package: str
    source: str
    local: str


VENDORED: Final = (
    VendoredFile("chart.js@4.6.2", "dist/chart.umd.min.js", "chart.umd.min.js"),
    VendoredFile("chart.js@4.6.2", "LICENSE.md", "chart.js-LICENSE.md"),
)
PAGE_FILES: Final = (*(f.local for f in VENDORED), DASHBOARD_SCRIPT, "NOTICE.md")


class MissingAsset(RuntimeError):
    """A file of the dashboard is missing from the installation (a broken checkout)."""


# --- times ------------------------------------------------------------------------------


def _moment(text: str) -> datetime:
    """A stored ISO-8601 time; one without an offset is taken as China Standard Time."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=CST) if moment.tzinfo is None else moment


def _local_day(text: str) -> date:
    return _moment(text).astimezone(CST).date()


def local_time_text(moment: datetime | str) -> str:
    """A time as the agency reads it, e.g. ``2026年12月6日 14:10``."""
    at = (_moment(moment) if isinstance(moment, str) else moment).astimezone(CST)
    return f"{at.year}年{at.month}月{at.day}日 {at.hour:02d}:{at.minute:02d}"


def _day_prefix(day: date) -> str:
    """A lower bound for stored ISO times of ``day`` in any offset: the day before, as text.
    Rows are narrowed by text in SQL and placed on their local day in Python."""
    return (day - timedelta(days=1)).isoformat()


# --- arithmetic ---------------------------------------------------------------------------


def percent(part: int, whole: int) -> float | None:
    """``part`` of ``whole`` in per cent to one decimal; None (not 0) when ``whole`` is 0."""
    return None if whole == 0 else round(100 * part / whole, 1)


def change_percent(current: int, base: int) -> float | None:
    """Change from ``base`` to ``current`` in per cent to one decimal; None when ``base`` is 0
    (no rate can be given, which is not the same as no change)."""
    return None if base == 0 else round(100 * (current - base) / base, 1)


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``share`` of the values at or
    below it (``sorted(values)[ceil(share * n) - 1]``); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(share * len(ordered)), 1) - 1]


# --- the dashboard -------------------------------------------------------------------------


def _reached_at(raised_at: str, escalated_at: str | None) -> str:
    """When an alert reached the level it has now: escalated, else raised."""
    return escalated_at or raised_at


def dashboard_data(engine: Engine, *, now: datetime, days: int = 30) -> dict[str, Any]:
    """Everything the supervision office's page shows, as plain JSON-ready values.

    - ``open_alerts``: alerts with state ``open``, counted by level and by department.
    - ``overdue``: the overdue rate of the case-level promised clocks (``step_no`` 0,
      ``basis`` ``promised``). Counted clocks are the open ones (running, paused, overdue)
      plus the finished ones whose ``finished_at`` falls on one of the last ``days`` local
      days; the rate is (finished ``finished_late`` + open ``overdue``) / counted, in per
      cent. States are those of the last supervision pass (``as_of``).
    - ``time_used``: ``used_seconds / limit_seconds`` in per cent of the same clocks that
      finished within the window: the mean and the nearest-rank 90th percentile.
    - ``trend``: per local day of the window, the alerts that reached their current level
      that day (escalated, else raised) by that level, the cases finished that day
      (``case_results``) and the case-level promised clocks finished late that day.
    - ``open_alarms``, ``open_warnings``: the open alerts of those levels, newest first.
    - ``open_orders``: supervision orders (督办) not closed, earliest deadline first.
    """
    if days < 1:
        raise ValueError("the dashboard needs a window of at least one day")
    today = now.astimezone(CST).date()
    first = today - timedelta(days=days - 1)
    window = [first + timedelta(days=n) for n in range(days)]
    lower = _day_prefix(first)
    clocks = supervision_clocks.c
    alerts = supervision_alerts.c
    orders = supervision_orders.c
    case_clock = and_(clocks.step_no == 0, clocks.basis == "promised")
    with engine.connect() as connection:
        as_of = connection.execute(select(func.max(clocks.read_at))).scalar()
        open_alerts = connection.execute(
            select(alerts.id, alerts.rule, alerts.level, alerts.case_number, alerts.step_no,
                   alerts.department, alerts.power_code, alerts.raised_at, alerts.escalated_at, alerts.detail)
            .where(alerts.state == "open")
        ).all()
        case_clocks = connection.execute(
            select(clocks.state, clocks.finished_at, clocks.used_seconds, clocks.limit_seconds, clocks.paused_seconds,
                   clocks.unit)
            .where(case_clock, (clocks.finished_at.is_(None)) | (clocks.finished_at >= lower))
        ).all()
        reached = connection.execute(
            select(alerts.level, alerts.raised_at, alerts.escalated_at)
            .where(func.coalesce(alerts.escalated_at, alerts.raised_at) >= lower)
        ).all()
        finished = connection.execute(
            select(case_results.c.finished_at).where(case_results.c.finished_at >= lower)
        ).scalars().all()
        order_rows = connection.execute(
            select(orders.id, orders.case_number, orders.deadline, orders.issued_at, orders.state,
                   clocks.department)
            .select_from(supervision_orders.outerjoin(
                supervision_clocks, and_(clocks.case_number == orders.case_number, case_clock)))
            .where(orders.state.in_(OPEN_ORDER_STATES))
        ).all()

    in_window = set(window)
    by_level = Counter(row.level for row in open_alerts)
    by_department: dict[str, Counter[str]] = defaultdict(Counter)
    for row in open_alerts:
        by_department[row.department][row.level] += 1

    open_clocks = [c for c in case_clocks if c.state in OPEN_CLOCK_STATES]
    finished_clocks = [c for c in case_clocks if c.state in FINISHED_STATES and c.finished_at
                       and _local_day(c.finished_at) in in_window]
    late = sum(1 for c in finished_clocks if c.state == "finished_late")
    overdue_open = sum(1 for c in open_clocks if c.state == "overdue")
    counted = len(open_clocks) + len(finished_clocks)
    used = [100 * c.used_seconds / c.limit_seconds for c in finished_clocks if c.limit_seconds > 0]
    p90 = percentile(used, 0.9)

    trend: dict[date, Counter[str]] = {day: Counter() for day in window}
    for level, raised_at, escalated_at in reached:
        day = _local_day(_reached_at(raised_at, escalated_at))
        if day in trend:
            trend[day][level] += 1
    for text in finished:
        day = _local_day(text)
        if day in trend:
            trend[day]["finished"] += 1
    for c in finished_clocks:
        if c.state == "finished_late":
            trend[_local_day(c.finished_at)]["finished_late"] += 1

    def alert_item(row: Any) -> dict[str, Any]:
        at = _reached_at(row.raised_at, row.escalated_at)
        return {"id": row.id, "case_number": row.case_number, "rule": row.rule,
                "rule_name": RULE_NAMES.get(row.rule, row.rule), "detail": row.detail, "level": row.level,
                "level_name": LEVEL_NAMES.get(row.level, row.level), "step_no": row.step_no,
                "department": row.department, "power_code": row.power_code,
                "raised_at": row.raised_at, "raised_text": local_time_text(row.raised_at),
                "escalated_at": row.escalated_at, "reached_at": at}

    newest_first = sorted(open_alerts, key=lambda r: (_moment(_reached_at(r.raised_at, r.escalated_at)), r.id),
                          reverse=True)
    return {
        "title": TITLE,
        "generated_at": iso(now),
        "generated_text": local_time_text(now),
        "as_of": as_of,
        "as_of_text": local_time_text(as_of) if as_of else None,
        "days": days,
        "window": {"from": first.isoformat(), "to": today.isoformat()},
        "levels": [{"level": level, "name": LEVEL_NAMES[level]} for level in LEVELS],
        "open_alerts": {
            "total": len(open_alerts),
            "by_level": {level: by_level.get(level, 0) for level in LEVELS},
            "by_department": [
                {"department": department, **{level: counts.get(level, 0) for level in LEVELS},
                 "total": sum(counts.values())}
                for department, counts in sorted(by_department.items(),
                                                 key=lambda kv: (-kv[1]["alarm"], -sum(kv[1].values()), kv[0]))
            ],
        },
        "overdue": {
            "counted": counted, "open": len(open_clocks), "overdue_open": overdue_open,
            # Paused time (补正, 暂停, 中止, Art. 45, 挂起) of the open case clocks: how many are
            # paused now, and how many days their clocks have been stopped in all.
            "paused_open": sum(1 for c in open_clocks if c.state == "paused"),
            "paused_days": round(sum(c.paused_seconds / (WORKING_DAY_SECONDS if c.unit == "working_days" else 86_400)
                                     for c in open_clocks), 1),
            "finished": len(finished_clocks), "finished_late": late, "rate": percent(late + overdue_open, counted),
        },
        "time_used": {
            "cases": len(used),
            "average": round(sum(used) / len(used), 1) if used else None,
            "p90": round(p90, 1) if p90 is not None else None,
        },
        "trend": [
            {"day": day.isoformat(), **{level: trend[day].get(level, 0) for level in LEVELS},
             "finished": trend[day].get("finished", 0), "finished_late": trend[day].get("finished_late", 0)}
            for day in window
        ],
        "open_alarms": [alert_item(r) for r in newest_first if r.level == "alarm"],
        "open_warnings": [alert_item(r) for r in newest_first if r.level == "warning"],
        "open_orders": [
            {"id": row.id, "case_number": row.case_number, "department": row.department or UNASSIGNED,
             "deadline": row.deadline, "deadline_text": local_time_text(row.deadline),
             "issued_at": row.issued_at, "issued_text": local_time_text(row.issued_at),
             "state": row.state, "state_name": ORDER_STATE_NAMES.get(row.state, row.state),
             "past_deadline": _moment(row.deadline) < now}
            for row in sorted(order_rows, key=lambda r: (_moment(r.deadline), r.id))
        ],
    }


def _figure(value: float | None, suffix: str = "%") -> str:
    return "—" if value is None else f"{value:g}{suffix}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, table_id: str, empty: str) -> str:
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        body = f'<tr class="empty"><td colspan="{len(headers)}">{html.escape(empty)}</td></tr>'
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _alert_rows(items: Iterable[Mapping[str, Any]]) -> list[list[str]]:
    return [[i["case_number"], i["rule_name"], CARD_NAMES.get(i["level"], i["level"]),
             "整个办件" if i["step_no"] == 0 else f"督办单{i['step_no']}" if i["rule"].startswith("ORDER_")
             else f"第{i['step_no']}环节", i["detail"], i["department"], i["power_code"],
             local_time_text(i["raised_at"]),
             local_time_text(i["escalated_at"]) if i["escalated_at"] else "—"] for i in items]


_PAGE_STYLE = """
body{font-family:"WenQuanYi Zen Hei","Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:0;
background:#f4f5f7;color:#1f2329}
header{background:#8c1d18;color:#fff;padding:14px 24px}header h1{margin:0;font-size:24px}
header p{margin:4px 0 0;font-size:14px;opacity:.9}main{padding:16px 24px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:16px}
.card{background:#fff;border-radius:6px;padding:12px 16px;min-width:140px;box-shadow:0 1px 2px #0002}
.card .label{font-size:13px;color:#646a73}.card .value{font-size:28px;font-weight:bold;margin-top:4px}
.card.alarm .value{color:#d4252c}.card.warning .value{color:#b78400}.card.reminder .value{color:#3370ff}
section{background:#fff;border-radius:6px;padding:12px 16px;margin-bottom:16px;box-shadow:0 1px 2px #0002}
h2{font-size:18px;margin:4px 0 12px}.charts{display:grid;grid-template-columns:1fr 1fr;gap:16px;align-items:start}
.chart-box{position:relative;height:300px}table{border-collapse:collapse;width:100%;font-size:14px}
th,td{border-bottom:1px solid #e5e6eb;padding:6px 8px;text-align:left}th{background:#f2f3f5}
tr.empty td{color:#8f959e}.note{font-size:12px;color:#646a73}
"""


def _json_for_script(value: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_dashboard(data: Mapping[str, Any]) -> str:
    """The page of :func:`dashboard_data`: tables rendered here, charts drawn in the browser
    by the vendored Chart.js from the same data embedded as JSON (no request at all)."""
    levels = data["open_alerts"]["by_level"]
    overdue, used = data["overdue"], data["time_used"]
    cards = [
        ("alarm", "在办报警（红牌）", str(levels["alarm"])),
        ("warning", "在办预警（黄牌）", str(levels["warning"])),
        ("reminder", "在办提醒", str(levels["reminder"])),
        ("rate", f"超期率（近{data['days']}天）", _figure(overdue["rate"])),
        ("avg", "平均用时占承诺时限", _figure(used["average"])),
        ("p90", "用时90%分位", _figure(used["p90"])),
        ("orders", "督办中", str(len(data["open_orders"]))),
    ]
    card_html = "".join(
        f'<div class="card {key}" id="card-{key}"><div class="label">{html.escape(label)}</div>'
        f'<div class="value">{html.escape(value)}</div></div>' for key, label, value in cards)
    departments = _table(
        ["处室", "报警", "预警", "提醒", "合计"],
        ([d["department"], str(d["alarm"]), str(d["warning"]), str(d["reminder"]), str(d["total"])]
         for d in data["open_alerts"]["by_department"]),
        table_id="departments-table", empty="当前没有在办预警")
    alert_headers = ["办件编号", "规则", "等级", "对象", "说明", "处室", "事项编码", "发出时间", "升级时间"]
    alarms = _table(alert_headers, _alert_rows(data["open_alarms"]), table_id="alarms-table",
                    empty="当前没有在办报警")
    warnings = _table(alert_headers, _alert_rows(data["open_warnings"]), table_id="warnings-table",
                      empty="当前没有在办预警")
    orders = _table(
        ["督办编号", "办件编号", "处室", "下达时间", "办理期限", "状态", "是否逾期"],
        ([str(o["id"]), o["case_number"], o["department"], o["issued_text"], o["deadline_text"],
          o["state_name"], "已逾期" if o["past_deadline"] else "未逾期"] for o in data["open_orders"]),
        table_id="orders-table", empty="当前没有在办督办")
    window = data["window"]
    first, last = date.fromisoformat(window["from"]), date.fromisoformat(window["to"])
    as_of = data["as_of_text"] or "尚无监察数据"
    overdue_note = (f"计入时钟 {overdue['counted']} 个：在办 {overdue['open']} 个（其中超期 {overdue['overdue_open']} 个，"
                    f"暂停计时 {overdue['paused_open']} 个，在办累计暂停 {overdue['paused_days']} 天），"
                    f"近{data['days']}天办结 {overdue['finished']} 个（其中超期办结 {overdue['finished_late']} 个）；"
                    f"用时统计办件 {used['cases']} 件。")
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(data['title'])}</title>
<style>{_PAGE_STYLE}</style>
</head>
<body>
<header><h1>{html.escape(data['title'])}</h1>
<p id="generated">生成时间 {html.escape(data['generated_text'])} · 监察数据截至 {html.escape(as_of)} · 统计区间 {first.month}月{first.day}日至{last.month}月{last.day}日（近{data['days']}天）</p></header>
<main>
<div class="cards">{card_html}</div>
<p class="note" id="overdue-note">{html.escape(overdue_note)}</p>
<section><h2>在办预警 · 按处室</h2>
<div class="charts"><div class="chart-box"><canvas id="chart-departments" aria-label="在办预警按处室"></canvas></div>
<div>{departments}</div></div></section>
<section><h2>近{data['days']}天趋势</h2>
<div class="chart-box"><canvas id="chart-trend" aria-label="近{data['days']}天趋势"></canvas></div></section>
<section><h2>在办报警（红牌）</h2>{alarms}</section>
<section><h2>在办预警（黄牌）</h2>{warnings}</section>
<section><h2>督办事项</h2>{orders}</section>
<p class="note">等级：提醒、预警（黄牌）、报警（红牌）。各项指标的定义见 docs/supervision-dashboard.md。图表由随页附带的 Chart.js 绘制（MIT 许可，见 NOTICE.md），无需联网。</p>
</main>
<script type="application/json" id="dashboard-data">{_json_for_script(data)}</script>
<script src="chart.umd.min.js"></script>
<script src="{DASHBOARD_SCRIPT}"></script>
</body>
</html>
"""


def install_page_files(out_dir: Path) -> None:
    """Copy the chart library, its licence, its notice and the page's script next to the page
    (only what is missing or changed)."""
    for name in PAGE_FILES:
        source = ASSETS / name
        if not source.is_file():
            raise MissingAsset(f"supervision dashboard file {source} is missing; "
                               "run scripts/vendor_supervision_assets.py or restore the checkout")
        destination = out_dir / name
        if destination.is_file() and destination.read_bytes() == source.read_bytes():
            continue
        partial = destination.with_name(destination.name + ".part")
        shutil.copyfile(source, partial)
        partial.replace(destination)


def write_dashboard(engine: Engine, out_dir: Path, *, now: datetime, days: int = 30) -> Path:
    """Write the dashboard to ``out_dir/index.html`` (atomically), the chart library beside it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    page = render_dashboard(dashboard_data(engine, now=now, days=days))
    install_page_files(out_dir)
    target = out_dir / "index.html"
    write_atomic(target, page.encode("utf-8"))
    return target


# --- the monthly statistics ---------------------------------------------------------------------

# (machine name, Chinese header): the one list of the statistics' columns, in order.
STATISTICS_COLUMNS: Final = (
    ("month", "月份"),
    ("department", "处室"),
    ("power_code", "事项编码"),
    ("registered", "登记办件数"),
    ("registered_previous_month", "上月登记办件数"),
    ("month_on_month_percent", "环比增减(%)"),
    ("registered_last_year", "去年同月登记办件数"),
    ("year_on_year_percent", "同比增减(%)"),
    ("rejected", "退回申请数"),
    ("rejection_rate_percent", "申请退回率(%)"),
    ("finished", "办结数"),
    ("finished_on_time", "按时办结数"),
    ("finished_late", "超期办结数"),
    ("overdue_rate_percent", "超期率(%)"),
    ("alerts_reminder", "提醒数"),
    ("alerts_warning", "预警数"),
    ("alerts_alarm", "报警数"),
)
_INTEGER_COLUMNS: Final = frozenset({
    "registered", "registered_previous_month", "registered_last_year", "rejected", "finished",
    "finished_on_time", "finished_late", "alerts_reminder", "alerts_warning", "alerts_alarm",
})
_PERCENT_COLUMNS: Final = frozenset(n for n, _ in STATISTICS_COLUMNS if n.endswith("_percent"))
_MONTH: Final = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def _month_start(month: str) -> date:
    match = _MONTH.match(month)
    if match is None:
        raise ValueError(f"month must be YYYY-MM, not {month!r}")
    return date(int(match.group(1)), int(match.group(2)), 1)


def _shift_month(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _envelope_power_code(envelope: str) -> str:
    """The item code (``power_code``) a rejected application asked for; "" when its envelope
    is not readable or names none (such applications are rejected for exactly that)."""
    try:
        document = orjson.loads(envelope)
    except orjson.JSONDecodeError:
        return ""
    code = document.get("power_code") if isinstance(document, dict) else None
    return code if isinstance(code, str) else ""


def monthly_statistics(
    engine: Engine, month: str, *, catalogue_departments: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One row per department and power item with anything to count in ``month`` (YYYY-MM,
    local time) or in its two base months, in the order of ``STATISTICS_COLUMNS``.

    A case belongs to the department of its case-level promised clock; an application or
    case without one (rejected, or not read by the supervision pass yet) to
    ``catalogue_departments[power_code]``, else to the department most of that item's
    case clocks have, else to ``未分配处室``. Registered: ``cases.registered_at`` (every origin);
    rejected: ``rejections.rejected_at`` (rate: rejected / (registered + rejected));
    finished: ``case_results.finished_at``; on time and late: case-level promised clocks
    finished in the month (rate: late / (on time + late)); alerts: those that reached their
    current level in the month (escalated, else raised), by that level. Month-on-month and
    year-on-year compare registrations with the previous month and the same month a year
    before, None when that base is 0.
    """
    first = _month_start(month)
    months = {first: "current", _shift_month(first, -1): "previous", _shift_month(first, -12): "last_year"}
    after = _shift_month(first, 1)
    clocks, alerts = supervision_clocks.c, supervision_alerts.c
    case_clock = and_(clocks.step_no == 0, clocks.basis == "promised")

    def month_of(text: str) -> str | None:
        day = _local_day(text)
        return months.get(day.replace(day=1))

    def near(column: Any, start: date, end: date) -> Any:
        return and_(column >= _day_prefix(start), column < (end + timedelta(days=1)).isoformat())

    with engine.connect() as connection:
        case_departments: dict[str, str] = {}
        item_departments: dict[str, Counter[str]] = defaultdict(Counter)
        for case_number, department, power_code in connection.execute(
                select(clocks.case_number, clocks.department, clocks.power_code).where(case_clock)):
            case_departments[case_number] = department
            item_departments[power_code][department] += 1
        # Cases of every origin (internet, counter, ex officio).
        registered = connection.execute(
            select(cases.c.case_number, cases.c.power_code, cases.c.registered_at)
            .where(or_(*(near(cases.c.registered_at, start, _shift_month(start, 1)) for start in months)))
        ).all()
        rejected = connection.execute(
            select(rejections.c.rejected_at, rejections.c.envelope)
            .where(near(rejections.c.rejected_at, first, after))
        ).all()
        finished = connection.execute(
            select(case_results.c.case_number, case_results.c.finished_at, cases.c.power_code)
            .select_from(case_results.join(cases, cases.c.case_number == case_results.c.case_number))
            .where(near(case_results.c.finished_at, first, after))
        ).all()
        timed = connection.execute(
            select(clocks.department, clocks.power_code, clocks.state, clocks.finished_at)
            .where(case_clock, clocks.state.in_(FINISHED_STATES), near(clocks.finished_at, first, after))
        ).all()
        raised = connection.execute(
            select(alerts.department, alerts.power_code, alerts.level, alerts.raised_at, alerts.escalated_at)
            .where(near(func.coalesce(alerts.escalated_at, alerts.raised_at), first, after))
        ).all()

    def item_department(power_code: str) -> str:
        if catalogue_departments is not None and power_code in catalogue_departments:
            return catalogue_departments[power_code]
        counts = item_departments.get(power_code)
        if counts:
            return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        return UNASSIGNED

    figures: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for case_number, power_code, registered_at in registered:
        which = month_of(registered_at)
        if which is not None:
            department = case_departments.get(case_number) or item_department(power_code)
            figures[department, power_code][f"registered_{which}"] += 1
    for rejected_at, envelope in rejected:
        if month_of(rejected_at) == "current":
            power_code = _envelope_power_code(envelope)
            figures[item_department(power_code), power_code]["rejected"] += 1
    for case_number, finished_at, power_code in finished:
        if month_of(finished_at) == "current":
            department = case_departments.get(case_number) or item_department(power_code)
            figures[department, power_code]["finished"] += 1
    for department, power_code, state, finished_at in timed:
        if month_of(finished_at) == "current":
            figures[department, power_code][state] += 1
    for department, power_code, level, raised_at, escalated_at in raised:
        if month_of(_reached_at(raised_at, escalated_at)) == "current":
            figures[department, power_code][f"alerts_{level}"] += 1

    rows = []
    for (department, power_code), counts in sorted(figures.items()):
        current = counts["registered_current"]
        previous, last_year = counts["registered_previous"], counts["registered_last_year"]
        on_time, late = counts["finished_on_time"], counts["finished_late"]
        row = {
            "month": month, "department": department, "power_code": power_code,
            "registered": current,
            "registered_previous_month": previous,
            "month_on_month_percent": change_percent(current, previous),
            "registered_last_year": last_year,
            "year_on_year_percent": change_percent(current, last_year),
            "rejected": counts["rejected"],
            "rejection_rate_percent": percent(counts["rejected"], current + counts["rejected"]),
            "finished": counts["finished"],
            "finished_on_time": on_time,
            "finished_late": late,
            "overdue_rate_percent": percent(late, on_time + late),
            **{f"alerts_{level}": counts[f"alerts_{level}"] for level in LEVELS},
        }
        rows.append({name: row[name] for name, _ in STATISTICS_COLUMNS})
    return rows


def statistics_csv(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """The statistics as CSV: UTF-8 with a byte-order mark (spreadsheet programs then read the
    Chinese), the Chinese headers in the first row, the machine names in the second; an
    undefined rate is an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([label for _, label in STATISTICS_COLUMNS])
    writer.writerow([name for name, _ in STATISTICS_COLUMNS])
    for row in rows:
        writer.writerow(["" if row[name] is None else row[name] for name, _ in STATISTICS_COLUMNS])
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


def statistics_parquet(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """The statistics as Parquet: the machine names as columns (each field's Chinese header in
    its metadata), counts as int64, rates as nullable float64."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def kind(name: str) -> Any:
        if name in _INTEGER_COLUMNS:
            return pa.int64()
        return pa.float64() if name in _PERCENT_COLUMNS else pa.string()

    schema = pa.schema([pa.field(name, kind(name), nullable=name in _PERCENT_COLUMNS,
                                 metadata={"label": label}) for name, label in STATISTICS_COLUMNS])
    table = pa.Table.from_pylist([dict(row) for row in rows], schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def write_monthly_statistics(
    engine: Engine, out_dir: Path, month: str, *, catalogue_departments: Mapping[str, str] | None = None
) -> tuple[Path, Path]:
    """Write ``statistics-YYYY-MM.csv`` and ``.parquet`` into ``out_dir`` (each atomically)."""
    rows = monthly_statistics(engine, month, catalogue_departments=catalogue_departments)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = out_dir / f"statistics-{month}.csv", out_dir / f"statistics-{month}.parquet"
    write_atomic(csv_path, statistics_csv(rows))
    write_atomic(parquet_path, statistics_parquet(rows))
    return csv_path, parquet_path
