"""The server's own schedule for re-signing online TUF metadata before it expires.

Every server process may run an :class:`OnlineRefresher`; only the one holding the flock
``<private>/tuf/refresh.lock`` works, the others try for the lock at each interval (so when
that process exits, one of them takes over). The lock's holder reads what is due from the
mirror's tip (:mod:`.expiry`), so nothing is lost across restarts, and re-signs through
:meth:`TufService.refresh_due`: one commit per app through the mirror's writer, the same write
as ``POST /tuf/v1/metadata/online``, deciding again inside the write whether anything is due.
A failure is logged and retried after ``retry`` seconds; nothing here ever raises into the
server.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..errors import AsfaloadError
from ..layout import TUF_DIR
from .documents import AppRef
from .expiry import RefreshPolicy, apps, next_refresh
from .files import private_file, tuf_private_dir
from .service import MirrorLike, TufService

LOCK_FILE = "refresh.lock"
# Seconds before a failed refresh (or a failed look at the mirror) is tried again; each further
# failure of the same app doubles it, up to an hour, so that an app that cannot be re-signed
# until a person acts (its root expired, say) is logged hourly, not every minute.
RETRY_SECONDS = 60
MAX_RETRY_SECONDS = 3600


class OnlineRefresher:
    """Re-signs each app's due online roles; :meth:`run_once` is one look, :meth:`start` the
    thread that repeats it. ``clock`` is injectable for tests; the commit time the metadata is
    signed with is the store's clock."""

    def __init__(
        self,
        mirror: MirrorLike,
        private_dir: Path,
        policy: RefreshPolicy,
        *,
        clock: Callable[[], float] = time.time,
        retry: int = RETRY_SECONDS,
        log: logging.Logger | None = None,
    ) -> None:
        if not policy.enabled:
            raise ValueError("the refresh interval is 0: the scheduler is off")
        self.mirror = mirror
        self.private_dir = Path(private_dir)
        self.policy = policy
        self._service: TufService | None = None
        self._clock = clock
        self._retry = max(1, min(retry, policy.interval))
        self._log = log or logging.getLogger(__name__)
        self._lock_fd: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._retry_at: dict[AppRef, int] = {}
        self._failures: dict[AppRef, int] = {}
        # (tip it was read from, app -> when its next refresh falls due)
        self._schedule: tuple[str | None, dict[AppRef, int]] | None = None

    @property
    def service(self) -> TufService:
        # Made on first need: a server without TUF apps gets no private/tuf files from us.
        if self._service is None:
            self._service = TufService(self.mirror, self.private_dir)
        return self._service

    # --- the lock ---------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether this refresher holds the lock (is the one that re-signs)."""
        return self._lock_fd is not None

    def _acquire(self) -> bool:
        if self._lock_fd is not None:
            return True
        fd = private_file(tuf_private_dir(self.private_dir) / LOCK_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        self._log.info("TUF refresher: this process re-signs online metadata (pid %d)", os.getpid())
        return True

    def _release(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor drops the flock

    # --- one look -------------------------------------------------------------------------------
    def _read_schedule(self) -> dict[AppRef, int]:
        head = self.mirror.head()
        if self._schedule is not None and self._schedule[0] == head:
            return self._schedule[1]
        view = self.mirror.view()
        schedule: dict[AppRef, int] = {}
        for ref in apps(view):
            try:
                due = next_refresh(view, ref, self.service.expirations(ref), self.policy)
            except AsfaloadError as exc:
                # Unreadable metadata or settings: tried (and logged) at the next retry.
                self._log.error("TUF refresher: %s/%s: %s", ref.admin, ref.app, exc)
                due = int(self._clock())
            if due is not None:
                schedule[ref] = due
        self._schedule = (head, schedule)
        return schedule

    def run_once(self) -> float:
        """Re-sign what is due now; the seconds to wait before the next look."""
        if not self.mirror.view().listdir(TUF_DIR) or not self._acquire():
            return float(self.policy.interval)
        now = int(self._clock())
        refreshed = False
        for ref, due in sorted(self._read_schedule().items(), key=lambda kv: kv[1]):
            if due > now or self._retry_at.get(ref, 0) > now:
                continue
            try:
                roles = self.service.refresh_due(ref, self.policy)
            except Exception as exc:  # never into the server: logged, retried later
                failures = self._failures[ref] = self._failures.get(ref, 0) + 1
                delay = min(
                    self._retry << min(failures - 1, 16), max(MAX_RETRY_SECONDS, self._retry)
                )
                self._retry_at[ref] = now + delay
                self._log.error(
                    "TUF refresher: re-signing %s/%s failed (retried in %d s): %s",
                    ref.admin,
                    ref.app,
                    delay,
                    exc,
                )
                continue
            self._retry_at.pop(ref, None)
            self._failures.pop(ref, None)
            refreshed = True
            if roles:
                self._log.info(
                    "TUF refresher: re-signed %s for %s/%s", ", ".join(roles), ref.admin, ref.app
                )
        if refreshed:
            self._schedule = None
        return self._wait(now)

    def _wait(self, now: int) -> float:
        wake = now + self.policy.interval
        for ref, due in self._read_schedule().items():
            wake = min(wake, max(due, self._retry_at.get(ref, 0)))
        return float(max(1, wake - now))

    # --- the thread -----------------------------------------------------------------------------
    def start(self) -> OnlineRefresher:
        self._thread = threading.Thread(target=self._loop, name="tuf-refresher", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.run_once()
            except Exception as exc:  # e.g. the mirror unreadable for a moment
                self._schedule = None
                self._log.error("TUF refresher: %s (retried in %d s)", exc, self._retry)
                wait = float(self._retry)
            self._stop.wait(wait)
        self._release()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        else:
            self._release()
