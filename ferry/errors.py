"""Error kinds shared by every package that does I/O, split by whether a retry can help.

The DAG layer maps these once to Airflow's retry policy (``hub.airflow_policy``).
"""

from __future__ import annotations


class HubError(Exception):
    """Base of the hub's own exceptions."""


class TransientError(HubError):
    """The operation may succeed if tried again later (connection reset, busy database)."""


class TerminalError(HubError):
    """Trying again cannot help (bad configuration, host key mismatch, missing key)."""
