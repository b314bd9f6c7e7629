"""`hub calendar` and `hub supervise` as a steward and a supervisor use them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.clock import CST
from connectors.db import provenance, supervision_orders
from hub.cli import main
from hub.settings import load_settings
from hub.zones import zone_engine
from tests.connectors.test_supervision import add_case


def test_calendar_import_and_show(hub_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["calendar", "show", "2027"]) == 1
    assert "2027: not covered" in capsys.readouterr().out
    assert main(["supervise", "run"]) == 0  # seeds the years chinesecalendar knows
    capsys.readouterr()
    assert main(["calendar", "show", "2026"]) == 0
    shown = capsys.readouterr().out
    import chinese_calendar

    days = [datetime(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    expected = sum(bool(chinese_calendar.is_workday(d.date())) for d in days)
    assert f"2026: {expected} working days (source chinesecalendar" in shown
    assert "2026-02-14  班 make-up working day" in shown and "2026-10-01  休 holiday" in shown

    bad = tmp_path / "bad.csv"
    bad.write_text("date,kind,note\n2027-01-02,休,元旦\n", "utf-8")
    assert main(["calendar", "import", str(bad)]) == 2
    assert "bad.csv:2: 2027-01-02 is a weekend day already" in capsys.readouterr().err
    good = tmp_path / "2027.csv"
    good.write_text("\ufeff# years: 2027\ndate,kind,note\n2027-01-01,休,元旦\n2027-02-20,班,春节调休\n", "utf-8")
    assert main(["calendar", "import", str(good), "--by", "法制处 张三"]) == 0
    assert "imported 2 exception(s) for 2027 from 2027.csv" in capsys.readouterr().out
    assert main(["calendar", "show", "2027", "--json"]) == 0
    year = json.loads(capsys.readouterr().out)
    assert year["covered"] and year["source"] == "2027.csv"
    assert year["working_days"] == 261 - 1 + 1  # 261 weekdays in 2027, one off, one Saturday on
    with zone_engine(load_settings(), "admin").connect() as connection:
        recorded = connection.execute(select(provenance.c.detail).where(provenance.c.record_id == "calendar:2027")).scalar_one()
    assert recorded["operator"] == "法制处 张三" and recorded["exceptions"] == 2


def test_issue_answer_close_an_order(hub_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    engine = zone_engine(load_settings(), "admin")
    moment = datetime.now(CST).replace(microsecond=0)
    number = add_case(engine, 1, registered=moment - timedelta(days=2), accepted=moment - timedelta(days=1))
    deadline = (moment + timedelta(days=3)).strftime("%Y-%m-%d %H:%M")
    assert main(["supervise", "issue", number, "--by", "监察室 李明", "--instruction", "请说明进度", "--deadline", deadline]) == 0
    assert f"supervision order 1 issued on {number}" in capsys.readouterr().out
    assert main(["supervise", "issue", "32010000019999999999", "--by", "x", "--instruction", "y", "--deadline", deadline]) == 2
    assert "no case 32010000019999999999" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["supervise", "issue", number, "--by", "x", "--instruction", "y", "--deadline", "next week"])
    capsys.readouterr()
    assert main(["supervise", "orders"]) == 0
    assert "已下达" in capsys.readouterr().out
    assert main(["supervise", "answer", "1", "--by", "审批处 王芳", "--answer", "已开始核查"]) == 0
    assert main(["supervise", "answer", "1", "--by", "审批处 王芳", "--answer", "again"]) == 2
    assert "not awaiting an answer" in capsys.readouterr().err
    assert main(["supervise", "close", "1", "--by", "监察室 李明", "--note", "已办结"]) == 0
    capsys.readouterr()
    assert main(["supervise", "orders"]) == 0
    assert "no open supervision orders" in capsys.readouterr().out
    assert main(["supervise", "orders", "--all", "--json"]) == 0
    [order] = json.loads(capsys.readouterr().out)
    assert (order["state"], order["answered_by"], order["closed_by"]) == ("closed", "审批处 王芳", "监察室 李明")
    with engine.connect() as connection:
        assert connection.execute(select(supervision_orders.c.close_note)).scalar_one() == "已办结"
        events = connection.execute(select(provenance.c.outcome).where(provenance.c.record_id == number)).scalars().all()
    assert events == ["order_issued", "order_answered", "order_closed"]
    assert main(["supervise", "alerts"]) == 0
