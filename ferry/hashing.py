"""SHA-256 on a second core: the bundle writer and reader hash every sealed byte twice (the
item's stored hash and the file's digest) beside decrypting and hashing the plaintext.

A :class:`HashWorker` runs hash updates on one worker thread, in the order they were
given; hashlib releases the GIL for updates of 2 KiB and more, so they run beside the
caller's own work. Pieces smaller than ``HANDOVER_BYTES`` are gathered and handed over
together, and a :class:`WorkerSha256` that never got a large piece is finished on the
caller's thread without waiting, so a bundle of many small items pays no hand-over per item.
At most ``QUEUE_DEPTH`` pieces wait at a time (memory stays bounded).
"""

from __future__ import annotations

import hashlib
import queue
import threading
from types import TracebackType
from typing import Self

HANDOVER_BYTES = 64 * 1024
QUEUE_DEPTH = 4


class HashWorker:
    """One worker thread feeding SHA-256 objects in order; use it as a context manager."""

    def __init__(self) -> None:
        self._tasks: queue.Queue[tuple[hashlib._Hash, bytes] | None] = queue.Queue(QUEUE_DEPTH)
        self._thread = threading.Thread(target=self._run, name="pehub-sha256", daemon=True)
        self._thread.start()

    def sha256(self) -> WorkerSha256:
        """A new SHA-256 whose large updates run on this worker."""
        return WorkerSha256(self)

    def submit(self, sha: hashlib._Hash, data: bytes) -> None:
        self._tasks.put((sha, data))

    def drain(self) -> None:
        """Wait until every update given so far has been applied."""
        self._tasks.join()

    def close(self) -> None:
        self._tasks.put(None)
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            task = self._tasks.get()
            try:
                if task is None:
                    return
                task[0].update(task[1])
            finally:
                self._tasks.task_done()


class WorkerSha256:
    """A SHA-256 fed through a :class:`HashWorker` (same digest as ``hashlib.sha256``)."""

    def __init__(self, worker: HashWorker) -> None:
        self._worker = worker
        self._sha = hashlib.sha256()
        self._pending = bytearray()
        self._handed_over = False

    def update(self, data: bytes) -> None:
        if len(data) >= HANDOVER_BYTES:
            self._flush()
            self._worker.submit(self._sha, data)
            self._handed_over = True
        else:
            self._pending += data
            if len(self._pending) >= HANDOVER_BYTES:
                self._flush()

    def hexdigest(self) -> str:
        """The digest of everything given so far (waits for the worker if it has a part)."""
        if not self._handed_over:
            self._sha.update(self._pending)
            self._pending.clear()
        else:
            self._flush()
            self._worker.drain()
        return self._sha.hexdigest()

    def _flush(self) -> None:
        if self._pending:
            self._worker.submit(self._sha, bytes(self._pending))
            self._pending.clear()
            self._handed_over = True
