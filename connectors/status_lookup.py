"""The portal's read-only public site as an ASGI application (served by uvicorn): the
status page and the files beside it (disclosure lists, catalogue, audit checkpoints and
tiles) from the public folder, and one lookup route into the public status store:

    GET /lookup/<64 letters a..p>  →  200 {"lookup", "events": [{"event_id", "sealed"}],
                                           "audit": [{"event_id", "seq", "sealed"}],
                                           "legacy": <document of the file layout> | null}
                                      404 when nothing is published under that name

Nothing but GET and HEAD; nothing outside the public folder; no listings; the store is
opened read-only (``mode=ro``) and read beside the writer (WAL). Every answer says
``no-store`` (a status changes) and carries the page's content-security policy. What is
served about a case is sealed: it reads only with the case number and query password, in
the applicant's browser.

    hub public serve --host 127.0.0.1 --port 8080
"""

from __future__ import annotations

import mimetypes
import sqlite3
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson

from connectors.status_store import LEGACY_FOLDER, StatusStore, public_lookup, store_path

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

LOOKUP_ROUTE = "/lookup/"
_LETTERS = frozenset("abcdefghijklmnop")
CONTENT_SECURITY_POLICY = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".json": "application/json", ".css": "text/css; charset=utf-8", ".pdf": "application/pdf"}
# Files the public folder holds without a suffix: the audit log's signed note and key
# (text) and its tiles (binary hashes).
_AUDIT_TEXT = frozenset({"audit/checkpoint", "audit/key"})


class PublicSite:
    """The ASGI application of one public folder and its store."""

    def __init__(self, public_root: Path) -> None:
        self.public_root = public_root.resolve()
        self._store: StatusStore | None = None

    def _opened_store(self) -> StatusStore | None:
        if self._store is None and store_path(self.public_root).exists():
            self._store = StatusStore(store_path(self.public_root), readonly=True)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", "text/plain; charset=utf-8",
                           method == "HEAD", extra=[(b"allow", b"GET, HEAD")])
            return
        if path.startswith(LOOKUP_ROUTE):
            status, body, kind = self._lookup(path[len(LOOKUP_ROUTE):])
        else:
            status, body, kind = self._file(path)
        await _respond(send, status, body, kind, method == "HEAD")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _lookup(self, name: str) -> tuple[int, bytes, str]:
        if len(name) != 64 or not set(name) <= _LETTERS:
            return 404, b'{"error": "not found"}', "application/json"
        try:
            found = public_lookup(self.public_root, self._opened_store(), name)
        except sqlite3.Error:
            # The store was replaced under us (a restore): open it again next time.
            self.close()
            return 503, b'{"error": "store unavailable, try again"}', "application/json"
        if found is None:
            return 404, b'{"error": "not found"}', "application/json"
        return 200, orjson.dumps(found), "application/json"

    def _file(self, path: str) -> tuple[int, bytes, str]:
        relative = path.lstrip("/") or "index.html"
        parts = relative.split("/")
        # No hidden files, no climbing out, and the documents of the file layout only
        # through the lookup route (which also looks in the store).
        if any(p in ("", ".", "..") or p.startswith(".") for p in parts) or parts[0] == LEGACY_FOLDER:
            return 404, b"not found\n", "text/plain; charset=utf-8"
        target = (self.public_root / relative).resolve()
        if not target.is_relative_to(self.public_root) or not target.is_file():
            return 404, b"not found\n", "text/plain; charset=utf-8"
        if relative in _AUDIT_TEXT:
            kind = "text/plain; charset=utf-8"
        else:
            kind = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return 200, target.read_bytes(), kind


async def _respond(send: Send, status: int, body: bytes, kind: str, head: bool,
                   extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [
        (b"content-type", kind.encode("ascii")),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def serve(public_root: Path, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve the public site with uvicorn until interrupted (one process; a portal runs as
    many behind its load balancer as it needs: the store is read-only to them)."""
    import uvicorn

    uvicorn.run(PublicSite(public_root), host=host, port=port, log_level="info", server_header=False,
                proxy_headers=False)
