"""The supervision office's dashboard figures and the monthly statistics, from hand-made
rows on SQLite and PostgreSQL, against figures worked out by hand (see supervision_kit)."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from supervision_kit import (
    APPLICANT_ID,
    APPLICANT_MOBILE,
    APPLICANT_NAME,
    NOW_TEXT,
    alert,
    application,
    case_number,
    clock,
    dashboard_rows,
    insert,
    registered_case,
    rejected_envelope,
    rejection,
    result,
)

from quality.supervision_report import (
    STATISTICS_COLUMNS,
    change_percent,
    dashboard_data,
    local_time_text,
    monthly_statistics,
    percent,
    percentile,
    render_dashboard,
    statistics_csv,
    write_dashboard,
    write_monthly_statistics,
)

NOW = datetime.fromisoformat(NOW_TEXT)


def test_arithmetic_helpers() -> None:
    assert percentile([10, 20, 30, 40, 50, 60, 70, 80, 90, 150], 0.9) == 90  # nearest rank, not 96
    assert percentile([5], 0.9) == 5 and percentile([], 0.9) is None
    assert percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 0.9) == 10  # ceil(9.9) = 10th
    assert change_percent(3, 2) == 50.0 and change_percent(1, 4) == -75.0
    assert change_percent(5, 0) is None and change_percent(0, 0) is None
    assert percent(3, 17) == 17.6 and percent(0, 0) is None and percent(0, 4) == 0.0
    assert local_time_text("2026-12-06T06:10:00Z") == "2026年12月6日 14:10"
    assert local_time_text("2026-01-02T09:05:00+08:00") == "2026年1月2日 09:05"


@pytest.fixture
def dashboard_engine(exchange_engine: Engine) -> Engine:
    insert(exchange_engine, **dashboard_rows())
    return exchange_engine


def test_dashboard_figures(dashboard_engine: Engine) -> None:
    data = dashboard_data(dashboard_engine, now=NOW, days=30)
    assert data["window"] == {"from": "2026-11-07", "to": "2026-12-06"}
    assert data["as_of"] == "2026-12-06T14:00:00+08:00" and data["as_of_text"] == "2026年12月6日 14:00"
    opened = data["open_alerts"]
    assert opened["total"] == 5
    assert opened["by_level"] == {"reminder": 1, "warning": 2, "alarm": 2}
    assert opened["by_department"] == [
        {"department": "审批一处", "reminder": 0, "warning": 2, "alarm": 1, "total": 3},
        {"department": "审批二处", "reminder": 0, "warning": 0, "alarm": 1, "total": 1},
        {"department": "执法支队", "reminder": 1, "warning": 0, "alarm": 0, "total": 1},
    ]
    # 7 open clocks (2 overdue) + 10 finished in the window (1 late): (1 + 2) / 17.
    assert data["overdue"] == {"counted": 17, "open": 7, "overdue_open": 2, "finished": 10,
                               "finished_late": 1, "rate": 17.6, "paused_open": 1, "paused_days": 2.5}
    # used/limit of the ten: 10..90 and 150 per cent; mean 60, nearest-rank p90 the 9th value.
    assert data["time_used"] == {"cases": 10, "average": 60.0, "p90": 90.0}

    trend = {d["day"]: d for d in data["trend"]}
    assert len(data["trend"]) == 30 and data["trend"][0]["day"] == "2026-11-07"
    assert trend["2026-12-06"] == {"day": "2026-12-06", "reminder": 1, "warning": 1, "alarm": 1,
                                   "finished": 0, "finished_late": 0}
    assert trend["2026-12-05"] == {"day": "2026-12-05", "reminder": 0, "warning": 0, "alarm": 0,
                                   "finished": 2, "finished_late": 1}
    assert (trend["2026-12-04"]["alarm"], trend["2026-12-04"]["finished"]) == (1, 1)
    assert trend["2026-12-03"]["warning"] == 1 and trend["2026-11-30"]["warning"] == 1
    assert trend["2026-11-07"]["finished"] == 1  # finished 16:30 UTC the day before
    assert trend["2026-11-20"]["finished"] == 2
    assert sum(d["finished"] for d in data["trend"]) == 11
    assert sum(d["finished_late"] for d in data["trend"]) == 1
    assert sum(d[level] for d in data["trend"] for level in ("reminder", "warning", "alarm")) == 6

    assert [(a["id"], a["case_number"], a["level_name"]) for a in data["open_alarms"]] == [
        (1, case_number(17), "报警"), (2, case_number(18), "报警")]
    assert [(a["id"], a["rule"], a["department"]) for a in data["open_warnings"]] == [
        (3, "promised_time", "审批一处"), (4, "repeated_correction", "审批一处")]
    assert data["open_alarms"][0]["raised_text"] == "2026年12月5日 09:00"
    assert [(o["id"], o["department"], o["state_name"], o["past_deadline"]) for o in data["open_orders"]] == [
        (1, "审批一处", "已下达", True), (4, "审批一处", "已下达", False), (2, "审批二处", "已回复", False)]
    assert data["open_orders"][0]["deadline_text"] == "2026年12月5日 17:00"


def test_the_window_moves_with_its_length(dashboard_engine: Engine) -> None:
    data = dashboard_data(dashboard_engine, now=NOW, days=7)
    assert data["window"] == {"from": "2026-11-30", "to": "2026-12-06"}
    # Finished in 11-30..12-06: cases 5 to 10 (50..90 and 150 per cent), 1 late; 7 open, 2 overdue.
    assert data["overdue"]["counted"] == 13 and data["overdue"]["rate"] == 23.1
    assert data["time_used"] == {"cases": 6, "average": 83.3, "p90": 150.0}


def test_an_empty_database_gives_empty_figures_not_zero_rates(exchange_engine: Engine) -> None:
    data = dashboard_data(exchange_engine, now=NOW)
    assert data["overdue"]["rate"] is None and data["time_used"]["average"] is None
    assert data["as_of"] is None and data["open_alarms"] == [] and data["open_orders"] == []
    page = render_dashboard(data)
    assert "当前没有在办报警" in page and "尚无监察数据" in page


def test_the_page_holds_no_personal_data_and_no_external_url(dashboard_engine: Engine, tmp_path: Path) -> None:
    page_path = write_dashboard(dashboard_engine, tmp_path / "site", now=NOW)
    assert page_path == tmp_path / "site" / "index.html"
    page = page_path.read_text("utf-8")
    for personal in (APPLICANT_NAME, APPLICANT_ID, APPLICANT_MOBILE, "监察室王五", "请加快办理"):
        assert personal not in page
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    assert sorted(p.name for p in page_path.parent.iterdir()) == [
        "NOTICE.md", "chart.js-LICENSE.md", "chart.umd.min.js", "dashboard.js", "index.html"]
    assert "电子监察 · 监察室看板" in page and "报警（红牌）" in page and "预警（黄牌）" in page
    embedded = page.split('<script type="application/json" id="dashboard-data">')[1].split("</script>")[0]
    assert json.loads(embedded)["overdue"]["rate"] == 17.6


# --- monthly statistics ---------------------------------------------------------------------

def _statistics_rows() -> dict[str, list[dict[str, Any]]]:
    registered = [
        (101, "P1", "2026-11-03T10:00:00+08:00"), (102, "P1", "2026-10-31T16:30:00Z"),  # 11-01 00:30 local
        (103, "P1", "2026-11-20T09:00:00+08:00"),  # no clock yet
        (104, "P1", "2026-10-15T10:00:00+08:00"), (105, "P1", "2026-10-31T15:30:00Z"),  # 10-31 23:30 local
        (106, "P1", "2026-11-30T16:30:00Z"),  # 12-01 local: December
        (201, "P2", "2026-11-05T10:00:00+08:00"),
        (202, "P2", "2026-10-02T10:00:00+08:00"), (203, "P2", "2026-10-03T10:00:00+08:00"),
        (204, "P2", "2026-10-04T10:00:00+08:00"), (205, "P2", "2026-10-05T10:00:00+08:00"),
        (206, "P2", "2025-11-06T10:00:00+08:00"), (207, "P2", "2025-11-07T10:00:00+08:00"),
        (208, "P3", "2026-10-08T10:00:00+08:00"),
        (209, "P2", "2025-12-01T10:00:00+08:00"),  # neither base month
    ]
    clocks = [
        clock(101, "审批一处", "P1", "finished_on_time", finished_at="2026-11-25T10:00:00+08:00"),
        clock(102, "审批一处", "P1", "running"),
        clock(104, "审批一处", "P1", "finished_late", finished_at="2026-11-10T10:00:00+08:00"),
        clock(105, "审批一处", "P1", "running"),
        clock(201, "审批二处", "P2", "running"),
        clock(202, "审批二处", "P2", "finished_on_time", finished_at="2026-11-02T10:00:00+08:00"),
        clock(203, "审批二处", "P2", "finished_on_time", finished_at="2026-11-03T10:00:00+08:00"),
        clock(204, "审批二处", "P2", "finished_late", finished_at="2026-11-30T15:00:00Z"),  # 23:00 local
        clock(205, "审批二处", "P2", "finished_on_time", finished_at="2026-10-20T10:00:00+08:00"),
        clock(206, "审批二处", "P2", "finished_on_time", finished_at="2025-11-20T10:00:00+08:00"),
        clock(207, "审批二处", "P2", "finished_on_time", finished_at="2025-11-21T10:00:00+08:00"),
        clock(208, "审批二处", "P3", "running"),
        clock(209, "审批二处", "P2", "finished_late", finished_at="2025-12-20T10:00:00+08:00"),
        # A step clock finished late in November: not a case's figure.
        clock(201, "审批二处", "P2", "finished_late", step_no=1, finished_at="2026-11-06T10:00:00+08:00"),
    ]
    results = [result(101, "2026-11-25T10:00:00+08:00"), result(104, "2026-11-10T10:00:00+08:00"),
               result(202, "2026-11-02T10:00:00+08:00"), result(203, "2026-11-03T10:00:00+08:00"),
               result(204, "2026-11-30T15:00:00Z"), result(205, "2026-10-20T10:00:00+08:00")]
    rejected = [
        rejection(1, "2026-11-04T10:00:00+08:00", rejected_envelope("P1")),
        rejection(2, "2026-11-05T10:00:00+08:00", rejected_envelope("P4")),
        rejection(3, "2026-11-06T10:00:00+08:00", rejected_envelope("P4")),
        rejection(4, "2026-11-07T10:00:00+08:00", "not json {"),
        rejection(5, "2026-10-30T10:00:00+08:00", rejected_envelope("P1")),  # October
        rejection(6, "2026-11-30T16:30:00Z", rejected_envelope("P1")),  # December, local
    ]
    alerts = [
        alert(1, 104, "warning", "审批一处", "2026-11-10T10:00:00+08:00", state="closed"),
        alert(2, 105, "alarm", "审批一处", "2026-11-12T10:00:00+08:00", escalated_at="2026-12-02T10:00:00+08:00"),
        alert(3, 102, "reminder", "审批一处", "2026-10-31T17:00:00Z"),  # 11-01 01:00 local
        alert(4, 201, "alarm", "审批二处", "2026-11-15T10:00:00+08:00", power_code="P2", state="lifted"),
        alert(5, 201, "alarm", "审批二处", "2026-11-16T10:00:00+08:00", power_code="P2", rule="late_penalty"),
        alert(6, 202, "warning", "审批二处", "2026-10-16T10:00:00+08:00", power_code="P2", state="lifted"),
    ]
    # A counter case and an ex-officio one count like the internet cases (they have no application).
    offline = [(107, "P1", "2026-11-21T09:00:00+08:00", "counter"), (210, "P2", "2025-11-08T10:00:00+08:00",
                                                                      "ex_officio")]
    return {"applications": [application(n, p, at) for n, p, at in registered],
            "cases": [registered_case(n, p, at) for n, p, at in registered]
            + [registered_case(n, p, at, o) for n, p, at, o in offline],
            "supervision_clocks": clocks,
            "case_results": results, "rejections": rejected, "supervision_alerts": alerts}


@pytest.fixture
def statistics_engine(exchange_engine: Engine) -> Engine:
    insert(exchange_engine, **_statistics_rows())
    return exchange_engine


def _figures(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[Any, ...]]:
    names = [n for n, _ in STATISTICS_COLUMNS][3:]
    assert all(r["month"] == "2026-11" for r in rows)
    return {(r["department"], r["power_code"]): tuple(r[n] for n in names) for r in rows}


def test_monthly_statistics(statistics_engine: Engine) -> None:
    rows = monthly_statistics(statistics_engine, "2026-11", catalogue_departments={"P4": "执法支队"})
    # registered, previous month, MoM %, last year, YoY %, rejected, rejection %, finished,
    # on time, late, overdue %, reminders, warnings, alarms
    assert _figures(rows) == {
        ("审批一处", "P1"): (4, 2, 100.0, 0, None, 1, 20.0, 2, 1, 1, 50.0, 1, 1, 0),
        ("审批二处", "P2"): (1, 4, -75.0, 3, -66.7, 0, 0.0, 3, 2, 1, 33.3, 0, 0, 2),
        ("审批二处", "P3"): (0, 1, -100.0, 0, None, 0, None, 0, 0, 0, None, 0, 0, 0),
        ("执法支队", "P4"): (0, 0, None, 0, None, 2, 100.0, 0, 0, 0, None, 0, 0, 0),
        ("未分配处室", ""): (0, 0, None, 0, None, 1, 100.0, 0, 0, 0, None, 0, 0, 0),
    }
    assert [(r["department"], r["power_code"]) for r in rows] == sorted(_figures(rows))
    assert list(rows[0]) == [n for n, _ in STATISTICS_COLUMNS]


def test_departments_come_from_the_clock_then_the_catalogue_then_the_item(statistics_engine: Engine) -> None:
    unmapped = _figures(monthly_statistics(statistics_engine, "2026-11", catalogue_departments=None))
    assert unmapped[("未分配处室", "P4")][5] == 2 and ("执法支队", "P4") not in unmapped
    mapped = _figures(monthly_statistics(statistics_engine, "2026-11",
                                         catalogue_departments={"P1": "综合处", "P4": "执法支队"}))
    # Cases 103 and 107 (counter) have no clock and the rejected P1 application none either:
    # the catalogue's department; cases with a clock stay with the clock's department.
    assert mapped[("综合处", "P1")][:7] == (2, 0, None, 0, None, 1, 33.3)
    assert mapped[("审批一处", "P1")][:7] == (2, 2, 0.0, 0, None, 0, 0.0)


def test_a_month_with_nothing_gives_no_rows(statistics_engine: Engine) -> None:
    assert monthly_statistics(statistics_engine, "2024-02") == []
    with pytest.raises(ValueError):
        monthly_statistics(statistics_engine, "2026-13")


def test_statistics_files(statistics_engine: Engine, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    csv_path, parquet_path = write_monthly_statistics(statistics_engine, tmp_path / "out", "2026-11")
    assert (csv_path.name, parquet_path.name) == ("statistics-2026-11.csv", "statistics-2026-11.parquet")
    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert lines[0][:4] == ["月份", "处室", "事项编码", "登记办件数"] and "超期率(%)" in lines[0]
    assert lines[1] == [n for n, _ in STATISTICS_COLUMNS]
    by_key = {(line[1], line[2]): dict(zip(lines[1], line)) for line in lines[2:]}
    p1 = by_key[("审批一处", "P1")]
    assert (p1["registered"], p1["month_on_month_percent"], p1["year_on_year_percent"]) == ("4", "100.0", "")
    assert by_key[("审批二处", "P3")]["rejection_rate_percent"] == ""
    assert APPLICANT_NAME.encode() not in raw

    table = pq.read_table(parquet_path)
    assert table.column_names == [n for n, _ in STATISTICS_COLUMNS]
    assert table.schema.field("overdue_rate_percent").metadata == {b"label": "超期率(%)".encode()}
    records = {(r["department"], r["power_code"]): r for r in table.to_pylist()}
    assert records[("审批二处", "P2")]["year_on_year_percent"] == -66.7
    assert records[("审批一处", "P1")]["year_on_year_percent"] is None
    assert records[("审批二处", "P2")]["registered_previous_month"] == 4
    assert len(records) == len(lines) - 2 == 5
    assert statistics_csv([]).decode("utf-8-sig").count("\r\n") == 2


def test_the_commands_write_where_the_settings_say(
    exchange_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub import zones
    from hub.cli import main
    from hub.settings import load_settings

    monkeypatch.setenv("HUB_DATA_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("HUB_ZONE", "admin")
    monkeypatch.setenv("HUB_EXCHANGE_DB_URL", exchange_url)
    monkeypatch.delenv("HUB_QUALITY_ROOT", raising=False)
    zones._prepared_engine.cache_clear()
    try:
        settings = load_settings()
        insert(zones.zone_engine(settings, "admin"), **_statistics_rows())
        assert main(["supervise", "dashboard"]) == 0
        page = settings.quality_root / "supervision" / "index.html"
        assert str(page) in capsys.readouterr().out and page.is_file()
        assert main(["supervise", "stats", "--month", "2026-11", "--out", str(tmp_path / "stats")]) == 0
        out = capsys.readouterr().out
        assert "statistics-2026-11.csv" in out and (tmp_path / "stats" / "statistics-2026-11.parquet").is_file()
        assert main(["supervise", "stats", "--month", "2026-13"]) == 2
        assert "YYYY-MM" in capsys.readouterr().err
    finally:
        zones._prepared_engine.cache_clear()
