"""The provincial feed against a real OpenSSH sshd on loopback: upload, receipts with
rejections, re-send after a fix, a cut connection, duplicate delivery, a day offline,
and a wrong host key."""

from __future__ import annotations

import socket

import orjson
import pytest
from sqlalchemy import select

from connectors.db import alarms, province_batches, province_sync
from connectors.province_feed import LAG_ALARM, FeedPaths, feed_status, upload_batch
from connectors.province_sftp import (
    ProvinceRefused,
    ProvinceUnreachable,
    SftpSettings,
    province_session,
)
from hub import province as stages
from hub.settings import load_settings
from schemas.exceptions import TerminalError, TransientError
from tests.connectors.province_testkit import Hub, add_case, case_number, hours, hub, rename_case

__all__ = ["hub"]


def marks(hub: Hub) -> dict[tuple[str, str], tuple[str, str | None]]:
    with hub.engine.connect() as connection:
        return {(r.kind, r.record_key): (r.mark, r.error) for r in connection.execute(select(province_sync))}


def test_batch_is_uploaded_signed_and_acknowledged(hub: Hub) -> None:
    for n in range(1, 4):
        add_case(hub.engine, n, hours(0), steps=2)
    first = stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(1))
    assert len(first["planned"]) == 1 and first["uploaded"] == first["planned"]
    batch = first["planned"][0]
    remote = hub.province.root / "feed" / batch
    assert {p.name for p in remote.iterdir()} == {
        f"{kind}.{fmt}" for kind in ("case", "step", "result", "catalogue_change") for fmt in ("jsonl", "parquet")
    } | {"manifest.json"}
    manifest = orjson.loads((remote / "manifest.json").read_bytes())["manifest"]
    assert manifest["counts"]["case"] == 3 and manifest["counts"]["step"] == 6
    assert {m for m, _ in marks(hub).values()} == {"sent"}

    receipts = hub.province.process_incoming()
    assert receipts[0]["accepted"] == 9 and receipts[0]["rejected"] == 0
    second = stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(2))
    assert second["planned"] == [] and second["receipts"][0]["accepted"] == 9
    assert {m for m, _ in marks(hub).values()} == {"accepted"}
    assert feed_status(hub.engine)["acknowledged_watermark"] == 9


def test_rejected_rows_reach_the_stewards_and_go_again_once_fixed(hub: Hub) -> None:
    add_case(hub.engine, 1, hours(0))
    add_case(hub.engine, 2, hours(0), case_name="")  # bad at its source: no case name
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(1))
    hub.province.process_incoming()
    report = stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(2))
    # The case, and its step as an orphan: the province takes no step of a case it lacks.
    assert report["receipts"][0]["rejected"] == 2
    state = marks(hub)
    mark, error = state[("case", case_number(2))]
    assert mark == "failed" and error is not None and "SCHEMA_MINLENGTH" in error
    mark, error = state[("step", f"{case_number(2)}/1")]
    assert mark == "failed" and error is not None and error.startswith("ORPHAN:")
    assert state[("case", case_number(1))][0] == "accepted"
    steward = (hub.settings.admin_root / "province" / "steward" / "rejected-rows.csv").read_text("utf-8-sig")
    assert case_number(2) in steward and case_number(1) not in steward

    # Unchanged, the failed row is not sent again; fixed at its source, it is.
    assert stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(3))["planned"] == []
    rename_case(hub.engine, 2, "食品经营许可申请")
    again = stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(4))
    assert len(again["planned"]) == 1
    hub.province.process_incoming()
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(5))
    assert marks(hub)[("case", case_number(2))] == ("accepted", None)
    # Its case in, the orphaned step goes again unchanged, and is taken.
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(6))
    hub.province.process_incoming()
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(7))
    assert marks(hub)[("step", f"{case_number(2)}/1")] == ("accepted", None)
    steward = (hub.settings.admin_root / "province" / "steward" / "rejected-rows.csv").read_text("utf-8-sig")
    assert case_number(2) not in steward


def test_province_review_rejects_its_configured_share(hub: Hub) -> None:
    hub.province.reject_share = 1.0
    add_case(hub.engine, 1, hours(0))
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(1))
    hub.province.process_incoming()
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(2))
    assert all(mark == "failed" and "PROVINCE_REVIEW" in (error or "") for mark, error in marks(hub).values())


