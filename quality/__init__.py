"""Data quality and reconciliation reports for data stewards."""
