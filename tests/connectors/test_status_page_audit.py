"""The status page checks, in headless Chromium with WebCrypto, that the status changes it
shows are in the administration zone's published audit log: a public folder made by the real
loop (status_publish → audit_publish → portal_publish), served by uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connectors.clock import registration_shift, shifted
from connectors.db import query_passwords
from connectors.status_store import leaf_event_ids, opened, public_lookup, read_status
from hub.cli import main
from hub.settings import Settings, load_settings
from hub.zones import zone_engine
from rules.query_password import status_keys
from tests.chromium import chromium_page
from tests.connectors.public_site_kit import reseal, served, unfile_leaves
from tests.connectors.test_status_page import Browser


def _loop(count: int, seed: int) -> None:
    assert main(["keys", "init"]) == 0
    assert main(["generate", "--count", str(count), "--seed", str(seed), "--date", str(date(2026, 11, 20))]) == 0
    with shifted(registration_shift(date(2026, 11, 20))):
        for stage in ("intake", "inbound_receive", "applications_load"):
            assert main(["run", stage]) == 0
    for stage in ("case_processing", "status_publish", "audit_publish", "portal_publish"):
        assert main(["run", stage]) == 0


def _cases(settings: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    """(case number, password, document) of the published cases whose events carry leaves."""
    found = []
    with zone_engine(settings, "admin").connect() as c:
        for row in c.execute(select(query_passwords).where(query_passwords.c.case_number.is_not(None))):
            document = read_status(settings.public_root, row.case_number, row.password) or {}
            if document and all(str(e["event_id"]) in document.get("audit", {}) for e in document["events"]):
                found.append((row.case_number, row.password, document))
    return found


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    with chromium_page(tmp_path / "chromium-profile") as socket_:
        page = Browser(socket_)
        page.call("Runtime.enable")
        yield page


def _audit(browser: Browser) -> dict[str, object]:
    browser.wait_for("!['', '痕迹核验中……'].includes(document.getElementById('audit-message').textContent)")
    return dict(browser.evaluate(
        "({message: document.getElementById('audit-message').textContent,"
        " error: document.getElementById('audit-message').className.includes('error'),"
        " marks: [...document.querySelectorAll('#case-history tr')].map(r => r.lastChild.textContent)})"))


def test_the_page_proves_the_shown_events_in_the_browser(hub_env: Path, browser: Browser) -> None:
    _loop(16, 21)
    settings = load_settings()
    cases = _cases(settings)
    assert len(cases) >= 3
    with served(settings.public_root) as base:
        url = f"{base}/index.html"
        browser.open(url)
        number, password, document = cases[0]
        shown = browser.look_up(number, password)
        assert shown["message"] == "查询成功"
        audit = _audit(browser)
        assert audit["error"] is False, audit
        assert "检查点签名已在浏览器中核验" in str(audit["message"])
        events = document["events"]
        assert audit["marks"] == ["已核验"] * len(events)
        assert f"{len(events)} 条状态记录已核验" in str(audit["message"])

        # Someone who can write the store and knows the password rewrites a shown change's
        # leaf: the page says so.
        number, password, document = cases[1]
        first = document["events"][0]["event_id"]
        entry = document["audit"][str(first)]["entry"].replace('"salt":"', '"salt":"A')
        reseal(settings.public_root, number, password, first, entry=entry)
        browser.open(url)
        browser.look_up(number, password)
        audit = _audit(browser)
        assert audit["error"] is True and audit["marks"][0] == "核验失败" and "核验失败" in str(audit["message"])

        # A leaf that names another change than the one shown is refused too.
        number, password, document = cases[2]
        changed = dict(document["events"][0])
        changed["status"] = "granted" if changed["status"] != "granted" else "refused"
        reseal(settings.public_root, number, password, changed["event_id"], record=changed)
        browser.open(url)
        browser.look_up(number, password)
        assert _audit(browser)["marks"][0] == "核验失败"

        # The page reads both forms of a publication leaf as rules.publication does: one per
        # application and bundle (now), one per change (hubs before 2026-12-07).
        def entry(outcome: str, detail: dict[str, Any]) -> str:
            return json.dumps({"key": 1, "row": {"at": "t", "bundle": "outbound#1", "detail": detail,
                                                 "outcome": outcome, "record_id": "NETX", "stage": "status_publish"},
                               "salt": "s", "table": "provenance"})

        rows = [entry("published", {"events": [[5, "accepted"], [7, "granted"]]}), entry("granted", {"event_id": 7}),
                entry("published", {"events": [[5, 6]]}), entry("held_for_review", {"event_id": 7})]
        checks = browser.evaluate(
            f"(() => {{ const rows = {json.dumps(rows)}; const doc = {{net_id: 'NETX'}};"
            " return rows.map((e) => [leafEventIds(e, 99),"
            "   [[5, 'accepted'], [7, 'granted'], [7, 'refused']].map(([i, s]) => leafMatches(e, doc, {event_id: i, status: s}))]);"
            " })()")
        assert checks == [
            [[5, 7], [True, True, False]],
            [[7], [False, True, False]],
            [[99], [False, False, False]],  # not a valid list of changes: proves none
            [[7], [False, False, False]],  # held, never published
        ]
        for (ids, _), row in zip(checks, rows, strict=True):
            assert ids == leaf_event_ids(row, 99)  # the page and the store reader agree

        # A tile changed on the public server: the proofs through it fail.
        for tile in sorted((settings.public_root / "audit" / "tile" / "0").rglob("*")):
            if tile.is_file():
                tile.write_bytes(bytes(len(tile.read_bytes())))
        number, password, _ = cases[0]
        browser.open(url)
        browser.look_up(number, password)
        audit = _audit(browser)
        assert audit["error"] is True and "已核验" not in audit["marks"]


def test_the_page_proves_changes_by_the_plain_leaves_an_earlier_hub_left_unfiled(hub_env: Path,
                                                                                browser: Browser) -> None:
    # Leaves that waited in audit_unfiled under the file layout reach the store plain (not
    # sealed) with the next checkpoint bundle; the page proves the changes with them all the same.
    _loop(16, 21)
    settings = load_settings()
    number, password, document = _cases(settings)[0]
    moved = {(w["event_id"], w["seq"], w["entry"]) for w in unfile_leaves(settings, number, password)}
    assert moved
    day = date(2026, 11, 21)
    assert main(["generate", "--count", "4", "--seed", "22", "--date", str(day)]) == 0
    with shifted(registration_shift(day)):
        for stage in ("intake", "inbound_receive", "applications_load"):
            assert main(["run", stage]) == 0
    for stage in ("case_processing", "status_publish", "audit_publish", "portal_publish"):
        assert main(["run", stage]) == 0
    with opened(settings.public_root, readonly=True) as store:
        served_leaves = (public_lookup(settings.public_root, store, status_keys(number, password)[0]) or {})["audit"]
    assert moved <= {(leaf["event_id"], leaf["seq"], leaf.get("entry")) for leaf in served_leaves}
    with served(settings.public_root) as base:
        browser.open(f"{base}/index.html")
        assert browser.look_up(number, password)["message"] == "查询成功"
        audit = _audit(browser)
        marks = browser.evaluate("[...document.querySelectorAll('#case-history tr')].map(r => r.lastChild.textContent)")
    assert audit["error"] is False and len(marks) >= len(document["events"]) and set(marks) == {"已核验"}


def test_a_gm_log_is_not_claimed_as_checked(hub_env: Path, browser: Browser, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_CRYPTO_SUITE", "gm")
    from hub import zones

    zones._prepared_engine.cache_clear()
    _loop(16, 21)
    settings = load_settings()
    cases = _cases(settings)
    assert cases
    with served(settings.public_root) as base:
        browser.open(f"{base}/index.html")
        number, password, _ = cases[0]
        assert browser.look_up(number, password)["message"] == "查询成功"
        audit = _audit(browser)
        assert "国密" in str(audit["message"]) and "无法在本页面核验" in str(audit["message"])
        assert "已核验" not in audit["marks"]
