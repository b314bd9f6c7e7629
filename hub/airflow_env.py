"""The environment an Airflow process of the hub runs with: Airflow home, the committed
``airflow.cfg``, the DAG folder and the hub's data root, and for the scale-out profile the
CeleryExecutor, its PostgreSQL metadata database and its broker. Absolute paths are
computed here, never written into the config file; deployment URLs come from the caller
(``hub airflow-env`` reads them from its options or the environment)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from hub.settings import SettingsError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

EXECUTORS = ("local", "celery")
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")


def airflow_env(
    home: Path,
    data_root: Path,
    *,
    zone: str = "both",
    simulate: bool = True,
    executor: str = "local",
    metadata_db: str | None = None,
    broker_url: str | None = None,
    result_backend: str | None = None,
) -> dict[str, str]:
    """The environment of every Airflow process (scheduler, DAG processor, API server,
    workers) of one deployment. ``executor="local"``: LocalExecutor, by default on SQLite
    in ``home``; ``executor="celery"``: :func:`celery_profile` on top of the same settings."""
    if executor not in EXECUTORS:
        raise SettingsError(f"executor {executor!r}; expected one of {', '.join(EXECUTORS)}")
    home = home.absolute()
    env = {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(PROJECT_ROOT / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db or f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # The api-server signs the task tokens the scheduler's workers present: every process
        # of one Airflow home must share the secret, or each task fails "Invalid auth token".
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret(home),
        "HUB_DATA_ROOT": str(data_root.absolute()),
        "HUB_ZONE": zone,
        "HUB_SIMULATE": "1" if simulate else "0",
        "GX_ANALYTICS_ENABLED": "False",
    }
    if executor == "celery":
        if not metadata_db:
            raise SettingsError(
                "the CeleryExecutor needs the metadata database every host reaches: give "
                "--metadata-db or HUB_METADATA_DB_URL (postgresql+psycopg2://USER@HOST:5432/DB)"
            )
        env.update(celery_profile(metadata_db, broker_url or DEFAULT_BROKER_URL, result_backend, zone=zone))
    return env


def celery_profile(
    metadata_db: str, broker_url: str, result_backend: str | None = None, *, zone: str = "both"
) -> dict[str, str]:
    """The settings that move a deployment from the LocalExecutor onto Celery workers
    (pure: checks and returns, reads and writes nothing).

    The metadata database must be PostgreSQL (every scheduler and worker host reaches it; a
    SQLite file exists on one machine only). The broker is Redis (``redis://``) or RabbitMQ
    (``amqp://``). The result backend defaults to the metadata database. Tasks go to the
    zone's own queue, so a worker of one zone never takes a task of the other even if a
    broker were shared by mistake."""
    _require_postgresql(metadata_db, "metadata database (--metadata-db, HUB_METADATA_DB_URL)")
    scheme = urlsplit(broker_url).scheme
    if scheme not in BROKER_SCHEMES:
        raise SettingsError(
            f"broker URL scheme {scheme + '://' if scheme else repr(broker_url)}; expected "
            "redis://HOST:6379/DB or amqp://USER@HOST:5672/VHOST (--broker-url, HUB_CELERY_BROKER_URL)"
        )
    if result_backend is None:
        result_backend = "db+" + metadata_db
    elif not result_backend.startswith("db+"):
        raise SettingsError(
            f"result backend {result_backend.split('://')[0]}://...; expected db+postgresql://... "
            "(--result-backend, HUB_CELERY_RESULT_BACKEND)"
        )
    else:
        _require_postgresql(result_backend[3:], "result backend (--result-backend, HUB_CELERY_RESULT_BACKEND)")
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_db,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"hub-{zone}",
    }


def _require_postgresql(url: str, what: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme.startswith("sqlite"):
        raise SettingsError(
            f"{what} is SQLite: a SQLite file lives on one machine and Airflow runs it only with "
            "the LocalExecutor; the CeleryExecutor needs PostgreSQL "
            "(postgresql+psycopg2://USER@HOST:5432/DB)"
        )
    if scheme not in ("postgresql", "postgresql+psycopg2"):
        raise SettingsError(
            f"{what} scheme {scheme + '://' if scheme else repr(url)}; expected "
            "postgresql+psycopg2://USER@HOST:5432/DB"
        )


def jwt_secret(home: Path) -> str:
    """The JWT secret of an Airflow home: made once, kept in ``<home>/jwt_secret`` (mode
    0600, never in the repository), and the same for every process started from that home."""
    path = home / "jwt_secret"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(32))
    return path.read_text().strip()
