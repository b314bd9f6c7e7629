"""The folders every worker host of a zone's Celery deployment must see as one share, and
the check that refuses to run where one of them is not reachable.

A task may run on any worker, so the zone's data root (portal drop, outboxes, quarantine,
public feed), its local-folder ferry (unless both channels use the SFTP transport), its
key store, and in the administration zone the attachment store and the quality root must
be the same folders on every host. Each carries a deployment marker written once by
``hub shared init``; a host where a share is not mounted sees an empty local folder (or
nothing) without the marker and is refused, instead of silently writing beside the share.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from hub.settings import ZONES, Settings
from schemas.exceptions import TerminalError

MARKER = ".hub-deployment"
DEPLOYMENT_ID_VARIABLE = "HUB_DEPLOYMENT_ID"

# Why a shared path is refused (one code per kind of failure).
MISSING = "missing"
NOT_A_DIRECTORY = "not_a_directory"
NOT_READABLE = "not_readable"
NOT_WRITABLE = "not_writable"
NO_MARKER = "no_marker"
BAD_MARKER = "bad_marker"
OTHER_DEPLOYMENT = "other_deployment"


@dataclass(frozen=True)
class SharedPath:
    """One folder a zone's worker hosts must share."""

    zone: str
    name: str
    path: Path


@dataclass(frozen=True)
class Unreachable:
    """A shared path this host cannot use, and why."""

    shared: SharedPath
    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.shared.zone} {self.shared.name} {self.shared.path}: {self.code}: {self.detail}"


class SharedPathsUnreachable(TerminalError):
    """A zone's shared path is not reachable from this host (terminal: mount the share, or
    run ``hub shared init`` once where it is mounted)."""

    def __init__(self, unreachable: list[Unreachable]) -> None:
        self.unreachable = unreachable
        super().__init__(
            "shared paths not reachable from this host: " + "; ".join(str(u) for u in unreachable)
        )


def uses_sftp(channel: str, env: Mapping[str, str]) -> bool:
    """Whether ``channel`` runs over the SFTP transport (as ``hub.zones.transport_for`` decides)."""
    return bool(env.get(f"AIRFLOW_CONN_HUB_FERRY_{channel.upper()}"))


def shared_paths(settings: Settings, env: Mapping[str, str]) -> list[SharedPath]:
    """Every folder the worker hosts of this deployment must share, the zone's data root
    first. The local-folder ferry is left out when both channels use SFTP."""
    paths: list[SharedPath] = []
    zones = [zone for zone in ZONES if settings.loads(zone)]
    for zone in zones:
        root = settings.internet_root if zone == "internet" else settings.admin_root
        paths.append(SharedPath(zone, "data root", root))
    if not all(uses_sftp(channel, env) for channel in ("inbound", "outbound")):
        paths.append(SharedPath(settings.zone, "ferry root", settings.ferry_root))
    for zone in zones:
        paths.append(SharedPath(zone, "key store", settings.keys_dir(zone)))
        if zone == "admin":
            paths.append(SharedPath(zone, "attachment store", settings.attachment_store))
            paths.append(SharedPath(zone, "quality root", settings.quality_root))
    return paths


def _read_marker(folder: Path) -> str:
    document = json.loads((folder / MARKER).read_text("utf-8"))
    deployment = document.get("deployment_id") if isinstance(document, dict) else None
    if not isinstance(deployment, str) or not deployment:
        raise ValueError("no deployment_id in it")
    return deployment


def check_path(shared: SharedPath) -> tuple[Unreachable | None, str | None]:
    """Whether this host can use ``shared``: it exists, is a directory, can be listed and
    written (a probe file is created and removed), and carries a readable marker. Returns
    the failure (or None) and the marker's deployment id (or None)."""
    path = shared.path
    if not path.exists():
        return Unreachable(shared, MISSING, "does not exist (share not mounted?)"), None
    if not path.is_dir():
        return Unreachable(shared, NOT_A_DIRECTORY, "is not a directory"), None
    try:
        os.listdir(path)
    except OSError as error:
        return Unreachable(shared, NOT_READABLE, f"cannot be listed: {error.strerror or error}"), None
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".hub-probe-"):
            pass
    except OSError as error:
        return Unreachable(shared, NOT_WRITABLE, f"cannot be written: {error.strerror or error}"), None
    if not (path / MARKER).exists():
        return Unreachable(shared, NO_MARKER, f"has no {MARKER} marker (an empty local folder "
                                              "instead of the share? run `hub shared init` once where "
                                              "the share is mounted)"), None
    try:
        return None, _read_marker(path)
    except (OSError, ValueError) as error:
        return Unreachable(shared, BAD_MARKER, f"{MARKER} cannot be read: {error}"), None


def check_shared_paths(settings: Settings, env: Mapping[str, str]) -> list[Unreachable]:
    """Every shared path of this deployment that this host cannot use. All markers must name
    one deployment: ``HUB_DEPLOYMENT_ID`` when set, else the first marker found."""
    unreachable: list[Unreachable] = []
    expected = env.get(DEPLOYMENT_ID_VARIABLE) or None
    source = DEPLOYMENT_ID_VARIABLE
    for shared in shared_paths(settings, env):
        failure, deployment = check_path(shared)
        if failure is not None:
            unreachable.append(failure)
            continue
        if expected is None:
            expected, source = deployment, f"{shared.name} {shared.path}"
        elif deployment != expected:
            unreachable.append(Unreachable(
                shared, OTHER_DEPLOYMENT,
                f"marker of deployment {deployment}, expected {expected} (from {source})",
            ))
    return unreachable


def require_reachable(settings: Settings, env: Mapping[str, str]) -> None:
    """Raise :class:`SharedPathsUnreachable` naming every path this host cannot use."""
    unreachable = check_shared_paths(settings, env)
    if unreachable:
        raise SharedPathsUnreachable(unreachable)


def init_shared_paths(settings: Settings, env: Mapping[str, str], deployment_id: str | None = None) -> str:
    """Create the shared folders and write the deployment marker into each, once (run it on
    a host where the shares are mounted). A deployment that has markers keeps its id; markers
    that disagree, or an id that differs from theirs, are refused. Returns the id."""
    paths = shared_paths(settings, env)
    found = {}
    for shared in paths:
        if (shared.path / MARKER).exists():
            try:
                found[shared] = _read_marker(shared.path)
            except (OSError, ValueError) as error:
                raise SharedPathsUnreachable(
                    [Unreachable(shared, BAD_MARKER, f"{MARKER} cannot be read: {error}")]
                ) from None
    wanted = deployment_id or env.get(DEPLOYMENT_ID_VARIABLE) or None
    ids = set(found.values()) | ({wanted} if wanted else set())
    if len(ids) > 1:
        raise SharedPathsUnreachable([
            Unreachable(shared, OTHER_DEPLOYMENT, f"marker of deployment {found_id}; markers and the "
                                                  f"wanted id disagree ({', '.join(sorted(ids))})")
            for shared, found_id in found.items()
        ])
    deployment = ids.pop() if ids else f"hub-{secrets.token_hex(8)}"
    for shared in paths:
        # The key store holds private keys: owner only, as ferry.keys makes it.
        shared.path.mkdir(mode=0o700 if shared.name == "key store" else 0o777, parents=True, exist_ok=True)
        if shared in found:
            continue
        marker = {
            "deployment_id": deployment,
            "zone": shared.zone,
            "path": shared.name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        part = shared.path / (MARKER + ".part")
        part.write_text(json.dumps(marker, ensure_ascii=False) + "\n", "utf-8")
        os.replace(part, shared.path / MARKER)
    return deployment
