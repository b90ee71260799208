"""Keep a server's pending index caught up with ``main`` between requests.

A signer's ``git push``, a ``mirror sync`` or another gunicorn worker's commit moves
``refs/heads/main`` behind this process's back. watchdog sees the ref move; a background thread
then diffs the index forward, so the next ``GET /v1/pending_signatures`` finds it current instead
of paying for the catch-up itself. Requests still refresh on their own: the watcher only moves the
work off the request path, correctness never depends on it.

The refresh waits until the ref has been quiet for ``quiet`` seconds (at most ``max_delay``):
background work for an idle moment, never competing with a stream of writes. Refreshing on every
move cost each worker a tree diff and a re-evaluation per batch, and even one refresh every few
seconds re-evaluated every request signed meanwhile, in every worker: 15-20% of the server's CPU
under the bench_server write load. A lookup made meanwhile catches up by itself, as it always
did; ``max_delay`` only bounds how far behind a busy server's index can fall.
"""

from __future__ import annotations

import logging
import threading
import time

from ..store.pending import PendingIndex
from ..store.watch import RefWatcher

log = logging.getLogger("asfaload.server")


class PendingRefresher:
    def __init__(
        self,
        repo_path: str,
        index: PendingIndex,
        *,
        poll: float = 0.2,
        quiet: float = 0.5,
        max_delay: float = 60.0,
    ) -> None:
        # The watcher looks every ``poll`` seconds, so a busy ref pokes at most that often:
        # "quiet" must span more than one look, or every look would seem to end a burst.
        if quiet <= poll:
            raise ValueError("quiet must be longer than the watcher's poll interval")
        self._index = index
        self._quiet = quiet
        self._max_delay = max_delay
        self._poked = threading.Event()
        self._stopping = False
        # Pokes collapse into one pending poke, and the thread refreshes once per wake-up.
        self._watcher = RefWatcher(repo_path, self._poked.set, interval=poll)
        self._thread = threading.Thread(target=self._run, name="pending-refresh", daemon=True)

    def start(self) -> PendingRefresher:
        # The first catch-up happens at start, in the background: on a fresh worker it builds
        # the index (the whole tree when no cache file matches), which the first lookup, or the
        # first refresh under write load, would otherwise pay for.
        self._poked.set()
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
            deadline = time.monotonic() + self._max_delay
            while not self._stopping:
                self._poked.clear()
                left = deadline - time.monotonic()
                if left <= 0 or not self._poked.wait(min(self._quiet, left)):
                    break
            if self._stopping:
                return
            try:
                commit = self._index.refresh()
            except Exception:  # a failed catch-up is retried by the next request; log it only
                log.exception("pending index refresh after a ref update failed")
                continue
            if commit != indexed:
                indexed = commit
                log.info("pending index caught up with main at %s", commit)
