"""Helpers of the exchange-database tests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any


def generate(
    settings: Any, count: int, seed: int, days_back: int = 14, first_serial: int = 1
) -> dict[str, Any]:
    """A seeded portal batch submitted ``days_back`` days ago."""
    from hub.simulators.applicants import generate_batch
    from hub.zones import load_catalogue

    catalogue = load_catalogue(settings)
    return generate_batch(
        settings.portal_drop, count, seed,
        [dict(item.document) for item in catalogue.items.values()],
        settings.agency_code, date.today() - timedelta(days=days_back), first_serial=first_serial,
    )


def carry_to_processing(settings: Any, count: int, seed: int) -> None:
    """A seeded portal batch submitted 14 days ago, taken in, loaded and processed to now."""
    from connectors.clock import registration_shift, shifted
    from hub import stages

    generate(settings, count, seed)
    with shifted(registration_shift(date.today() - timedelta(days=14))):
        stages.intake(settings)
        stages.inbound_receive(settings)
        stages.applications_load(settings)
    stages.case_processing(settings)
