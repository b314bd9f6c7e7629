"""The hub's error taxonomy, split by whether a retry can help (after ``dlt``'s terminal
and transient markers).

It lives in ``schemas`` because that is the one package every other package may import
(DESIGN.md §3): ``rules``, ``ferry``, ``connectors``, ``quality`` and ``hub`` all raise
these. The DAG layer maps the two kinds once to Airflow's retry policy
(``hub.airflow_policy``); nothing else catches them to decide about retrying.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of the hub's own exceptions."""


class TransientError(HubError):
    """The operation may succeed if tried again later (connection reset, busy database)."""


class TerminalError(HubError):
    """Trying again cannot help (bad configuration, host key mismatch, missing key)."""
