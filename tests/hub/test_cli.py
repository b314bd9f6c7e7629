"""The `hub` command: stages, trace and summary on a real data root (no scheduler)."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import pytest

from connectors.clock import registration_shift, shifted
from hub import stages
from hub.cli import main
from hub.stages import compact


def test_compact_keeps_xcom_small() -> None:
    report = {"bundles": ["inbound#1"], "quarantined": [{"code": "X"}] * 30, "records": 5}
    small = compact(report)
    assert small["bundles"] == ["inbound#1"] and small["records"] == 5
    assert small["quarantined"]["count"] == 30 and len(small["quarantined"]["first"]) == 10


def test_stages_then_trace_and_summary(hub_env: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["keys", "init"]) == 0
    assert main(["generate", "--count", "60", "--seed", "3", "--date", str(date(2026, 11, 20)), "--expected", str(hub_env / "truth.json")]) == 0
    with shifted(registration_shift(date(2026, 11, 20))):  # registered the day it was submitted
        for stage in ("intake", "inbound_receive", "applications_load"):
            assert main(["run", stage]) == 0
    for stage in ("case_processing", "status_publish", "portal_publish"):
        assert main(["run", stage]) == 0
    truth = json.loads((hub_env / "truth.json").read_text("utf-8"))
    capsys.readouterr()

    accepted = next(n for n, o in sorted(truth.items()) if o["outcome"] == "accepted")
    assert main(["trace", accepted]) == 0
    out = capsys.readouterr().out
    for stage in ("intake", "inbound_receive", "applications_load", "processing", "status_publish", "portal_publish"):
        assert stage in out, stage

    quarantined = next(n for n, o in sorted(truth.items()) if o["outcome"] == "quarantined")
    assert main(["trace", quarantined]) == 0
    assert "quarantined" in capsys.readouterr().out

    assert main(["trace", "NET00000000NOSUCH"]) == 1
    assert "no record of this id" in capsys.readouterr().out
    assert main(["trace", "net2026-11-21/1"]) == 2
    assert "is not a NET_ID" in capsys.readouterr().err

    assert main(["summary", "--json", str(hub_env / "counts.json")]) == 0
    counts = json.loads((hub_env / "counts.json").read_text("utf-8"))
    assert counts["submitted"] == 60 and counts["balanced"]

    # A service desk opens an applicant's published status with the password they read out;
    # the password comes on standard input, never on the command line.
    from sqlalchemy import select

    from connectors.db import query_passwords
    from hub.settings import load_settings
    from hub.zones import zone_engine

    with zone_engine(load_settings(), "admin").connect() as connection:
        case_number, password = connection.execute(
            select(query_passwords.c.case_number, query_passwords.c.password)
            .where(query_passwords.c.net_id == accepted)).one()
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    assert main(["public", "lookup", case_number, "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["net_id"] == accepted and document["case_number"] == case_number
    assert document["events"][0]["status"] == "registered"
    monkeypatch.setattr("sys.stdin", io.StringIO(password.lower() + "\n"))
    assert main(["public", "lookup", case_number]) == 0
    shown = capsys.readouterr().out
    assert f"办件编号 {case_number}" in shown and "已登记" in shown and "registered" not in shown
    monkeypatch.setattr("sys.stdin", io.StringIO("3467ACDEFGHK\n"))
    assert main(["public", "lookup", case_number]) == 1
    assert "未查到办件" in capsys.readouterr().err

    # A second pass over an empty drop changes nothing: no new bundles, no new records.
    assert stages.intake()["bundles"] == []
    assert stages.inbound_receive()["applied"] == []
    assert stages.applications_load()["accepted"] == 0
    main(["summary", "--json", str(hub_env / "again.json")])
    again = json.loads((hub_env / "again.json").read_text("utf-8"))
    assert (again["accepted"], again["rejected"], again["quarantined"]) == (
        counts["accepted"], counts["rejected"], counts["quarantined"]
    )


def test_trace_by_case_number_and_correct_from_the_command_line(
    hub_env: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["keys", "init"]) == 0
    assert main(["generate", "--count", "5", "--seed", "3", "--date", str(date(2026, 11, 20))]) == 0
    with shifted(registration_shift(date(2026, 11, 20))):
        for stage in ("intake", "inbound_receive", "applications_load"):
            assert main(["run", stage]) == 0
    capsys.readouterr()
    # A counter case, registered the way the case-processing system does, then processed.
    assert main(["simulate", "processing", "--counter", "1"]) == 0
    counter = json.loads(capsys.readouterr().out)["registered"][0]
    assert main(["trace", counter]) == 0
    out = capsys.readouterr().out
    assert f"case {counter} (counter" in out and "case_register" in out
    internet = next(number for number in _case_numbers() if number != counter)
    assert main(["trace", internet]) == 0
    assert f"case {internet} is the internet application NET" in capsys.readouterr().out

    base = ["correct", "set", "--table", "case_registrations", "--case", counter,
            "--set", "summary=窗口申请材料摘要更正为完整表述", "--requested-by", "王建国"]
    assert main([*base, "--reason", "摘要录入不完整，经核实更正", "--approved-by", "王建国"]) == 2
    assert "审批人不能是申请人本人" in capsys.readouterr().err
    assert main([*base, "--reason", "摘要录入不完整，经核实更正", "--approved-by", "李秀英"]) == 0
    assert "correction #1 applied" in capsys.readouterr().out
    assert main(["correct", "list", "--case", counter]) == 0
    listed = capsys.readouterr().out
    assert "approved by 李秀英" in listed and "summary" in listed
    assert main(["trace", counter]) == 0
    assert "correction" in capsys.readouterr().out
    # Its events, the correction's among them, are proved against the signed checkpoint.
    assert main(["audit", "prove", counter]) == 0
    proofs = json.loads(capsys.readouterr().out)
    [admin] = [z for z in proofs["zones"] if z["zone"] == "admin"]
    entries = [json.loads(leaf["entry"]) for leaf in admin["leaves"] if leaf["proof"] is not None]
    assert {e["row"]["stage"] for e in entries} >= {"case_register", "correction"}


def _case_numbers() -> list[str]:
    from sqlalchemy import select

    from connectors.db import cases
    from hub.settings import load_settings
    from hub.zones import zone_engine

    with zone_engine(load_settings(), "admin").connect() as connection:
        return list(connection.execute(select(cases.c.case_number).order_by(cases.c.case_number)).scalars())


def test_each_stage_logs_what_it_did_and_what_stopped_it(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from hub.stages import logged_stage

    @logged_stage
    def sample_stage(count: int) -> dict[str, object]:
        if count < 0:
            raise ValueError("negative count")
        return {"bundles": [f"inbound#{n}" for n in range(count)], "accepted": count}

    with caplog.at_level(logging.INFO, logger="hub.stages"):
        assert sample_stage(5)["accepted"] == 5
        with pytest.raises(ValueError):
            sample_stage(-1)
    started, done, _, stopped = (r.getMessage() for r in caplog.records)
    assert started == "stage sample_stage: started"
    assert done.startswith("stage sample_stage: done in ") and '"accepted": 5' in done and '"count": 5' in done
    assert "stopped after" in stopped and "ValueError: negative count" in stopped
    assert caplog.records[-1].levelno == logging.WARNING


def test_the_loop_stages_are_logged() -> None:
    from hub import province, stages

    for stage in (stages.intake, stages.inbound_receive, stages.applications_load, stages.status_publish,
                  stages.portal_publish, stages.quality_report, province.province_report, province.catalogue_sync):
        assert hasattr(stage, "__wrapped__"), stage.__name__
