"""New alarms reach the deployment's notifier once: logged, and POSTed to HUB_ALARM_WEBHOOK
(a real HTTP server on loopback); a failed delivery is tried again."""

from __future__ import annotations

import http.server
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from connectors.alarms import raise_alarm
from connectors.db import transaction
from hub.airflow_policy import DEFAULT_ARGS, notify_alarms
from hub.alarm_notify import notify_new_alarms
from hub.settings import SettingsError, load_settings
from hub.zones import zone_engine


class Gateway(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Gateway.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    Gateway.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/alarms"
    server.shutdown()
    server.server_close()


def _settings(tmp_path: Path, webhook: str) -> Any:
    return load_settings({"HUB_DATA_ROOT": str(tmp_path), "HUB_ZONE": "admin", "HUB_ALARM_WEBHOOK": webhook})


def test_each_new_alarm_is_sent_once_and_logged(tmp_path: Path, gateway: str, caplog: pytest.LogCaptureFixture) -> None:
    settings = _settings(tmp_path, gateway)
    with transaction(zone_engine(settings, "admin")) as connection:
        first = raise_alarm(connection, "PROVINCE_FEED_LAG", {"message": "省级平台上报滞后"}, "2026-12-05T10:00:00+08:00")
    with caplog.at_level(logging.ERROR, logger="hub.alarm_notify"):
        assert notify_new_alarms(settings).notified == [f"admin:{first}"]
    assert "ALARM admin:" in caplog.text and "省级平台上报滞后" in caplog.text
    assert [a["id"] for a in Gateway.received[0]["alarms"]] == [f"admin:{first}"]
    assert notify_new_alarms(settings).notified == []  # once
    assert len(Gateway.received) == 1


def test_a_failed_delivery_is_tried_again_and_never_fails_the_task(tmp_path: Path, gateway: str) -> None:
    settings = _settings(tmp_path, "http://127.0.0.1:9/closed")
    with transaction(zone_engine(settings, "admin")) as connection:
        raise_alarm(connection, "security", {"message": "x"}, "2026-12-05T10:00:00+08:00")
    report = notify_new_alarms(settings)
    assert report.notified == [] and report.failed
    assert notify_new_alarms(_settings(tmp_path, gateway)).notified  # the next attempt delivers it
    assert DEFAULT_ARGS["on_success_callback"] is notify_alarms is DEFAULT_ARGS["on_failure_callback"]


def test_the_webhook_setting_must_be_an_http_address(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="HUB_ALARM_WEBHOOK"):
        _settings(tmp_path, "ftp://gateway/alarms")
