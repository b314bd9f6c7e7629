"""The environment an Airflow process of the hub runs with: Airflow home, the committed
``airflow.cfg``, the DAG folder and the hub's data root. Absolute paths are computed here,
never written into the config file."""

from __future__ import annotations

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
        "HUB_DATA_ROOT": str(data_root.absolute()),
        "HUB_ZONE": zone,
        "HUB_SIMULATE": "1" if simulate else "0",
        "GX_ANALYTICS_ENABLED": "False",
    }
