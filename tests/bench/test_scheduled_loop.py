"""Scale-out with no code change: the scheduled loop (bench.scheduled_loop) runs the same
seeded batch once on the LocalExecutor (SQLite, `airflow standalone`) and once on the
CeleryExecutor with two `airflow celery worker` processes on loopback (PostgreSQL metadata
in a database made for the run, Redis broker with a queue of the run's own), and the
loop's counts must be exactly the same. Both workers must be registered and must have run
task instances, every one of which a worker's log shows it took."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

REDIS_URL = "redis://127.0.0.1:6379/11"  # a database number of its own; the run adds its own queue name
RECORDS = 100
# Far enough back that the processing simulator has carried every case to its end: the
# counts then do not depend on the hour the two runs happen to start.
SUBMITTED_ON = date.today() - timedelta(days=90)

pytestmark = [pytest.mark.airflow, pytest.mark.celery, pytest.mark.timeout(900)]


def _services_or_skip() -> None:
    import redis

    from bench.scheduled_loop import postgres_server

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except redis.RedisError as error:
        pytest.skip(f"Redis on 127.0.0.1:6379 unreachable ({error}): the Celery loop needs a broker")
    try:
        postgres_server()
    except ConnectionError as error:
        pytest.skip(f"PostgreSQL unreachable ({error}): the Celery loop needs a metadata database")


def _start(home: Path, *args: str) -> subprocess.Popen[bytes]:
    # A clean environment: the run sets every HUB_* and AIRFLOW* variable it needs itself.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HUB_", "AIRFLOW")) or k == "HUB_TEST_POSTGRES_URL"}
    home.mkdir()
    with open(home.with_suffix(".out"), "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.scheduled_loop", "--records", str(RECORDS), "--seed", "20",
             "--submitted-on", SUBMITTED_ON.isoformat(), "--timeout", "300", "--keep", str(home),
             "--json", str(home.with_suffix(".json")), *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2],
        )


def _finish(process: subprocess.Popen[bytes], home: Path, deadline: float) -> dict[str, Any]:
    from bench.scheduled_loop import kill_process_groups

    try:
        process.wait(timeout=deadline)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # the bench's finally blocks stop its processes
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
    finally:
        kill_process_groups(home)  # whatever a crashed bench left behind
    output = home.with_suffix(".out").read_text(errors="replace")
    result_file = home.with_suffix(".json")
    assert result_file.exists(), f"the scheduled loop ({home.name}) ended {process.returncode}:\n{output[-6000:]}"
    result: dict[str, Any] = json.loads(result_file.read_text())
    result["output"] = output
    return result


@pytest.fixture(scope="module")
def loops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    _services_or_skip()
    folder = tmp_path_factory.mktemp("scheduled-loop")
    # One after the other: two Airflows at once on two cores take longer than both in turn.
    results = {"local": _finish(_start(folder / "local"), folder / "local", 400)}
    results["celery"] = _finish(
        _start(folder / "celery", "--executor", "celery", "--workers", "2", "--concurrency", "2",
               "--broker-url", REDIS_URL),
        folder / "celery", 400,
    )
    return results


def test_the_celery_loop_ends_with_exactly_the_counts_of_the_local_loop(loops: dict[str, dict[str, Any]]) -> None:
    local, celery = loops["local"]["counts"], loops["celery"]["counts"]
    assert local["balanced"] and local["submitted"] == RECORDS
    assert local["accepted"] > 0 and local["rejected"] > 0 and local["status_changes_published"] > 0
    assert celery == local


def test_the_celery_loop_ran_on_two_registered_workers(loops: dict[str, dict[str, Any]]) -> None:
    result = loops["celery"]
    assert result["executor"] == "celery" and result["workers"] == 2
    assert "Celery workers registered: worker1-" in result["output"] and ", worker2-" in result["output"]
    done = [t for t in result["tasks"] if t["state"] == "success"]
    assert done and {t["queue"] for t in done} == {t["queue"] for t in result["tasks"]}
    assert all(t["queue"].startswith("hub-loop-") for t in done)
    per_worker = result["tasks_per_worker"]
    # Every task instance of the loop was taken by one of the two workers, and each took some.
    assert per_worker["none"] == 0
    assert per_worker["worker-1"] + per_worker["worker-2"] == len(done)
    assert per_worker["worker-1"] > 0 and per_worker["worker-2"] > 0, per_worker


def test_the_local_loop_ran_without_celery(loops: dict[str, dict[str, Any]]) -> None:
    result = loops["local"]
    assert result["executor"] == "local" and "tasks_per_worker" not in result
    assert {t["queue"] for t in result["tasks"]} == {"default"}
