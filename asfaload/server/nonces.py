"""The replay guard: used request nonces, in SQLite under the private data dir.

On disk so that a restart does not reopen the replay window, and SQLite so that several gunicorn
workers share it safely. The primary key makes "check and record" one atomic statement, and
SQLite's file lock makes it atomic across worker processes too: a nonce is accepted once, by
one worker.

Durability: WAL with ``synchronous=NORMAL``. A committed insert is in the WAL before
``remember`` returns, so it survives the process being killed or restarted (the next open
replays the WAL); only an OS crash or power loss can drop the last few. Those are the nonces of
read requests: a write request is acknowledged only after the mirror writer's ``syncfs`` of the
data dir's filesystem, which flushes this WAL too. ``synchronous=FULL`` cost one fsync per
authenticated request, serialised across every worker (the bench_server profile: a quarter of
the workers' time).

One connection per process, behind a lock: the handler threads of a worker take turns in
Python instead of contending for SQLite's write lock through its sleeping busy handler.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
"""

# Purge expired rows every this many inserts: bounded table, no background thread.
_PURGE_EVERY = 256


class SqliteNonceStore:
    """A NonceStore (see asfaload.auth) backed by one SQLite file."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._inserts = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: every use is under self._lock.
        self._conn = sqlite3.connect(
            path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)

    def remember(self, nonce: str, expires_at: int, now: int) -> bool:
        with self._lock:
            conn = self._conn
            self._inserts += 1
            if self._inserts % _PURGE_EVERY == 1:
                conn.execute("DELETE FROM nonces WHERE expires_at < ?", (now,))
            # An expired row for the same nonce may linger until the next purge; it no longer
            # protects anything (its timestamp window closed), so it may be replaced.
            cur = conn.execute(
                "INSERT INTO nonces (nonce, expires_at) VALUES (?, ?) "
                "ON CONFLICT (nonce) DO UPDATE SET expires_at = excluded.expires_at "
                "WHERE nonces.expires_at < ?",
                (nonce, expires_at, now),
            )
            return cur.rowcount == 1

    def count(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT COUNT(*) FROM nonces").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