def test_cut_mid_upload_never_shows_a_partial_file_under_its_final_name(hub: Hub) -> None:
    for n in range(1, 400):
        add_case(hub.engine, n, hours(0), steps=3)
    stages.province_plan(hub.settings, at=hours(1))
    paths = FeedPaths(hub.settings.admin_root / "province")
    batch = next((paths.outbox).iterdir())
    step_file = batch / "step.jsonl"
    assert step_file.stat().st_size > 100_000
    seen: list[set[str]] = []

    with province_session(hub.sftp()) as session:
        def cut(sent: int, total: int) -> None:
            seen.append({p.name for p in (hub.province.root / "feed" / batch.name).iterdir()})
            if sent > 32_768:
                session._client.get_transport().sock.shutdown(socket.SHUT_RDWR)

        session.makedirs(f"feed/{batch.name}")
        with pytest.raises(ProvinceUnreachable):
            session.upload(step_file, f"feed/{batch.name}/step.jsonl", callback=cut)
    remote = hub.province.root / "feed" / batch.name
    assert not (remote / "step.jsonl").exists()
    assert all("step.jsonl" not in names for names in seen)
    assert hub.province.process_incoming() == []  # no manifest: not a batch yet

    report = stages.province_exchange(hub.settings, sftp=hub.sftp())
    assert report["uploaded"] == [batch.name]
    assert (remote / "step.jsonl").read_bytes() == step_file.read_bytes()
    assert not list(remote.glob("*.part"))


def test_duplicate_upload_of_a_batch_is_harmless(hub: Hub) -> None:
    add_case(hub.engine, 1, hours(0))
    first = stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(1))
    batch = first["planned"][0]
    folder = FeedPaths(hub.settings.admin_root / "province").batch_dir(batch)
    with province_session(hub.sftp()) as session:
        assert upload_batch(session, folder) is False  # the province already holds it
    assert len(hub.province.process_incoming()) == 1
    with province_session(hub.sftp()) as session:
        assert upload_batch(session, folder, force=True) is True  # delivered again anyway
    assert hub.province.process_incoming() == []  # answered once
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(2))
    with hub.engine.connect() as connection:
        row = connection.execute(select(province_batches)).one()
    assert (row.state, row.accepted) == ("acknowledged", 2)
    # a second ingestion of the same receipt changes nothing
    assert stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(3))["receipts"] == []


def test_a_day_offline_raises_the_lag_alarm_then_the_backlog_drains_in_order(hub: Hub) -> None:
    hub.province.stop()
    for hour in range(24):
        add_case(hub.engine, hour + 1, hours(hour))
        with pytest.raises(ProvinceUnreachable):
            stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(hour + 0.5))
    with hub.engine.connect() as connection:
        lag = connection.execute(select(alarms).where(alarms.c.kind == LAG_ALARM)).all()
        batches = connection.execute(select(province_batches).order_by(province_batches.c.sequence)).all()
    assert len(batches) == 24 and {b.state for b in batches} == {"planned"}
    # the oldest change is 20.5 h old at the run of hour 20: first alarm then, one per oldest change
    assert lag and lag[0].at == hours(20.5).isoformat() and lag[0].detail["oldest_key"] == case_number(1)

    hub.province.start()
    report = stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(24.5))
    assert report["uploaded"] == [b.batch_id for b in batches]
    assert len(hub.province.process_incoming()) == 24
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(25))
    assert {m for m, _ in marks(hub).values()} == {"accepted"}
    assert stages.province_plan(hub.settings, at=hours(25))["lag_alarm"] is None
    # Caught up: the lag alarms are resolved, not left standing, and nothing is deleted.
    with hub.engine.connect() as connection:
        after = connection.execute(select(alarms).where(alarms.c.kind == LAG_ALARM).order_by(alarms.c.id)).all()
    assert len(after) == len(lag) and all(a.resolved_at for a in after)
    assert after[-1].resolved_by == "hub" and "caught up" in after[-1].resolution
    assert all("superseded" in a.resolution for a in after[:-1])


def test_wrong_host_key_refuses_to_connect(hub: Hub) -> None:
    other_key = (hub.province.server.client_key.with_name("client_ed25519_key.pub")).read_text()
    with pytest.raises(ProvinceRefused, match="HOST KEY MISMATCH"), province_session(hub.sftp(host_key=other_key)):
        pass
    add_case(hub.engine, 1, hours(0))
    with pytest.raises(ProvinceRefused):
        stages.province_report(hub.settings, sftp=hub.sftp(host_key=other_key), at=hours(1))
    assert not any((hub.province.root / "feed").iterdir())


def test_settings_refuse_an_unpinned_host_key(hub: Hub) -> None:
    with pytest.raises(ProvinceRefused, match="pinned"):
        hub.sftp(no_host_key_check="true")


