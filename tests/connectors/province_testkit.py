"""Shared pieces of the provincial-feed tests: the province simulator on a real sshd, a
hub with zone keys, and source rows written under the exchange-database contract."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, update

from connectors.clock import CST, iso
from connectors.db import applications, case_steps, cases, transaction
from connectors.province_sftp import SftpSettings
from ferry.keys import export_public_key
from hub.keys import init_keys
from hub.settings import Settings, load_settings
from hub.simulators.province import ProvinceSimulator
from hub.zones import zone_engine

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=CST)
AGENCY = "3201000001"


def case_number(n: int) -> str:
    return f"{AGENCY}{n:010d}"


def add_case(engine: Engine, n: int, at: datetime, *, case_name: str = "餐饮服务许可申请", steps: int = 1) -> str:
    """One registered case with ``steps`` process steps, all written at ``at``."""
    number = case_number(n)
    stamp = iso(at)
    with transaction(engine) as connection:
        connection.execute(applications.insert().values(
            net_id=f"NET{n:012d}", case_number=number, power_code="XK-0001", power_version=1,
            agency_code=AGENCY, case_name=case_name, applicant_type="person", applicant_name="张三",
            applicant_id_type="resident_id", applicant_id_number="11010519491231002X",
            submitted_at=stamp, registered_at=stamp, bundle="inbound#1", envelope="{}",
        ))
        connection.execute(cases.insert().values(
            case_number=number, net_id=f"NET{n:012d}", state="accepted", updated_at=stamp, power_code="XK-0001",
            power_version=1, agency_code=AGENCY, registered_at=stamp))
        for step in range(1, steps + 1):
            connection.execute(case_steps.insert().values(
                case_number=number, step_no=step, node="受理", department="审批科", officer_code="0101",
                officer_name="王建国", status=1, opinion="材料齐全，予以受理", started_at=stamp, finished_at=stamp,
            ))
    return number


def rename_case(engine: Engine, n: int, case_name: str) -> None:
    """A data steward corrects a case at its source (the case row's timestamp is untouched)."""
    with transaction(engine) as connection:
        connection.execute(update(applications).where(applications.c.case_number == case_number(n)).values(case_name=case_name))


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


class Hub:
    """A hub's administration zone talking to one province simulator."""

    def __init__(self, settings: Settings, province: ProvinceSimulator) -> None:
        self.settings = settings
        self.province = province
        self.engine = zone_engine(settings, "admin")

    def sftp(self, **overrides: object) -> SftpSettings:
        from urllib.parse import parse_qsl, urlsplit

        uri = urlsplit(self.province.connection_uri())
        extras: dict[str, object] = dict(parse_qsl(uri.query))
        extras.update(overrides)
        return SftpSettings.from_extras(uri.hostname or "", uri.port, uri.username, extras)


@pytest.fixture
def hub(hub_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hub]:
    init_keys(load_settings())  # both zones' keys, so the admin zone can seal to the internet zone
    monkeypatch.setenv("HUB_ZONE", "admin")
    settings = load_settings()
    province = ProvinceSimulator(tmp_path / "province")
    export_public_key(settings.keys_dir("admin"), "admin", province.trusted_keys)
    province.start()
    monkeypatch.setenv("AIRFLOW_CONN_PROVINCE_SFTP", province.connection_uri())
    try:
        yield Hub(settings, province)
    finally:
        province.remove()
