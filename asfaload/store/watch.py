"""Tell a running server that main moved (a push, a sync, another worker's commit).

git moves a ref by writing ``refs/heads/main.lock`` and renaming it over ``refs/heads/main``;
``git pack-refs`` rewrites ``packed-refs`` the same way. We watch the two directories holding
those names and call back when either name is created, modified or renamed onto.

watchdog's polling observer, not inotify: the ref moves once per write batch (tens of times a
second under load), and each inotify event crosses three of watchdog's threads in every worker
process, a cost that grows with the write rate. A snapshot of the two small directories every
``interval`` costs the same at any write rate. What reacts here waits for the ref to be quiet anyway (the
pending index's background catch-up), and nothing depends on it for correctness.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import TracebackType

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.polling import PollingObserver


class _Handler(FileSystemEventHandler):
    def __init__(self, targets: frozenset[str], callback: Callable[[], None]) -> None:
        self._targets = targets
        self._callback = callback

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("created", "modified", "moved", "closed"):
            return
        paths = {os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")}
        if paths & self._targets:
            self._callback()


class RefWatcher:
    """Calls ``callback()`` (on the observer's thread) within about ``interval`` seconds of
    ``refs/heads/main`` moving.

    Callbacks can repeat for one update, and several updates can make one; the callback should
    just re-read the tip.
    """

    def __init__(
        self, repo_path: str, callback: Callable[[], None], *, interval: float = 0.2
    ) -> None:
        repo_path = os.path.realpath(repo_path)
        heads = os.path.join(repo_path, "refs", "heads")
        targets = frozenset({os.path.join(heads, "main"), os.path.join(repo_path, "packed-refs")})
        handler = _Handler(targets, callback)
        self._observer = PollingObserver(timeout=interval)
        self._observer.daemon = True
        self._observer.schedule(handler, heads, recursive=False)
        self._observer.schedule(handler, repo_path, recursive=False)

    def start(self) -> RefWatcher:
        self._observer.start()
        return self

    def stop(self) -> None:
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join()

    def __enter__(self) -> RefWatcher:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
