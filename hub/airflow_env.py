"""The environment an Airflow process of the hub runs with: Airflow home, the committed
``airflow.cfg``, the DAG folder and the hub's data root. Absolute paths are computed here,
never written into the config file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def airflow_env(home: Path, data_root: Path, *, zone: str = "both", simulate: bool = True) -> dict[str, str]:
    home = home.absolute()
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW_CONFIG": str(PROJECT_ROOT / "airflow.cfg"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # The api-server signs the task tokens the scheduler's workers present: every process
        # of one Airflow home must share the secret, or each task fails "Invalid auth token".
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret(home),
        "HUB_DATA_ROOT": str(data_root.absolute()),
        "HUB_ZONE": zone,
        "HUB_SIMULATE": "1" if simulate else "0",
        "GX_ANALYTICS_ENABLED": "False",
    }


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
