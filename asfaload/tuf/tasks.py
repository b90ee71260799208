"""FaynoSync's task records (``GET /tuf/v1/task``), in SQLite under ``private/``.

Every TUF write gets a task id. Our writes are synchronous, so most tasks are born terminal; a
root draft's task stays PENDING until the draft is published, replaced or abandoned. Tasks are
operational records, not repository state, so they stay out of the mirror.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .documents import AppRef
from .files import private_sqlite, tuf_private_dir

STATES = (
    "PENDING",
    "RECEIVED",
    "STARTED",
    "SUCCESS",
    "FAILURE",
    "REVOKED",
    "REJECTED",
    "RETRY",
    "IGNORED",
    "ERRORED",
    "PRE_RUN",
    "RUNNING",
)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
  id TEXT PRIMARY KEY, admin TEXT NOT NULL, app TEXT NOT NULL, name TEXT NOT NULL,
  state TEXT NOT NULL, result TEXT NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS draft_tasks (
  admin TEXT NOT NULL, app TEXT NOT NULL, task_id TEXT NOT NULL, PRIMARY KEY (admin, app));
"""


@dataclass(frozen=True)
class Task:
    task_id: str
    state: str
    result: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task_id": self.task_id, "state": self.state}
        if self.result:
            out["result"] = dict(self.result)
        return out


class TaskStore:
    def __init__(self, private_dir: Path) -> None:
        base = tuf_private_dir(private_dir)
        base.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._path = private_sqlite(base / "tasks.sqlite3")
        with self._db() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self._path, timeout=30)) as db, db:
            yield db

    def record(
        self,
        ref: AppRef,
        name: str,
        state: str,
        message: str | None = None,
        *,
        task_id: str | None = None,
        error: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> str:
        """Create or update a task; returns its id."""
        assert state in STATES
        tid = task_id or str(uuid.uuid4())
        result: dict[str, Any] = {"task": name, "last_update": _now_iso()}
        if message is not None:
            result["message"] = message
        if error is not None:
            result["error"] = error
        if state in ("SUCCESS", "FAILURE", "ERRORED"):
            result["status"] = state == "SUCCESS"
        if details:
            result["details"] = dict(details)
        with self._db() as db:
            db.execute(
                "INSERT OR REPLACE INTO tasks VALUES (?, ?, ?, ?, ?, ?, ?)",
                (tid, ref.admin, ref.app, name, state, json.dumps(result), time.time()),
            )
        return tid

    def get(self, task_id: str, admin: str) -> Task:
        """A task of ``admin``; unknown ids (and other admins' tasks) read PENDING as FaynoSync."""
        with self._db() as db:
            row = db.execute(
                "SELECT state, result FROM tasks WHERE id = ? AND admin = ?", (task_id, admin)
            ).fetchone()
        if row is None:
            return Task(task_id, "PENDING", {})
        state, result = row[0], json.loads(row[1])
        if state == "SUCCESS" and result.get("status") is False:
            state = "ERRORED"
        return Task(task_id, state, result)

    def draft_task(self, ref: AppRef) -> str | None:
        with self._db() as db:
            row = db.execute(
                "SELECT task_id FROM draft_tasks WHERE admin = ? AND app = ?", (ref.admin, ref.app)
            ).fetchone()
        return str(row[0]) if row else None

    def set_draft_task(self, ref: AppRef, task_id: str | None) -> None:
        with self._db() as db:
            if task_id is None:
                db.execute(
                    "DELETE FROM draft_tasks WHERE admin = ? AND app = ?", (ref.admin, ref.app)
                )
            else:
                db.execute(
                    "INSERT OR REPLACE INTO draft_tasks VALUES (?, ?, ?)",
                    (ref.admin, ref.app, task_id),
                )


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat()
