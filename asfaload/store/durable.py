"""Durability barriers and the cross-process writer lock."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import sqlite3
from types import TracebackType

from ..errors import DiskFullError, StoreError

_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    _syncfs = getattr(_libc, "syncfs", None)
except OSError:  # pragma: no cover - non-glibc platforms
    _libc = None
    _syncfs = None


_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException) -> bool:
    """``exc`` says the disk or the quota is full: ENOSPC/EDQUOT from the OS, SQLITE_FULL from
    SQLite (the nonce store), or a :class:`DiskFullError` already."""
    if isinstance(exc, DiskFullError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return False


def no_space_left(path: str) -> bool:
    """The filesystem holding ``path`` has no block left for an unprivileged writer. For the
    failures that do not carry an errno (libgit2 reports a ref it could not write as a
    GitError)."""
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail == 0


def sync_filesystem(path: str) -> None:
    """One barrier for every object a batch wrote: syncfs(2) of the filesystem holding ``path``.

    A batch's pack and index (and any loose object libgit2 writes) are written without fsync;
    fsyncing file by file would cost one barrier per file, which is what group commit exists to
    avoid.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        if _syncfs is not None and _syncfs(fd) == 0:
            return
        os.sync()
    finally:
        os.close(fd)


def fsync_path(path: str) -> None:
    """fsync a file (the ref we just moved) and the directory holding its name."""
    for p in (path, os.path.dirname(path)):
        try:
            fd = os.open(p, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def lock_path_for(repo_path: str, purpose: str = "") -> str:
    """A lock file of a repository: beside it, not inside it — the repository directory is
    served read-only over dumb HTTP and should hold only git's own files. ``purpose`` "" is
    the writer lock (``<repo>.lock``); others are ``<repo>.<purpose>.lock`` ("info" for the
    dumb-HTTP files, "repack" for a running repack)."""
    suffix = f".{purpose}.lock" if purpose else ".lock"
    return repo_path.rstrip("/") + suffix


class WriterLock:
    """An exclusive flock on a file beside the repository.

    flock (not lockf) so that two Mirror instances in one process also exclude each other. It
    serialises our own writers; a concurrent `git push` does not take it, which the
    compare-and-swap of the ref update covers.
    """

    def __init__(self, path: str, *, keep_open: bool = False) -> None:
        self._path = path
        self._fd: int | None = None
        # keep_open: one holder taking the lock again and again (the writer, once per batch)
        # keeps its file open between uses; flock belongs to the open file, so such a lock
        # must not be shared between threads.
        self._keep_open = keep_open

    def __enter__(self) -> WriterLock:
        if self._fd is None:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise StoreError("Cannot open the mirror writer lock") from e
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            if not self._keep_open:
                self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
