"""The environment profiles of the Airflow processes: LocalExecutor (the demo) and the
CeleryExecutor scale-out profile, with its refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.airflow_env import DEFAULT_BROKER_URL, airflow_env, celery_profile
from hub.settings import SettingsError

PG = "postgresql+psycopg2://hub@db-host:5432/airflow"


def test_the_local_profile_stays_on_sqlite_and_the_configured_executor(tmp_path: Path) -> None:
    env = airflow_env(tmp_path / "airflow", tmp_path / "data")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}"
    assert "AIRFLOW__CORE__EXECUTOR" not in env  # airflow.cfg: LocalExecutor
    assert not any(key.startswith("AIRFLOW__CELERY__") for key in env)


def test_the_celery_profile_adds_executor_broker_and_backend_to_everything_local_sets(tmp_path: Path) -> None:
    local = airflow_env(tmp_path / "airflow", tmp_path / "data", zone="admin")
    celery = airflow_env(tmp_path / "airflow", tmp_path / "data", zone="admin", executor="celery",
                         metadata_db=PG)
    assert celery["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert celery["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == PG
    assert celery["AIRFLOW__CELERY__BROKER_URL"] == DEFAULT_BROKER_URL == "redis://127.0.0.1:6379/0"
    assert celery["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + PG
    assert celery["AIRFLOW__OPERATORS__DEFAULT_QUEUE"] == "hub-admin"
    # Same JWT secret, DAG folder, data root and zone as the local profile of that home.
    assert {k: v for k, v in celery.items() if k in local and k != "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"} == {
        k: v for k, v in local.items() if k != "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"
    }


@pytest.mark.parametrize("broker", ["redis://127.0.0.1:6379/3", "amqp://hub@mq-host:5672/hub", "rediss://r:6380/0"])
def test_redis_and_rabbitmq_brokers_are_taken(broker: str) -> None:
    assert celery_profile(PG, broker)["AIRFLOW__CELERY__BROKER_URL"] == broker


@pytest.mark.parametrize(
    ("metadata_db", "broker", "backend", "message"),
    [
        ("sqlite:////srv/airflow/airflow.db", DEFAULT_BROKER_URL, None, "is SQLite.*needs PostgreSQL"),
        ("mysql://hub@db-host/airflow", DEFAULT_BROKER_URL, None, "scheme mysql://; expected postgresql"),
        (PG, "sqs://queue", None, "broker URL scheme sqs://"),
        (PG, "127.0.0.1:6379", None, "broker URL scheme '127.0.0.1:6379'"),
        (PG, DEFAULT_BROKER_URL, "redis://127.0.0.1:6379/1", "result backend redis://"),
        (PG, DEFAULT_BROKER_URL, "db+sqlite:////tmp/results.db", "result backend.*is SQLite"),
    ],
)
def test_the_celery_profile_refuses_what_cannot_scale_out(
    metadata_db: str, broker: str, backend: str | None, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        celery_profile(metadata_db, broker, backend)


def test_celery_without_a_metadata_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="HUB_METADATA_DB_URL"):
        airflow_env(tmp_path / "airflow", tmp_path / "data", executor="celery")
    with pytest.raises(SettingsError, match="executor 'kubernetes'"):
        airflow_env(tmp_path / "airflow", tmp_path / "data", executor="kubernetes")


def test_hub_airflow_env_prints_the_celery_profile_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.cli import main

    monkeypatch.setenv("HUB_METADATA_DB_URL", PG)
    monkeypatch.setenv("HUB_CELERY_BROKER_URL", "amqp://hub@mq-host:5672/hub")
    assert main(["airflow-env", "--home", str(tmp_path), "--executor", "celery", "--zone", "internet"]) == 0
    out = capsys.readouterr().out
    assert "export AIRFLOW__CORE__EXECUTOR='CeleryExecutor'" in out
    assert "export AIRFLOW__CELERY__BROKER_URL='amqp://hub@mq-host:5672/hub'" in out
    assert "export HUB_ZONE='internet'" in out and "export HUB_SIMULATE='0'" in out


def test_hub_airflow_env_refuses_sqlite_for_celery_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.cli import main

    monkeypatch.delenv("HUB_METADATA_DB_URL", raising=False)
    code = main(["airflow-env", "--home", str(tmp_path), "--executor", "celery",
                 "--metadata-db", f"sqlite:///{tmp_path / 'a.db'}"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert "SQLite" in captured.err and "CeleryExecutor needs PostgreSQL" in captured.err
