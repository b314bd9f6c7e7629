"""The one-way ferry: bundle codec, crypto suites, keys and transports. No Airflow here."""
