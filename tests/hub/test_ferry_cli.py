"""The ``hub ferry`` operator commands on a real pair of zones."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "connectors"))
sys.path.insert(0, str(Path(__file__).parents[1] / "ferry"))

from loopkit import assert_exactly, carried, deliver, ferry_file, make_loop, submit

from hub import stages
from hub.cli import main
from hub.settings import Settings


@pytest.fixture
def loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    root = tmp_path / "data"
    monkeypatch.setenv("HUB_DATA_ROOT", str(root))
    monkeypatch.setenv("HUB_ZONE", "both")
    for name in ("HUB_INTERNET_ROOT", "HUB_ADMIN_ROOT", "HUB_FERRY_ROOT", "HUB_EXCHANGE_DB_URL", "HUB_INTERNET_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = make_loop(root)
    submit(settings, 8, 1)
    stages.intake(settings)
    return settings


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_verify_status_and_quarantine_release(loop: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = ferry_file(loop, "inbound", 1)
    code, out = run(capsys, "ferry", "verify", str(bundle))
    assert code == 0 and json.loads(out)["ledger"] == "not applied"
    good = bundle.read_bytes()
    deliver(bundle, good[:-1] + bytes([good[-1] ^ 1]))  # damaged in the gap
    code, out = run(capsys, "ferry", "verify", str(bundle))
    assert code == 1 and json.loads(out)["code"] == "TRUNCATED"
    stages.inbound_receive(loop)
    code, out = run(capsys, "ferry", "quarantine", "list", "--json")
    rows = [r for r in json.loads(out) if r["kind"] == "bundle"]
    assert [(r["id"], r["code"]) for r in rows] == [("admin:1", "TRUNCATED")]
    code, out = run(capsys, "ferry", "status")
    assert "quarantined          #1 TRUNCATED" in out and "missing ranges       1" in out
    # The operator repairs the file and releases it for a new receive attempt.
    stored = Path(rows[0]["stored_as"])
    stored.write_bytes(good)
    assert run(capsys, "ferry", "quarantine", "release", "admin:1")[0] == 0
    assert bundle.read_bytes() == good
    assert stages.inbound_receive(loop)["applied"] == ["inbound#1"]
    assert_exactly(loop, carried(loop))
    code, out = run(capsys, "ferry", "quarantine", "list")
    assert code == 0 and "admin:" not in out and "internet:1 " in out
    assert run(capsys, "ferry", "quarantine", "release", "admin:1")[0] == 2  # not held any more
    code, out = run(capsys, "ferry", "status", "--json")
    assert json.loads(out)["inbound"]["receiver"]["highest_contiguous"] == 1


def test_discard_keeps_an_audit_row_and_resend_is_byte_identical(
    loop: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from connectors.ferry_control import actions
    from hub.zones import zone_engine

    bundle = ferry_file(loop, "inbound", 1)
    good = bundle.read_bytes()
    deliver(bundle, b"junk" + good[4:])  # damaged in the gap
    stages.inbound_receive(loop)
    held = json.loads(run(capsys, "ferry", "quarantine", "list", "--json")[1])
    stored = Path(next(r["stored_as"] for r in held if r["id"] == "admin:1"))
    with pytest.raises(SystemExit):
        main(["ferry", "quarantine", "discard", "admin:1"])  # --reason is required
    capsys.readouterr()
    assert run(capsys, "ferry", "quarantine", "discard", "admin:1", "--reason", "corrupted by the gap")[0] == 0
    assert not stored.exists()
    audit = actions(zone_engine(loop, "admin"), 1)
    assert [(a["action"], a["reason"]) for a in audit] == [("discard", "corrupted by the gap")]
    assert json.loads(stored.with_name(stored.name + ".reason.json").read_text())["discarded"]
    assert run(capsys, "ferry", "resend", "1")[0] == 2  # both zones here: --channel needed
    code, out = run(capsys, "ferry", "resend", "1", "--channel", "inbound")
    assert code == 0 and out.strip() == "resent inbound#1"
    assert bundle.read_bytes() == good
    assert stages.inbound_receive(loop)["applied"] == ["inbound#1"]
    assert_exactly(loop, carried(loop))


def test_alarms_are_listed_until_an_operator_resolves_them_with_a_reason(
    loop: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    from connectors.alarms import raise_alarm
    from connectors.db import transaction
    from hub.zones import zone_engine

    with transaction(zone_engine(loop, "admin")) as connection:
        number = raise_alarm(connection, "security", {"message": "同一序号不同摘要 · same sequence, other digest"},
                             "2026-12-05T10:00:00+08:00")
    code, out = run(capsys, "alarms")
    assert code == 0 and f"admin:{number}" in out and "open" in out and "same sequence" in out
    with pytest.raises(SystemExit):  # a reason is required
        main(["alarms", "resolve", f"admin:{number}"])
    code, out = run(capsys, "alarms", "resolve", f"admin:{number}", "--reason", "checked with the gap appliance vendor")
    assert code == 0 and "resolved" in out
    code, out = run(capsys, "alarms")
    assert code == 0 and out.strip() == "no open alarms"
    code, out = run(capsys, "alarms", "--all", "--json")
    (row,) = json.loads(out)
    assert row["state"] == "resolved" and row["resolution"] == "checked with the gap appliance vendor"
    assert main(["alarms", "resolve", f"admin:{number}", "--reason", "again"]) == 2  # already resolved
    assert "was resolved" in capsys.readouterr().err
    assert main(["alarms", "resolve", "admin:99999", "--reason", "x"]) == 2
    assert main(["alarms", "resolve", "99999", "--reason", "x"]) == 2