def test_parquet_and_json_lines_carry_the_same_records(hub: Hub) -> None:
    import pyarrow.parquet as pq

    for n in range(1, 6):
        add_case(hub.engine, n, hours(0), steps=2)
    batch = stages.province_plan(hub.settings, at=hours(1))["planned"][0]
    folder = FeedPaths(hub.settings.admin_root / "province").batch_dir(batch)
    for kind in ("case", "step"):
        lines = [orjson.loads(line) for line in (folder / f"{kind}.jsonl").read_bytes().splitlines()]
        assert pq.read_table(folder / f"{kind}.parquet").to_pylist() == lines
    assert pq.read_table(folder / "result.parquet").num_rows == 0


def test_a_tampered_batch_is_refused_by_the_province_and_its_rows_fail(hub: Hub) -> None:
    add_case(hub.engine, 1, hours(0))
    batch = stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(1))["planned"][0]
    case_file = hub.province.root / "feed" / batch / "case.jsonl"
    case_file.write_bytes(case_file.read_bytes().replace("餐饮".encode(), "酒吧".encode()))
    receipt = hub.province.process_incoming()[0]
    assert receipt["status"] == "refused" and "SHA-256" in receipt["detail"]
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(2))
    assert all(mark == "failed" and "BATCH_REFUSED" in (error or "") for mark, error in marks(hub).values())


def test_a_province_outage_fails_the_task_as_transient_and_the_retry_sends_what_waited(hub: Hub) -> None:
    """The connector does not retry: the outage leaves the task as a TransientError (which
    Airflow's retry policy retries), nothing is marked sent, and the next run delivers."""
    for n in range(1, 3):
        add_case(hub.engine, n, hours(0))
    hub.province.stop()
    with pytest.raises(ProvinceUnreachable) as outage:
        stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(1))
    assert isinstance(outage.value, TransientError)
    assert {mark for mark, _ in marks(hub).values()} == {"pending"}
    assert not (hub.province.root / "feed").exists() or not any((hub.province.root / "feed").iterdir())
    hub.province.start()
    retried = stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(1))
    assert retried["uploaded"] and {mark for mark, _ in marks(hub).values()} == {"sent"}


def test_a_key_the_province_does_not_know_fails_at_once_as_terminal(hub: Hub) -> None:
    (hub.province.server.folder / "authorized_keys").write_text("")
    with pytest.raises(ProvinceRefused, match="authentication failed") as refused, province_session(hub.sftp()) as session:
        session.listdir("feed")
    assert isinstance(refused.value, TerminalError)


def test_a_server_that_never_answers_times_out_as_transient(hub: Hub) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings = hub.sftp(conn_timeout=0.5)
        settings = type(settings)(**{**settings.__dict__, "port": silent.getsockname()[1]})
        with pytest.raises(ProvinceUnreachable), province_session(settings) as session:
            session.listdir("feed")


def test_the_retired_retry_extras_are_refused_with_where_retrying_lives(hub: Hub) -> None:
    with pytest.raises(ProvinceRefused, match="retries, retry_delay: retrying is the Airflow retry policy"):
        hub.sftp(retries=3, retry_delay=1)
    assert "retries" not in SftpSettings.__dataclass_fields__


