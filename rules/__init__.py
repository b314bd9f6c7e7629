"""Pure domain logic of the hub: no I/O, no Airflow."""
