"""Reconciliation per bundle and per day finds a lost and a duplicated record; the steward
summary puts a mismatch first, ranks failing rules and shows only masked examples; the
gate stops a provincial batch on critical failures only; the working-day calendar falls
back loudly."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from connectors.clock import registration_shift, shifted
from connectors.db import applications, cases, ferry_applied, ferry_sent, rejections, status_outbox
from hub import stages
from hub.keys import init_keys
from hub.settings import load_settings
from hub.simulators.applicants import generate_batch
from hub.zones import load_catalogue, zone_engine
from quality.gate import gate_allows, record_gate
from quality.reconciliation import (
    INBOUND_ENTERED,
    INBOUND_HANDED_OVER,
    ProvincialCounts,
    ReconciliationMismatch,
    mismatches,
    reconcile_provincial,
)
from quality.report import reconcile_all, run_quality
from rules.workdays import _warn_fallback, working_days_between


def lose_case(connection: Any, net_id: str) -> None:
    """A case row lost the way the hub's own guard cannot stop: by someone who can drop the
    trigger that refuses deleting case data outside ``hub correct``."""
    on = "" if connection.dialect.name == "sqlite" else " ON cases"
    connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS cases_refuse_delete{on}")
    connection.execute(delete(cases).where(cases.c.net_id == net_id))


def register_and_process(submitted_on: date) -> None:
    """Register the batch the day it was submitted, then let the processing simulator and
    status publishing catch up to now."""
    with shifted(registration_shift(submitted_on)):
        for stage in ("intake", "inbound_receive", "applications_load"):
            stages.STAGES[stage]()
    for stage in ("case_processing", "status_publish"):
        stages.STAGES[stage]()


@pytest.fixture
def loop(hub_env: Path) -> Any:
    """A small batch carried through the whole loop without a scheduler."""
    settings = load_settings()
    init_keys(settings)
    documents = [dict(i.document) for i in load_catalogue(settings).items.values()]
    generate_batch(settings.portal_drop, 30, 11, documents, settings.agency_code, date(2026, 11, 20))
    register_and_process(date(2026, 11, 20))
    return settings


def test_the_loop_balances_per_bundle_and_per_day(loop: Any) -> None:
    admin, internet = zone_engine(loop, "admin"), zone_engine(loop, "internet")
    lines = reconcile_all(admin, internet, None)
    assert mismatches(lines) == []
    scopes = {b.scope for b in lines}
    assert "inbound#1" in scopes and any(s.startswith("outbound#") for s in scopes)
    assert any(s.startswith("day:") for s in scopes)


def test_a_lost_and_a_duplicated_record_are_found(loop: Any) -> None:
    admin, internet = zone_engine(loop, "admin"), zone_engine(loop, "internet")
    with admin.begin() as connection:
        accepted = [r for (r,) in connection.execute(select(applications.c.net_id).order_by(applications.c.net_id))]
        lost, twice = accepted[0], accepted[1]
        lose_case(connection, lost)
        connection.execute(delete(applications).where(applications.c.net_id == lost))
        connection.execute(rejections.insert().values(
            net_id=twice, reasons=[], rejected_at="2026-11-20T10:00:00+08:00", bundle="inbound#1", envelope="{}"))
    wrong = mismatches(reconcile_all(admin, internet, None))
    bundle = next(b for b in wrong if b.scope == "inbound#1" and b.identity == INBOUND_ENTERED)
    assert bundle.missing == (lost,)
    assert bundle.duplicated == (twice,)
    day = next(b for b in wrong if b.scope.startswith("day:") and b.identity == INBOUND_ENTERED)
    assert day.missing == (lost,) and day.duplicated == (twice,)


def test_a_case_not_handed_over_is_a_mismatch(loop: Any) -> None:
    admin = zone_engine(loop, "admin")
    with admin.begin() as connection:
        net_id = connection.execute(select(cases.c.net_id).limit(1)).scalar_one()
        lose_case(connection, net_id)
    wrong = mismatches(reconcile_all(admin, None, None))
    handed = [(b.scope, b.missing) for b in wrong if b.identity == INBOUND_HANDED_OVER]
    assert handed[0] == ("inbound#1", (net_id,))
    assert len(handed) == 2 and handed[1][0].startswith("day:") and handed[1][1] == (net_id,)


def test_provincial_rows_must_be_accepted_pending_or_failed() -> None:
    ok = ProvincialCounts("province:case", "2026-11-20", rows=10, accepted=7, pending=2, failed=1)
    lost = ProvincialCounts("province:step", "2026-11-20", rows=10, accepted=7, pending=2, failed=0)
    assert [b.scope for b in mismatches(reconcile_provincial([ok, lost]))] == ["province:step"]


def test_quality_check_fails_the_task_on_a_lost_record(loop: Any) -> None:
    admin = zone_engine(loop, "admin")
    with admin.begin() as connection:
        net_id = connection.execute(select(applications.c.net_id).limit(1)).scalar_one()
        connection.execute(delete(applications).where(applications.c.net_id == net_id))
    with pytest.raises(ReconciliationMismatch, match=net_id):
        stages.quality_check(loop, suites=("applications",), day=date(2026, 11, 20))
    summary = (loop.quality_root / "summary.html").read_text("utf-8")
    body = summary.split("<body>", 1)[1].lstrip()
    assert body.startswith('<p class="verdict bad" id="reconciliation">对账不平')
    assert net_id in body.split("\n", 1)[0]


def test_summary_ranks_failing_rules_masks_examples_and_shows_the_trend(
    loop: Any, gx_context: Any, gx_root: Path
) -> None:
    from quality.data import load_applications

    admin = zone_engine(loop, "admin")
    frame = load_applications(admin)
    first_id = str(frame.loc[0, "applicant_id_number"])
    frame.loc[0, "identifier_valid"] = False  # as if the check digit were wrong
    frame.loc[[0, 1], "dates_plausible"] = False
    root = gx_root / "summary-test"
    run_quality(root, admin, frames={"applications": frame.iloc[2:]}, context=gx_context, label="2026-11-20")
    run = run_quality(root, admin, frames={"applications": frame}, context=gx_context, label="2026-11-20")
    html = run.summary.read_text("utf-8")
    assert html.startswith("<!DOCTYPE html>") and "对账平衡" in html
    plausible = html.index("日期合理")
    check_digit = html.index("证件号码校验位正确")
    assert plausible < check_digit  # two failing records rank before one
    assert "[严重 critical]" in html and "[警告 warning]" in html
    assert str(frame.loc[0, "net_id"]) in html
    assert first_id not in html  # only masked numbers leave the database
    masked = first_id[:6] + "*" * (len(first_id) - 10) + first_id[-4:]
    assert masked in html or frame.loc[0, "applicant_type"] == "organisation"
    trend = html.split("近期趋势", 1)[1]
    assert trend.count("<tr>") == 3  # header + two runs
    assert (root / "summaries" / f"{run.run_id}.html").exists()
    assert run.data_docs.name == "index.html"
    assert run.report()["critical"] == {"applications.identifier_check_digit": 1}
    # The critical failure closes the gate for that day's provincial batch; warnings alone do not.
    assert not gate_allows("2026-11-20", root=root)
    assert gate_allows("2026-11-20", root=root, mode="off")
    assert gate_allows("2026-11-20", ("catalogue",), root=root)


def test_gate_opens_when_a_rerun_is_clean_and_ignores_warnings(tmp_path: Path) -> None:
    record_gate(tmp_path, "2026-11-21", [("penalty", "penalties.fine_has_amount")])
    assert not gate_allows("2026-11-21", root=tmp_path)
    assert gate_allows("2026-11-21", ("case", "step"), root=tmp_path)
    record_gate(tmp_path, "2026-11-21", [])
    assert gate_allows("2026-11-21", root=tmp_path)
    assert gate_allows("2026-11-22", root=tmp_path)


def test_working_days_fall_back_to_weekends_only_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    _warn_fallback.cache_clear()
    with caplog.at_level(logging.WARNING, logger="rules.workdays"):
        count = working_days_between(date(2027, 1, 1), date(2027, 1, 15))
    assert count.days == 10 and count.fallback_years == frozenset({2027})
    assert "WORKING-DAY CALENDAR FALLBACK" in caplog.text and "2027" in caplog.text
    # 2026 is covered: the National Day holiday (1-8 October) is not counted.
    known = working_days_between(date(2026, 9, 30), date(2026, 10, 9))
    assert known.days <= 2 and known.fallback_years == frozenset()


def test_hub_quality_report_runs_and_prints_where_the_pages_are(
    loop: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.cli import main

    assert main(["quality", "report"]) == 0
    out = capsys.readouterr().out
    summary = loop.quality_root / "summary.html"
    assert f"steward summary: {summary}\n" in out and summary.exists()
    assert str(loop.quality_root / "data-docs" / "index.html") in out
    assert (loop.quality_root / "data-docs" / "index.html").exists()
    assert main(["quality", "report", "--where"]) == 0
    assert "(no run yet)" not in capsys.readouterr().out


def test_a_day_reconciles_only_the_bundles_of_that_day(loop: Any) -> None:
    admin, internet = zone_engine(loop, "admin"), zone_engine(loop, "internet")
    earlier = "2026-11-01"
    with admin.begin() as connection:
        # The first round happened on an earlier day, and one of its applications was lost.
        connection.execute(update(ferry_applied).where(ferry_applied.c.channel == "inbound")
                           .values(applied_at=f"{earlier}T09:00:00+08:00"))
        connection.execute(update(ferry_sent).where(ferry_sent.c.channel == "outbound")
                           .values(created_at=f"{earlier}T09:05:00+08:00"))
        lost = connection.execute(select(applications.c.net_id).order_by(applications.c.net_id)).scalars().first()
        lose_case(connection, lost)
        connection.execute(delete(applications).where(applications.c.net_id == lost))
    documents = [dict(i.document) for i in load_catalogue(loop).items.values()]
    generate_batch(loop.portal_drop, 20, 12, documents, loop.agency_code, date(2026, 11, 21))
    for stage in ("intake", "inbound_receive", "applications_load", "status_publish"):  # registered today
        stages.STAGES[stage]()
    with admin.connect() as connection:
        today = connection.execute(
            select(ferry_applied.c.applied_at).where(ferry_applied.c.channel == "inbound", ferry_applied.c.sequence == 2)
        ).scalar_one()[:10]
    assert today != earlier

    then = reconcile_all(admin, internet, date.fromisoformat(earlier))
    assert {b.scope for b in then if b.scope.startswith("inbound#")} == {"inbound#1"}
    assert {b.scope for b in then if b.scope.startswith("day:")} == {f"day:{earlier}"}
    assert any(b.scope.startswith("outbound#") for b in then)
    assert [b.missing for b in mismatches(then) if b.scope == "inbound#1" and b.identity == INBOUND_ENTERED] == [(lost,)]

    now = reconcile_all(admin, internet, date.fromisoformat(today))
    assert {b.scope for b in now if b.scope.startswith("inbound#")} == {"inbound#2"}
    assert {b.scope for b in now if b.scope.startswith("day:")} == {f"day:{today}"}
    assert any(b.scope.startswith("outbound#") for b in now)
    assert mismatches(now) == []
    # Every day together: both rounds, and the loss still found.
    assert {b.scope for b in reconcile_all(admin, internet, None) if b.scope.startswith("inbound#")} == {
        "inbound#1", "inbound#2"}


def test_a_stage_checks_only_the_bundles_its_run_handled(loop: Any) -> None:
    """applications_load and status_publish check what their own run carried, not the day
    so far: the check after each run must not grow with the day."""
    from quality.data import load_case_frames
    from quality.report import load_frames

    admin, internet = zone_engine(loop, "admin"), zone_engine(loop, "internet")
    documents = [dict(i.document) for i in load_catalogue(loop).items.values()]
    generate_batch(loop.portal_drop, 20, 12, documents, loop.agency_code, date(2026, 11, 21))
    for stage in ("intake", "inbound_receive"):
        stages.STAGES[stage]()
    loaded = stages.applications_load()
    assert loaded["bundles"] == ["inbound#2"]
    stages.case_processing()
    published = stages.status_publish()
    assert published["bundles"]

    with admin.connect() as connection:
        second = set(connection.execute(
            select(applications.c.net_id).where(applications.c.bundle == "inbound#2")).scalars())
        everyone = set(connection.execute(select(applications.c.net_id)).scalars())
        sent = set(connection.execute(
            select(status_outbox.c.case_number).join(
                ferry_sent, status_outbox.c.event_id.between(ferry_sent.c.first_key, ferry_sent.c.last_key))
            .where(ferry_sent.c.channel == "outbound",
                   ferry_sent.c.sequence.in_([int(r.split("#")[1]) for r in published["bundles"]]),
                   status_outbox.c.case_number.is_not(None))).scalars())
    assert second and second < everyone and sent

    frame = load_frames(("applications",), admin, day=None, bundles=loaded["bundles"])["applications"]
    assert set(frame["net_id"]) == second
    assert set(load_case_frames(admin, None, bundles=published["bundles"])["cases"]["case_number"]) == sent
    assert len(load_case_frames(admin, None)["cases"]) > len(sent)  # the day holds more

    lines = reconcile_all(admin, internet, None, bundles=loaded["bundles"] + published["bundles"])
    assert {b.scope for b in lines if not b.scope.startswith("day:")} == {
        "inbound#2", *published["bundles"]}
    assert mismatches(lines) == []
    # A record lost from an earlier bundle is not this run's: the next run's check passes,
    # the day's report finds it.
    with admin.begin() as connection:
        lost = connection.execute(select(applications.c.net_id).where(applications.c.bundle == "inbound#1")
                                  .limit(1)).scalar_one()
        connection.execute(delete(applications).where(applications.c.net_id == lost))
    report = stages.quality_check(loop, suites=("applications",), label="applications_load",
                                  bundles=loaded["bundles"])
    assert report["reconciliation"] == "balanced"
    with pytest.raises(ReconciliationMismatch, match=lost):
        stages.quality_check(loop, suites=("applications",), day=date(2026, 11, 20))  # the day inbound#1 came
    with pytest.raises(ValueError, match="penalties"):
        load_frames(("penalties",), admin, day=None, bundles=loaded["bundles"])


def test_the_daily_report_reads_the_day_a_chunk_at_a_time_and_adds_the_parts_up(loop: Any) -> None:
    """The day's report holds one chunk of records at a time (its memory must not grow with
    the day), and its outcomes are those of the whole day in one piece."""
    from quality.report import ALL_SUITES, frame_chunks

    admin = zone_engine(loop, "admin")
    documents = [dict(i.document) for i in load_catalogue(loop).items.values()]
    with admin.begin() as connection:
        net_ids = connection.execute(select(applications.c.net_id).order_by(applications.c.net_id)).scalars().all()
        # A wrong check digit in the first and in the last chunk.
        for net_id in (net_ids[0], net_ids[-1]):
            connection.execute(update(applications).where(applications.c.net_id == net_id)
                               .values(applicant_id_type="resident_id", applicant_id_number="320102198001010010"))
    assert len(net_ids) > 14

    seen: list[str] = []
    for chunk in frame_chunks(ALL_SUITES, admin, day=None, catalogue_documents=documents, rows=7):
        assert all(len(frame) <= 7 for name, frame in chunk.items() if name in ("applications", "cases", "results"))
        if "applications" in chunk:
            seen += list(chunk["applications"]["net_id"])
    assert seen == list(net_ids)  # each application once, in order

    def outcomes(run: Any) -> dict[str, tuple[bool, int, int, frozenset[str]]]:
        return {o["rule"]: (o["success"], o["checked"], o["failed"], frozenset(o["record_ids"]))
                for o in run.outcomes}

    whole = run_quality(loop.quality_root, admin, catalogue_documents=documents, chunk_rows=10_000)
    parts = run_quality(loop.quality_root, admin, catalogue_documents=documents, chunk_rows=7)
    assert outcomes(parts) == outcomes(whole)
    assert outcomes(parts)["applications.identifier_check_digit"] == (
        False, len(net_ids), 2, frozenset({net_ids[0], net_ids[-1]}))
    assert {o["suite"] for o in parts.outcomes} >= {"catalogue", "applications", "cases", "steps", "results"}


def test_data_docs_load_every_script_and_style_from_the_site_itself(loop: Any) -> None:
    import re

    from hub.cli import main
    from quality.data_docs_offline import ASSETS, SITE_FOLDER, VENDORED, remaining_cdn_links

    assert main(["quality", "report"]) == 0
    site = loop.quality_root / "data-docs"
    pages = list(site.rglob("*.html"))
    assert len(pages) > 1  # the index and at least one validation page
    for page in pages:
        html = page.read_text("utf-8")
        assert remaining_cdn_links(html) == [], page
        local = [url for url in re.findall(r'(?:src|href)="([^"#?]+)"', html) if SITE_FOLDER in url]
        assert len(local) >= 10, page  # bootstrap, jQuery, bootstrap-table, Font Awesome, Vega...
        for url in local:
            assert (page.parent / url).resolve().is_file(), (page, url)
    for asset in VENDORED:
        copied = site / SITE_FOLDER / asset.local
        assert copied.stat().st_size == (ASSETS / asset.local).stat().st_size > 100, copied


def test_a_calendar_gap_is_a_finding_in_the_steward_summary(loop: Any) -> None:
    from connectors.alarms import raise_alarm
    from connectors.supervision import CALENDAR_GAP_ALARM

    admin = zone_engine(loop, "admin")
    stages.quality_check(loop, suites=("applications",), day=date(2026, 11, 20))
    assert 'id="findings"' not in (loop.quality_root / "summary.html").read_text("utf-8")
    with admin.begin() as connection:
        raise_alarm(connection, CALENDAR_GAP_ALARM, {"year": 2027, "uncounted_cases": 3,
                                                      "message": "工作日历未覆盖2027年"}, "2026-12-30T10:00:00+08:00")
    stages.quality_check(loop, suites=("applications",), day=date(2026, 11, 20))
    page = (loop.quality_root / "summary.html").read_text("utf-8")
    findings = page.split('id="findings"', 1)[1].split("</ul>", 1)[0]
    assert "CALENDAR_GAP" in findings and "工作日历未覆盖2027年" in findings


def test_quality_runs_on_one_root_take_turns(loop: Any, gx_context: Any, gx_root: Path) -> None:
    """Two check_quality tasks at once (two DAGs, or two Celery workers on the shared quality
    root) must not interleave: GX rewrites its project file when a context opens and the run
    history is read and written back. A run waits while another holds the root."""
    import fcntl
    import threading

    from quality.data import load_applications
    from quality.report import LOCK_FILE

    admin = zone_engine(loop, "admin")
    frame = load_applications(admin)
    root = gx_root / "turns"
    root.mkdir()
    finished: list[Any] = []
    with open(root / LOCK_FILE, "a") as held:  # another process's run, in the middle of its work
        fcntl.flock(held, fcntl.LOCK_EX)
        waiting = threading.Thread(target=lambda: finished.append(run_quality(
            root, admin, frames={"applications": frame}, context=gx_context, label="2026-11-20")))
        waiting.start()
        waiting.join(timeout=2)
        assert waiting.is_alive() and not finished and not (root / "summary.html").exists()
        fcntl.flock(held, fcntl.LOCK_UN)
    waiting.join(timeout=60)
    assert finished and finished[0].summary.exists()
