"""province_report as real Airflow DAG runs (dag.test()) against the province simulator's
sshd: a batch goes up, the receipt comes back, and a host key mismatch fails the run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import select

from connectors.db import province_sync
from tests.connectors.province_testkit import Hub, add_case, hub

__all__ = ["hub"]
pytestmark = pytest.mark.airflow
DAGS = Path(__file__).parents[2] / "dags"


def run(dag_id: str) -> str:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS))
    return str(bag.get_dag(dag_id).test().state)


def marks(hub: Hub) -> set[str]:
    with hub.engine.connect() as connection:
        return set(connection.execute(select(province_sync.c.mark)).scalars())


def test_province_report_runs_send_then_take_in_the_receipt(airflow_db: Path, hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    from connectors.clock import now

    add_case(hub.engine, 1, now(), steps=2)
    assert run("province_report") == "success"
    assert marks(hub) == {"sent"}
    assert hub.province.process_incoming()[0]["accepted"] == 3
    assert run("province_report") == "success"
    assert marks(hub) == {"accepted"}

    other = hub.province.server.client_key.with_name("client_ed25519_key.pub").read_text()
    monkeypatch.setenv("AIRFLOW_CONN_PROVINCE_SFTP", hub.province.connection_uri(host_key=other))
    add_case(hub.engine, 2, now())
    assert run("province_report") == "failed"
    assert "pending" in marks(hub) and len(os.listdir(hub.province.root / "feed")) == 1  # nothing new went up
