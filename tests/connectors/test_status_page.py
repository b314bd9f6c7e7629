"""The public status page in headless Chromium (Debian's ``chromium``), driven through the
Chrome DevTools Protocol, against the public site (the ASGI lookup endpoint and the public
folder) served by uvicorn on 127.0.0.1: records sealed in the store, opened in the browser."""

from __future__ import annotations

import base64
import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.public_feed import install_status_page
from connectors.status_store import legacy_document_path, store_path
from rules.publication import public_disclosure_record, public_status_record
from rules.query_password import format_query_password, lookup_bytes, lookup_name
from tests.chromium import Page, chromium_page
from tests.connectors.public_site_kit import seal_into_store, served

CASE_NUMBER = "32010000010000000042"
PASSWORD = "3467ACDEFGHJ"
# A password of the first scheme (8 characters, 20,000 iterations): its document, published
# as a file before the scheme changed and before the store, must still be found.
LEGACY_CASE_NUMBER = "32010000010000000041"
LEGACY_PASSWORD = "3467ACDE"
PERSON_ID = "320102199001011237"
INSECURE_HOST = "status.portal.example"
TAMPERED_CASE_NUMBER = "32010000010000000040"


def _event(event_id: int, status: str, at: str, **more: Any) -> dict[str, Any]:
    return {
        "event_id": event_id, "net_id": "NET20261109000042", "lookup": lookup_name(CASE_NUMBER, PASSWORD),
        "case_number": CASE_NUMBER, "power_code": "113201000123456713XK00000000001",
        "power_name": "公路超限运输许可", "case_name": "张三丰公路超限运输许可申请",
        "applicant_type": "person", "applicant_name": "张三丰", "applicant_id_number": PERSON_ID,
        "status": status, "at": at, "step": None, "opinion": None, "result": None, **more,
    }


