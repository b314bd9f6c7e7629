"""The DAG folder imports cleanly and fast, and every DAG follows the project's policies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).parents[2] / "dags"
INTERNET = {"intake", "portal_publish", "public_store_compact"}
ADMIN = {
    "inbound_receive", "applications_load", "status_publish", "case_processing_simulator", "quality_report",
}
ADMIN |= {"province_report", "catalogue_sync", "supervision", "legal_documents"}


def load_bag(monkeypatch: pytest.MonkeyPatch, zone: str, simulate: str = "1"):  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("HUB_ZONE", zone)
    monkeypatch.setenv("HUB_SIMULATE", simulate)
    return DagBag(dag_folder=str(DAGS))


def test_dag_folder_imports_without_errors_in_under_5_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    bag = load_bag(monkeypatch, "both")
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == INTERNET | ADMIN
    parse_seconds = sum(stat.duration.total_seconds() for stat in bag.dagbag_stats)
    assert parse_seconds < 5, f"parsing the DAG folder took {parse_seconds:.2f} s"


def test_dag_files_do_not_import_heavy_libraries_at_parse_time() -> None:
    code = (
        "import sys, runpy, glob\n"
        f"for f in sorted(glob.glob({str(DAGS)!r} + '/*.py')): runpy.run_path(f)\n"
        "heavy = [m for m in ('great_expectations', 'pandas', 'pyarrow', 'paramiko', 'weasyprint', 'pypdf') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(("zone", "expected"), [("internet", INTERNET), ("admin", ADMIN), ("both", INTERNET | ADMIN)])
def test_zone_setting_chooses_the_dags(monkeypatch: pytest.MonkeyPatch, zone: str, expected: set[str]) -> None:
    assert set(load_bag(monkeypatch, zone).dag_ids) == expected


def test_simulator_dag_only_when_simulating(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "case_processing_simulator" not in load_bag(monkeypatch, "admin", simulate="0").dag_ids


def test_every_dag_has_owner_zone_tag_retries_and_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    from hub.airflow_policy import check_shared_paths

    bag = load_bag(monkeypatch, "both")
    for dag_id, dag in bag.dags.items():
        zone = "internet" if dag_id in INTERNET else "admin"
        assert f"zone:{zone}" in dag.tags, dag_id
        assert dag.doc_md and dag_id in dag.doc_md.splitlines()[1], dag_id
        assert dag.max_active_runs == 1, dag_id
        for task in dag.tasks:
            assert task.owner == "information-centre", (dag_id, task.task_id)
            assert task.retries >= 1, (dag_id, task.task_id)
            assert task.retry_policy is not None, (dag_id, task.task_id)
            # On Celery every task first checks the zone's shared folders (hub.shared_paths).
            assert task._pre_execute_hook is check_shared_paths, (dag_id, task.task_id)
            assert task.outlets, (dag_id, task.task_id)


def test_the_province_tasks_retry_a_transient_sftp_failure_in_airflow_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The connectors do not retry on their own: the province DAGs' tasks carry the one
    retry layer (retries with exponential backoff under the hub's retry policy)."""
    from hub.airflow_policy import DEFAULT_ARGS, RETRY_POLICY

    bag = load_bag(monkeypatch, "admin")
    for dag_id in ("province_report", "catalogue_sync"):
        for task in bag.dags[dag_id].tasks:
            assert task.retries == DEFAULT_ARGS["retries"] == 3, (dag_id, task.task_id)
            assert task.retry_exponential_backoff, (dag_id, task.task_id)
            assert task.retry_policy is RETRY_POLICY, (dag_id, task.task_id)
    # what the policy does with each kind: tests/hub/test_retry_policy.py
