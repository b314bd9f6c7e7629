"""Alembic migrations of the zone databases (run through ``connectors.migrate``)."""