def test_quality_gate_holds_a_batch_whose_files_do_not_match_its_manifest(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(1, 3):
        add_case(hub.engine, n, hours(0))
    planned = stages.province_plan(hub.settings, at=hours(1))["planned"]
    batch = planned[0]
    folder = hub.settings.admin_root / "province" / "outbox" / batch
    with open(folder / "case.jsonl", "ab") as stream:  # a record appears after signing
        stream.write(b'{"record_key":"3201000001XXXXXXXXXX"}\n')

    held = stages.province_exchange(hub.settings, sftp=hub.sftp(), at=hours(1))
    assert held["uploaded"] == [] and batch in held["held"]
    assert "provincial_batch.count_matches" in held["held"][batch]
    assert "provincial_batch.hash_matches" in held["held"][batch]
    assert not (hub.province.root / "feed" / batch).exists()
    assert {m for m, _ in marks(hub).values()} == {"pending"}

    monkeypatch.setenv("HUB_QUALITY_GATE", "off")  # report only: the batch goes (the province will refuse it)
    sent = stages.province_exchange(load_settings(), sftp=hub.sftp(), at=hours(2))
    assert sent["uploaded"] == [batch] and sent["held"] == {}


def test_a_refusal_without_reasons_is_not_sent_and_goes_once_it_states_them(hub: Hub) -> None:
    from sqlalchemy import update

    from connectors.db import case_results, case_steps, transaction

    add_case(hub.engine, 1, hours(0))
    with transaction(hub.engine) as connection:
        connection.execute(case_results.insert().values(
            case_number=case_number(1), result=3, finished_at=hours(0.5).isoformat(), note="不予许可。",
            fee_due=0, fee_paid=0))
        connection.execute(update(case_steps).values(status=2, opinion=" "))  # a veto without reasons
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(1))
    state = marks(hub)
    assert state[("result", case_number(1))][0] == "failed"
    assert "NEGATIVE_WITHOUT_REASONS" in (state[("result", case_number(1))][1] or "")
    assert state[("step", f"{case_number(1)}/1")][0] == "failed"
    assert state[("case", case_number(1))][0] == "sent"
    remote = hub.province.root / "feed"
    sent = "".join(p.read_text("utf-8") for p in remote.rglob("result.jsonl"))
    assert case_number(1) not in sent  # never left the hub
    steward = (hub.settings.admin_root / "province" / "steward" / "rejected-rows.csv").read_text("utf-8-sig")
    assert "NEGATIVE_WITHOUT_REASONS" in steward and case_number(1) in steward
    with transaction(hub.engine) as connection:  # fixed at the source
        connection.execute(update(case_results).values(note="经现场核查，场地面积不足法定标准，不予许可"))
        connection.execute(update(case_steps).values(opinion="否决：消防验收材料缺失"))
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(2))
    state = marks(hub)
    assert state[("result", case_number(1))] == ("sent", None) and state[("step", f"{case_number(1)}/1")] == ("sent", None)


def test_every_feed_kind_is_one_the_manifest_schema_allows() -> None:
    from connectors.province_feed import KINDS
    from schemas import load_schema

    files = load_schema("province_manifest")["properties"]["manifest"]["properties"]["files"]["items"]
    assert set(files["properties"]["kind"]["enum"]) == set(KINDS)


def test_a_filing_goes_up_and_the_province_accepts_it(hub: Hub) -> None:
    from connectors.db import case_filings, transaction

    add_case(hub.engine, 1, hours(0))
    with transaction(hub.engine) as connection:
        connection.execute(case_filings.insert().values(
            case_number=case_number(1), authority="南京市司法局", document_no="宁交罚备〔2026〕1号",
            filed_at=hours(0.5).isoformat(), filed_by="法制处 张三", recorded_at=hours(0.5).isoformat()))
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(1))
    [receipt] = hub.province.process_incoming()
    assert receipt["rejected"] == 0 and receipt["accepted"] == 3  # the case, its step, its filing
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(2))
    assert marks(hub)[("filing", case_number(1))] == ("accepted", None)
    remote = next((hub.province.root / "feed").rglob("filing.jsonl")).read_text("utf-8")
    assert "法制处 张三" not in remote  # who filed stays in the hub


def test_counter_and_ex_officio_cases_reach_the_province_before_their_steps(hub: Hub) -> None:
    from hub import stages as hub_stages
    from hub.simulators.processing import register_offline_cases
    from hub.zones import load_catalogue

    numbers = register_offline_cases(hub.engine, load_catalogue(hub.settings), seed=5, at=hours(0), counter=1,
                                     ex_officio=1)
    hub_stages.case_processing(hub.settings, seed=5, at=hours(24 * 20))
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(24 * 20))
    [receipt] = hub.province.process_incoming()
    # Every step and decision of the two cases taken: none refused as an orphan.
    assert receipt["rejected"] == 0 and receipt["accepted"] > 2, receipt["errors"][:3]
    stages.province_report(hub.settings, sftp=hub.sftp(), at=hours(24 * 20 + 1))
    with hub.engine.connect() as connection:
        records = {r.record_key: r.record for r in connection.execute(
            select(province_sync.c.record_key, province_sync.c.record).where(province_sync.c.kind == "case"))}
        steps = connection.execute(select(province_sync.c.record_key, province_sync.c.mark).where(
            province_sync.c.kind == "step")).all()
    assert [records[n]["origin"] for n in numbers] == ["counter", "ex_officio"]
    assert all(records[n]["net_id"] is None and records[n]["channel"] != 1 for n in numbers)
    # 第十六条(二): the acceptor, the acceptance time and the time limit go up with the case.
    accepted = [records[n] for n in numbers if records[n]["accepted_at"]]
    assert accepted and all(r["acceptor_name"] and r["time_limit"] for r in accepted)
    assert steps and {mark for _, mark in steps} == {"accepted"}
