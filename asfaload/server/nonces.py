"""The replay guard: used request nonces, in SQLite under the private data dir.

On disk so that a restart does not reopen the replay window, and SQLite so that several gunicorn
workers share it safely. The primary key makes "check and record" one atomic statement.
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
        self._local = threading.local()
        self._inserts = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn()
        conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            # A nonce acknowledged to a client must survive a crash: full sync.
            conn.execute("PRAGMA synchronous=FULL")
            self._local.conn = conn
        return conn

    def remember(self, nonce: str, expires_at: int, now: int) -> bool:
        conn = self._conn()
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
        row = self._conn().execute("SELECT COUNT(*) FROM nonces").fetchone()
        return int(row[0])
