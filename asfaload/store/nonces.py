"""The replay guard: used request nonces, in SQLite under the private data dir.

On disk so that a restart does not reopen the replay window, and SQLite so that several gunicorn
workers share it safely. The primary key makes "check and record" one atomic statement, and
SQLite's file lock makes it atomic across worker processes too: a nonce is accepted once, by
one worker.

Durability: WAL with ``synchronous=NORMAL``. A committed insert is in the WAL before
``remember`` returns, so it survives the process being killed or restarted (the next open
replays the WAL); only an OS crash or power loss can drop the last few. Those are the nonces of
read requests: a write request is acknowledged only after the mirror writer's ``syncfs`` of the
data dir's filesystem, which flushes this WAL too. ``synchronous=FULL`` would cost one fsync
per authenticated request, serialised across every worker.

One connection per process, behind a lock: the handler threads of a worker take turns in
Python instead of contending for SQLite's write lock through its sleeping busy handler.

A write request's nonce is claimed by the mirror's writer process instead, together with the
other nonces of its batch in one transaction (:meth:`SqliteNonceStore.remember_all`), just
before the batch is applied: the same table, so a nonce is still accepted once whichever
process claims it: one transaction per batch instead of an insert per request in the workers,
where SQLite's code and pages go cold between requests.

Every verified request spends its nonce, whatever its answer. A write request may be refused
before its claim reaches the writer process, or after the writer recorded it, and its worker
cannot tell which from the refusal; so each row names the request that recorded it (``owner``,
random per request), and :meth:`SqliteNonceStore.settle` records a claim unless that same
request already did. Only another request's row makes it a replay.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

from ..auth import NonceClaim, replay_error
from ..errors import DiskFullError
from ..private import private_dirs, private_sqlite
from .durable import is_disk_full

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nonces (
    nonce TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    owner TEXT
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
        private_dirs(path.parent, path.parent)
        private_sqlite(path)
        # check_same_thread=False: every use is under self._lock.
        self._conn = sqlite3.connect(
            path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._add_owner_column()

    def _add_owner_column(self) -> None:
        """A store written before rows had owners: add the column (NULL, never anyone's)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")  # one process adds it; the others then see it
        try:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(nonces)")}
            if "owner" not in columns:
                conn.execute("ALTER TABLE nonces ADD COLUMN owner TEXT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def remember(self, nonce: str, expires_at: int, now: int) -> bool:
        """Record ``nonce``; False when it is already recorded (and not yet expired)."""
        with self._lock:
            self._purge_now_and_then(now, 1)
            return self._insert(nonce, expires_at, now, None)

    def claim(self, claim: NonceClaim) -> None:
        """Record ``claim``'s nonce; the 401 replay error when it is already recorded."""
        with self._lock:
            self._purge_now_and_then(claim.now, 1)
            won = self._insert(claim.nonce, claim.expires_at, claim.now, claim.owner)
        if not won:
            raise replay_error()

    def settle(self, claim: NonceClaim) -> bool:
        """Make sure ``claim``'s nonce is recorded: True when it now is, for this request (just
        recorded, or by its own write earlier), False when another request recorded it first.

        For a request whose write may or may not have recorded the claim before it was refused.
        """
        with self._lock:
            self._purge_now_and_then(claim.now, 1)
            if self._insert(claim.nonce, claim.expires_at, claim.now, claim.owner):
                return True
            row = self._conn.execute(
                "SELECT owner FROM nonces WHERE nonce = ?", (claim.nonce,)
            ).fetchone()
        return row is not None and row[0] == claim.owner

    def remember_all(self, claims: Sequence[NonceClaim]) -> list[bool]:
        """:meth:`remember` for each claim, in one transaction: True for each one accepted (a
        nonce claimed twice in ``claims`` is accepted the first time only)."""
        if not claims:
            return []
        with self._lock:
            conn = self._conn
            self._execute("BEGIN IMMEDIATE")
            try:
                self._purge_now_and_then(max(c.now for c in claims), len(claims))
                won = [self._insert(c.nonce, c.expires_at, c.now, c.owner) for c in claims]
                self._execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return won

    def _purge_now_and_then(self, now: int, inserts: int) -> None:
        # On the insert numbered 1, 257, 513, ...: whichever of them fall in this call.
        before = self._inserts
        self._inserts += inserts
        if (self._inserts - 1) // _PURGE_EVERY != (before - 1) // _PURGE_EVERY:
            self._execute("DELETE FROM nonces WHERE expires_at < ?", (now,))

    def _execute(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Cursor:
        """Every write of the store: a full disk is the 507 :class:`DiskFullError` (nothing was
        recorded), not SQLite's own error."""
        try:
            return self._conn.execute(sql, args)
        except sqlite3.Error as e:
            if is_disk_full(e):
                raise DiskFullError() from e
            raise

    def _insert(self, nonce: str, expires_at: int, now: int, owner: str | None) -> bool:
        # An expired row for the same nonce may linger until the next purge; it no longer
        # protects anything (its timestamp window closed), so it may be replaced.
        cur = self._execute(
            "INSERT INTO nonces (nonce, expires_at, owner) VALUES (?, ?, ?) "
            "ON CONFLICT (nonce) DO UPDATE SET expires_at = excluded.expires_at, "
            "owner = excluded.owner WHERE nonces.expires_at < ?",
            (nonce, expires_at, owner, now),
        )
        return cur.rowcount == 1

    def count(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT COUNT(*) FROM nonces").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()
