"""The one retry layer: every DAG's retry policy fails at once on the hub's terminal errors
and retries its transient ones, whichever package raised them."""

from __future__ import annotations

import pytest
from airflow.sdk.definitions.retry_policy import RetryAction

from connectors.province_sftp import ProvinceRefused, ProvinceUnreachable
from ferry.bundle import BundleRejected
from hub.airflow_policy import RETRY_POLICY
from hub.settings import SettingsError
from hub.shared_paths import SharedPathsUnreachable
from quality.reconciliation import ReconciliationMismatch
from rules.catalogue import CatalogueError
from schemas.exceptions import TerminalError, TransientError


@pytest.mark.parametrize(
    "error",
    [
        TerminalError("x"),
        SettingsError("HUB_ZONE='moon'"),
        CatalogueError("bad item"),
        ProvinceRefused("host key mismatch"),
        BundleRejected("BAD_SIGNATURE", "x"),
        ReconciliationMismatch("lost NET1"),
        SharedPathsUnreachable([]),
    ],
)
def test_terminal_errors_fail_at_once(error: BaseException) -> None:
    assert RETRY_POLICY.evaluate(error, try_number=1, max_tries=4).action is RetryAction.FAIL


@pytest.mark.parametrize("error", [TransientError("busy"), ProvinceUnreachable("reset")])
def test_transient_errors_are_retried(error: BaseException) -> None:
    assert RETRY_POLICY.evaluate(error, try_number=1, max_tries=4).action is RetryAction.RETRY


def test_other_errors_keep_the_default_retries() -> None:
    assert RETRY_POLICY.evaluate(KeyError("x"), try_number=1, max_tries=4).action is RetryAction.DEFAULT