@pytest.fixture(scope="module")
def public_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A public folder as portal_publish leaves it, served over HTTP on loopback."""
    root = tmp_path_factory.mktemp("public")
    install_status_page(root)
    events = [
        _event(1, "registered", "2026-11-09T10:00:00+08:00"),
        # Published in UTC: shown in the agency's time (14:10 China Standard Time).
        _event(2, "accepted", "2026-11-09T06:10:00Z", step="受理", opinion="材料齐全，予以受理"),
        _event(3, "granted", "2026-11-12T09:40:00+08:00", step="决定", opinion="准予许可<b>!</b>",
               result={"code": 2, "finished_at": "2026-11-12T09:40:00+08:00", "note": "准予许可"}),
    ]
    records = [public_status_record(e) for e in events]
    # Two bundles' worth: the store merges them under one lookup.
    seal_into_store(root, CASE_NUMBER, PASSWORD, records[:2])
    seal_into_store(root, CASE_NUMBER, PASSWORD, records[2:])
    # A case whose records a tampering copy changed: it must not open.
    tampered = seal_into_store(root, TAMPERED_CASE_NUMBER, PASSWORD,
                               [{**records[0], "case_number": TAMPERED_CASE_NUMBER}])
    with sqlite3.connect(store_path(root)) as store:
        sealed = store.execute("SELECT sealed FROM events WHERE lookup = ?", (lookup_bytes(tampered),)).fetchone()[0]
        store.execute("UPDATE events SET sealed = ? WHERE lookup = ?",
                      (sealed[:-1] + bytes([sealed[-1] ^ 1]), lookup_bytes(tampered)))
    legacy_records = [{**r, "case_number": LEGACY_CASE_NUMBER} for r in records[:2]]
    document = {"events": legacy_records, "net_id": records[-1]["net_id"], "case_number": LEGACY_CASE_NUMBER,
                "case_name": records[-1]["case_name"], "applicant_name": records[-1]["applicant_name"],
                "power_name": records[-1]["power_name"], "status": "accepted",
                "updated_at": records[1]["at"], "result": None}
    legacy_path = legacy_document_path(root, lookup_name(LEGACY_CASE_NUMBER, LEGACY_PASSWORD))
    legacy_path.parent.mkdir(parents=True)
    legacy_path.write_text(json.dumps(document), "utf-8")
    disclosure = public_disclosure_record({**events[2], "agency_code": "3201000001", "penalty": None})
    (root / "disclosure" / "2026-11-12").mkdir(parents=True)
    (root / "disclosure" / "2026-11-12" / "b00000003.json").write_text(
        json.dumps({"date": "2026-11-12", "records": [disclosure]}), "utf-8")
    (root / "disclosure" / "index.json").write_text(json.dumps({"days": {"2026-11-12": {
        "licence": 1, "penalty": 0, "pages": {"b00000003.json": {"licence": 1, "penalty": 0}}}}}), "utf-8")
    (root / "catalogue").mkdir()
    (root / "catalogue" / "index.json").write_text(json.dumps(
        {"catalogue_version": "v1", "items": [{"code": "113201000123456713XK00000000001", "name": "公路超限运输许可",
                                               "category": "XK", "category_name": "行政许可", "version": 1}]}
    ), "utf-8")
    with served(root) as base:
        yield f"{base}/index.html"


class Browser(Page):
    """The public status page in headless Chromium."""

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && !!document.getElementById('lookup-form')")

    def look_up(self, key: str, password: str) -> dict[str, Any]:
        self.evaluate(
            f"document.getElementById('case-key').value = {json.dumps(key)};"
            f"document.getElementById('password').value = {json.dumps(password)};"
            "document.getElementById('lookup-form').requestSubmit(); true"
        )
        self.wait_for("!['', '查询中……'].includes(document.getElementById('lookup-message').textContent)")
        return dict(self.evaluate(
            "({message: document.getElementById('lookup-message').textContent,"
            " hidden: document.getElementById('case').hidden,"
            " number: document.getElementById('case-number').textContent,"
            " status: document.getElementById('case-status').textContent,"
            " applicant: document.getElementById('case-applicant').textContent,"
            " result: document.getElementById('case-result').textContent,"
            " history: [...document.querySelectorAll('#case-history tr')].map(r => r.innerText),"
            " visible: document.body.innerText,"
            " lookup: document.getElementById('lookup-section').innerText})"
        ))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    # A name that is not localhost: an insecure origin, where WebCrypto is missing.
    flags = [f"--host-resolver-rules=MAP {INSECURE_HOST} 127.0.0.1"]
    with chromium_page(tmp_path_factory.mktemp("chromium-profile"), flags) as socket_:
        page = Browser(socket_)
        page.call("Runtime.enable")
        yield page


def test_a_valid_lookup_shows_the_status_history_and_result(browser: Browser, public_site: str) -> None:
    browser.open(public_site)
    shown = browser.look_up(CASE_NUMBER, format_query_password(PASSWORD).lower())  # as handed over: 3467-ACDE-FGHJ
    assert shown["message"] == "查询成功" and shown["hidden"] is False
    assert shown["number"] == CASE_NUMBER
    assert shown["status"] == "准予许可" and shown["applicant"] == "张**"
    assert "准予许可" in shown["result"]
    assert len(shown["history"]) == 3 and "材料齐全，予以受理" in shown["history"][1]
    assert "准予许可<b>!</b>" in shown["history"][2]  # markup shown as text, not rendered
    # Times as local dates and times of the agency, never ISO strings.
    assert shown["history"][0].startswith("2026年11月9日 10:00")
    assert shown["history"][1].startswith("2026年11月9日 14:10")
    assert "2026年11月12日 09:40" in shown["result"]
    assert "T" not in shown["history"][0].split("\t")[0] and "+08:00" not in shown["visible"]
    assert browser.evaluate("document.querySelectorAll('#case-history b').length") == 0
    assert PERSON_ID not in shown["visible"] and "张三丰" not in shown["visible"]


def test_a_wrong_password_shows_nothing_personal(browser: Browser, public_site: str) -> None:
    browser.open(public_site)
    shown = browser.look_up(CASE_NUMBER, "3467ACDEFGHK")
    assert shown["message"].startswith("未查到办件") and shown["hidden"] is True
    assert shown["number"] == shown["status"] == shown["applicant"] == "" and shown["history"] == []
    for personal in ("张**", "张三丰", "公路超限运输许可申请", "NET20261109000042", "320102", "准予"):
        assert personal not in shown["lookup"]


def test_a_record_changed_in_the_store_does_not_open(browser: Browser, public_site: str) -> None:
    browser.open(public_site)
    shown = browser.look_up(TAMPERED_CASE_NUMBER, PASSWORD)
    assert "无法解密或已被改动" in shown["message"] and shown["hidden"] is True and shown["history"] == []


def test_the_lookup_endpoint_serves_only_sealed_bytes(public_site: str) -> None:
    """What anyone can fetch by a lookup name shows nothing of the case without its key."""
    import urllib.request

    base = public_site.removesuffix("/index.html")
    with urllib.request.urlopen(f"{base}/lookup/{lookup_name(CASE_NUMBER, PASSWORD)}") as response:
        body = response.read()
    served_events = json.loads(body)["events"]
    assert [e["event_id"] for e in served_events] == [1, 2, 3]
    assert all(set(e) == {"event_id", "sealed"} for e in served_events)
    for needle in ("张", "NET2026", CASE_NUMBER, "granted", "公路"):
        assert needle.encode("utf-8") not in body
        assert all(needle.encode("utf-8") not in base64.b64decode(e["sealed"]) for e in served_events)


def test_a_password_of_the_first_scheme_still_finds_its_case(browser: Browser, public_site: str) -> None:
    browser.open(public_site)
    shown = browser.look_up(LEGACY_CASE_NUMBER, LEGACY_PASSWORD)
    assert shown["message"] == "查询成功" and shown["number"] == LEGACY_CASE_NUMBER
    assert browser.look_up(LEGACY_CASE_NUMBER, PASSWORD)["message"].startswith("未查到办件")


def test_the_page_lists_the_disclosures_and_the_catalogue(browser: Browser, public_site: str) -> None:
    browser.open(public_site)
    rows = browser.wait_for(
        "document.querySelectorAll('#disclosure-rows tr').length &&"
        " [...document.querySelectorAll('#disclosure-rows tr, #catalogue-rows tr')].map(r => r.innerText)"
    )
    assert any("行政许可" in r and "张**" in r for r in rows)
    assert any("113201000123456713XK00000000001" in r and "行政许可" in r for r in rows)
    assert any(r.startswith("2026年11月12日\t") for r in rows)


def test_over_plain_http_from_another_host_the_page_says_it_needs_https(browser: Browser, public_site: str) -> None:
    insecure = public_site.replace("127.0.0.1", INSECURE_HOST)
    browser.open(insecure)
    assert browser.evaluate("window.isSecureContext") is False
    before = browser.evaluate("document.getElementById('lookup-message').textContent")
    assert "HTTPS" in before and "localhost" in before
    shown = browser.look_up(CASE_NUMBER, PASSWORD)
    assert "HTTPS" in shown["message"] and shown["hidden"] is True and shown["history"] == []
