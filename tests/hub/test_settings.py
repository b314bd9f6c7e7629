"""Settings come from the environment and refuse values the hub cannot run with."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.settings import SettingsError, load_settings


def test_defaults_put_each_zone_under_the_data_root(tmp_path: Path) -> None:
    settings = load_settings({"HUB_DATA_ROOT": str(tmp_path)})
    assert settings.zone == "both"
    assert settings.internet_root == tmp_path / "internet"
    assert settings.admin_root == tmp_path / "admin"
    assert settings.exchange_db_url == f"sqlite:///{tmp_path / 'admin' / 'exchange.sqlite'}"
    assert settings.portal_drop == tmp_path / "internet" / "portal" / "drop"
    assert settings.outbox_dir("inbound").is_relative_to(settings.internet_root)
    assert settings.outbox_dir("outbound").is_relative_to(settings.admin_root)
    assert not settings.simulate


def test_each_zone_root_can_be_moved(tmp_path: Path) -> None:
    settings = load_settings(
        {"HUB_DATA_ROOT": str(tmp_path), "HUB_ADMIN_ROOT": str(tmp_path / "nei"), "HUB_ZONE": "admin"}
    )
    assert settings.admin_root == tmp_path / "nei"
    assert settings.loads("admin") and not settings.loads("internet")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HUB_ZONE": "dmz"}, "HUB_ZONE"),
        ({"HUB_AGENCY_CODE": "12345"}, "HUB_AGENCY_CODE"),
        ({"HUB_AGENCY_CODE": "32010000/1"}, "HUB_AGENCY_CODE"),
        ({"HUB_WORKING_HOURS": "09:00-12:00,11:00-17:00"}, "HUB_WORKING_HOURS.*overlap"),
        ({"HUB_WORKING_HOURS": "9-5"}, "HUB_WORKING_HOURS"),
        ({"HUB_ALERT_POLICY": "JS-2099"}, "HUB_ALERT_POLICY.*neither a preset"),
        ({"HUB_DISCLOSURE_DAYS": "0"}, "HUB_DISCLOSURE_DAYS"),
        ({"HUB_INGRESS": "sftp"}, "HUB_INGRESS.*front_db, drop, both"),
    ],
)
def test_bad_values_are_refused_with_the_setting_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_settings(env)


def test_unknown_zone_name_in_code_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        load_settings({"HUB_DATA_ROOT": str(tmp_path)}).loads("extranet")


def test_every_process_of_one_airflow_home_gets_the_same_jwt_secret(tmp_path: Path) -> None:
    from hub.airflow_env import airflow_env

    home = tmp_path / "airflow"
    first = airflow_env(home, tmp_path / "data")["AIRFLOW__API_AUTH__JWT_SECRET"]
    again = airflow_env(home, tmp_path / "data")["AIRFLOW__API_AUTH__JWT_SECRET"]
    other = airflow_env(tmp_path / "other", tmp_path / "data")["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert first == again and len(first) >= 32 and other != first
    assert (home / "jwt_secret").stat().st_mode & 0o777 == 0o600


def test_the_crypto_suite_is_a_setting_with_a_clear_refusal(tmp_path: Path) -> None:
    assert load_settings({"HUB_DATA_ROOT": str(tmp_path)}).crypto_suite == "intl"
    assert load_settings({"HUB_DATA_ROOT": str(tmp_path), "HUB_CRYPTO_SUITE": "gm"}).crypto_suite == "gm"
    with pytest.raises(SettingsError, match=r"HUB_CRYPTO_SUITE='sm9'; expected one of gm, intl"):
        load_settings({"HUB_DATA_ROOT": str(tmp_path), "HUB_CRYPTO_SUITE": "sm9"})


def test_keys_init_and_rotate_take_the_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from ferry.keys import load_signing_key
    from hub.cli import main

    monkeypatch.setenv("HUB_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("HUB_ZONE", "both")
    assert main(["keys", "init", "--suite", "gm"]) == 0
    settings = load_settings()
    assert load_signing_key(settings.keys_dir("admin"), "admin").suite == "gm"
    # A zone keeps its keys; the command says how to move it to another suite.
    assert main(["keys", "init", "--suite", "intl"]) == 0
    assert "hub keys rotate internet --suite intl" in capsys.readouterr().out
    assert main(["keys", "rotate", "internet", "--suite", "intl"]) == 0
    assert load_signing_key(settings.keys_dir("internet"), "internet").suite == "intl"
    assert main(["keys", "rotate", "admin"]) == 0  # rotation keeps the current suite
    assert load_signing_key(settings.keys_dir("admin"), "admin").suite == "gm"


def test_an_alert_policy_file_is_checked_when_the_deployment_starts(tmp_path: Path) -> None:
    from hub.settings import load_alert_policy

    good = tmp_path / "policy.json"
    good.write_text('{"name": "ours", "scheme": "fraction", "warning_fraction": 0.75, '
                    '"conduct_levels": {"FEE_DEVIATION": "warning", "STEP_BEFORE_REGISTRATION": null}}', "utf-8")
    policy = load_alert_policy(str(good))
    assert policy.warning_fraction == 0.75 and policy.conduct_levels["FEE_DEVIATION"] == "warning"
    assert policy.conduct_levels["STEP_BEFORE_REGISTRATION"] is None
    assert policy.conduct_levels["NEGATIVE_WITHOUT_REASONS"] == "alarm"  # the default stays
    assert load_settings({"HUB_ALERT_POLICY": str(good)}).alert_policy == str(good)
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "scheme": "late", "conduct_levels": {"FEE_DEVIATON": "alarm"}}', "utf-8")
    with pytest.raises(SettingsError, match="FEE_DEVIATON=alarm"):
        load_settings({"HUB_ALERT_POLICY": str(bad)})


def test_the_clock_shift_is_refused_outside_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime, timedelta

    from connectors.clock import CST, now, shifted
    from schemas.exceptions import TerminalError

    monkeypatch.setenv("HUB_SIMULATE", "0")
    monkeypatch.setenv("HUB_CLOCK_OFFSET_SECONDS", "-86400")
    with pytest.raises(TerminalError, match="only for simulation"):
        now()
    monkeypatch.delenv("HUB_CLOCK_OFFSET_SECONDS")
    with shifted(timedelta(days=-3)):
        assert abs((datetime.now(CST) - timedelta(days=3) - now()).total_seconds()) < 2
    assert abs((datetime.now(CST) - now()).total_seconds()) < 2
    import os

    assert os.environ["HUB_SIMULATE"] == "0" and "HUB_CLOCK_OFFSET_SECONDS" not in os.environ
