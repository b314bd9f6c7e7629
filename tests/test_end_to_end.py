"""The whole loop as real Airflow DAG runs (dag.test() on a migrated SQLite metadata
database), checked record by record against the generator's ground truth."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from rules.identifiers import is_valid_resident_id

RESIDENT_ID_RUN = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")


@pytest.fixture(scope="module")
def loop(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import os

    from hub import demo

    data_root = tmp_path_factory.mktemp("e2e") / "data"
    saved = os.environ.get("HUB_DATA_ROOT")
    os.environ["HUB_DATA_ROOT"] = str(data_root)
    try:
        truth = demo.prepare_batch(data_root, count=150, seed=11)
        states = demo.run_loop()
        counts = demo.summary()
        from hub.settings import load_settings

        settings = load_settings()
        yield {"truth": truth, "states": states, "counts": counts, "settings": settings}
    finally:
        if saved is None:
            os.environ.pop("HUB_DATA_ROOT", None)
        else:
            os.environ["HUB_DATA_ROOT"] = saved


pytestmark = pytest.mark.airflow


def test_every_dag_run_succeeds(loop: dict[str, Any]) -> None:
    assert set(loop["states"].values()) == {"success"}


def test_every_application_ends_exactly_as_expected(loop: dict[str, Any]) -> None:
    from connectors.db import applications, quarantine, rejections
    from hub.zones import zone_engine

    settings = loop["settings"]
    with zone_engine(settings, "admin").connect() as admin:
        accepted = dict(admin.execute(select(applications.c.net_id, applications.c.case_number)).all())
        rejected = {n: sorted({r["code"] for r in rs}) for n, rs in admin.execute(select(rejections.c.net_id, rejections.c.reasons))}
    with zone_engine(settings, "internet").connect() as internet:
        held = dict(internet.execute(select(quarantine.c.ref, quarantine.c.code)).all())
    outcomes: dict[str, Any] = {}
    for net_id in accepted:
        outcomes[net_id] = {"outcome": "accepted"}
    for net_id, codes in rejected.items():
        assert net_id not in outcomes
        outcomes[net_id] = {"outcome": "rejected", "codes": codes}
    for net_id, code in held.items():
        assert net_id not in outcomes
        outcomes[net_id] = {"outcome": "quarantined", "code": code}
    assert outcomes == loop["truth"]
    kinds = {o["outcome"] for o in loop["truth"].values()}
    assert kinds == {"accepted", "rejected", "quarantined"}
    assert len(set(accepted.values())) == len(accepted)
    assert all(re.fullmatch(rf"{settings.agency_code}[0-9]{{10}}", c) for c in accepted.values())


def test_every_accepted_and_rejected_application_has_a_public_status(loop: dict[str, Any]) -> None:
    public = loop["settings"].public_root / "status"
    index = json.loads((public / "index.json").read_text("utf-8"))
    for net_id, expected in loop["truth"].items():
        if expected["outcome"] == "quarantined":
            assert net_id not in index
            continue
        document = json.loads((public / f"{net_id}.json").read_text("utf-8"))
        assert document["events"], net_id
        if expected["outcome"] == "accepted":
            assert document["case_number"] and document["events"][0]["status"] == "registered"
        else:
            assert document["status"] == "rejected"
            assert sorted({r["code"] for r in document["events"][0]["reasons"]}) == expected["codes"]


def test_no_public_file_contains_an_unmasked_resident_id(loop: dict[str, Any]) -> None:
    files = [p for p in loop["settings"].public_root.rglob("*") if p.is_file()]
    assert files
    for path in files:
        text = path.read_text("utf-8")
        found = [m for m in RESIDENT_ID_RUN.findall(text) if is_valid_resident_id(m.upper())]
        assert not found, f"{path.name} publishes resident IDs"


def test_counts_balance(loop: dict[str, Any]) -> None:
    counts = loop["counts"]
    truth = loop["truth"]
    assert counts["balanced"], counts["checks"]
    assert counts["submitted"] == len(truth)
    assert counts["accepted"] == sum(o["outcome"] == "accepted" for o in truth.values())
    assert counts["quarantined"] == sum(o["outcome"] == "quarantined" for o in truth.values())
    assert counts["in_flight"] == 0


def test_trace_shows_the_whole_path(loop: dict[str, Any]) -> None:
    from connectors.provenance import trace
    from hub.zones import zone_engine

    settings = loop["settings"]
    net_id = next(n for n, o in sorted(loop["truth"].items()) if o["outcome"] == "accepted")
    events = trace([(z, zone_engine(settings, z)) for z in ("internet", "admin")], net_id)
    stages = [e["stage"] for e in events]
    for stage in ("intake", "inbound_receive", "applications_load", "processing", "status_publish", "portal_publish"):
        assert stage in stages, (stage, stages)
    assert stages.index("intake") < stages.index("inbound_receive") < stages.index("applications_load")
