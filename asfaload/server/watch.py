"""Keep a server's pending index caught up with ``main`` between requests.

A signer's ``git push``, a ``mirror sync`` or another gunicorn worker's commit moves
``refs/heads/main`` behind this process's back. watchdog sees the ref move; a background thread
then diffs the index forward, so the next ``GET /v1/pending_signatures`` finds it current instead
of paying for the catch-up itself. Requests still refresh on their own: the watcher only moves the
work off the request path, correctness never depends on it.
"""

from __future__ import annotations

import logging
import threading

from ..store.pending import PendingIndex
from ..store.watch import RefWatcher

log = logging.getLogger("asfaload.server")


class PendingRefresher:
    def __init__(self, repo_path: str, index: PendingIndex) -> None:
        self._index = index
        self._poked = threading.Event()
        self._stopping = False
        # Several events arrive for one ref update (lock file, rename): they collapse into one
        # pending poke, and the thread refreshes once per wake-up.
        self._watcher = RefWatcher(repo_path, self._poked.set)
        self._thread = threading.Thread(target=self._run, name="pending-refresh", daemon=True)

    def start(self) -> PendingRefresher:
        self._thread.start()
        self._watcher.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._watcher.stop()
        self._poked.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        indexed: str | None = None
        while True:
            self._poked.wait()
            if self._stopping:
                return
            self._poked.clear()
            try:
                commit = self._index.refresh()
            except Exception:  # a failed catch-up is retried by the next request; log it only
                log.exception("pending index refresh after a ref update failed")
                continue
            if commit != indexed:
                indexed = commit
                log.info("pending index caught up with main at %s", commit)
