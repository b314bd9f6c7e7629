"""The supervision office's page in headless Chromium (Debian's ``chromium``), driven through
the Chrome DevTools Protocol, opened from disk (file://) with name resolution switched off:
the charts draw, the figures and Chinese headings are in the page, and nothing is requested
from anywhere but the page's own folder."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from supervision_kit import (
    APPLICANT_ID,
    APPLICANT_NAME,
    NOW_TEXT,
    case_number,
    dashboard_rows,
    insert,
)

from quality.supervision_report import write_dashboard
from tests.chromium import Page, chromium_page


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    # No name resolves: a link to any host would fail, and is recorded by the test.
    flags = ["--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,900"]
    with chromium_page(tmp_path_factory.mktemp("chromium-profile"), flags) as socket_:
        browser = Page(socket_)
        browser.call("Runtime.enable")
        browser.call("Network.enable")
        browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1,
                     mobile=False)
        yield browser


def test_the_dashboard_draws_offline(exchange_engine: Engine, tmp_path: Path, page: Page) -> None:
    insert(exchange_engine, **dashboard_rows())
    index = write_dashboard(exchange_engine, tmp_path / "site", now=datetime.fromisoformat(NOW_TEXT))
    page.events.clear()
    page.call("Page.navigate", url=index.as_uri())
    page.wait_for("document.readyState === 'complete' && document.body.dataset.charts === '2'")

    charts = page.evaluate(
        "[...document.querySelectorAll('canvas')].map(c => {"
        " const box = c.getBoundingClientRect();"
        " const pixels = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let painted = 0; for (let i = 3; i < pixels.length; i += 4) if (pixels[i]) painted++;"
        " return {id: c.id, rendered: c.dataset.rendered, width: box.width, height: box.height, painted}; })")
    assert [c["id"] for c in charts] == ["chart-departments", "chart-trend"]
    for chart in charts:
        assert chart["rendered"] == "1" and chart["width"] > 200 and chart["height"] > 200, chart
        assert chart["painted"] > 2000, chart  # bars, axes and labels, not a blank canvas

    shown = page.evaluate(
        "({title: document.title, h1: document.querySelector('h1').textContent,"
        " headings: [...document.querySelectorAll('h2')].map(h => h.textContent),"
        " cards: Object.fromEntries([...document.querySelectorAll('.card')].map("
        "   c => [c.id, c.querySelector('.value').textContent])),"
        " alarms: [...document.querySelectorAll('#alarms-table tbody tr')].map(r => r.innerText),"
        " warnings: [...document.querySelectorAll('#warnings-table tbody tr')].map(r => r.innerText),"
        " orders: [...document.querySelectorAll('#orders-table tbody tr')].map(r => r.innerText),"
        " departments: [...document.querySelectorAll('#departments-table tbody tr')].map(r => r.innerText),"
        " text: document.body.innerText})")
    assert shown["title"] == shown["h1"] == "电子监察 · 监察室看板"
    assert shown["headings"] == ["在办预警 · 按处室", "近30天趋势", "在办报警（红牌）", "在办预警（黄牌）", "督办事项"]
    assert shown["cards"] == {"card-alarm": "2", "card-warning": "2", "card-reminder": "1", "card-rate": "17.6%",
                              "card-avg": "60%", "card-p90": "90%", "card-orders": "3"}
    assert len(shown["alarms"]) == 2 and shown["alarms"][0].startswith(case_number(17))
    assert "报警（红牌）" in shown["alarms"][0] and "2026年12月5日 09:00" in shown["alarms"][0]
    assert "2026年12月6日 09:00" in shown["alarms"][0]  # escalated 01:00 UTC, shown in local time
    assert len(shown["warnings"]) == 2 and "repeated_correction" in shown["warnings"][1]
    assert shown["orders"][0].split("\t")[1:] == [case_number(17), "审批一处", "2026年12月1日 10:00",
                                                  "2026年12月5日 17:00", "已下达", "已逾期"]
    assert shown["departments"][0].split("\t") == ["审批一处", "1", "2", "0", "3"]
    assert "生成时间 2026年12月6日 14:10" in shown["text"] and "+08:00" not in shown["text"]
    assert APPLICANT_NAME not in shown["text"] and APPLICANT_ID not in shown["text"]

    page.evaluate("new Promise(r => setTimeout(r, 100))")  # let the last events arrive
    requests = [e["params"]["request"]["url"] for e in page.events if e["method"] == "Network.requestWillBeSent"]
    assert index.as_uri() in requests and (index.parent / "chart.umd.min.js").as_uri() in requests
    assert [url for url in requests if not url.startswith("file://")] == []
    errors = [e for e in page.events if e["method"] in ("Runtime.exceptionThrown", "Network.loadingFailed")]
    assert errors == []
    console = [e["params"] for e in page.events if e["method"] == "Runtime.consoleAPICalled"
               and e["params"]["type"] in ("error", "warning")]
    assert console == []

    shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
    picture = tmp_path / "dashboard.png"
    picture.write_bytes(base64.b64decode(shot["data"]))
    assert picture.stat().st_size > 20_000
