"""Tell a running server that main moved (a push, a sync, another worker's commit).

git moves a ref by writing ``refs/heads/main.lock`` and renaming it over ``refs/heads/main``;
``git pack-refs`` rewrites ``packed-refs`` the same way. We watch the two directories holding
those names and call back when either name is created, modified or renamed onto.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import TracebackType

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer


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
    """Calls ``callback()`` (on the observer's thread) whenever ``refs/heads/main`` may have moved.

    Callbacks can repeat for one update; the callback should just re-read the tip.
    """

    def __init__(self, repo_path: str, callback: Callable[[], None]) -> None:
        repo_path = os.path.realpath(repo_path)
        heads = os.path.join(repo_path, "refs", "heads")
        targets = frozenset({os.path.join(heads, "main"), os.path.join(repo_path, "packed-refs")})
        handler = _Handler(targets, callback)
        self._observer = Observer()
        self._observer.daemon = True
        # Only writes: without a filter inotify also reports every open and read-only close, and
        # every request reads these refs (a wake-up of the observer thread each time, in every
        # worker process: a tenth of the server's CPU under load in bench_server).
        kinds = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileClosedEvent]
        self._observer.schedule(handler, heads, recursive=False, event_filter=kinds)
        self._observer.schedule(handler, repo_path, recursive=False, event_filter=kinds)

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
