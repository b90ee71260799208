"""What ``asfaload mirror status`` reports: a mirror's tip, its primary, and its last checks.

``mirror sync`` and ``mirror verify`` record their outcome in :data:`STATUS_FILE`, a small JSON
file inside the bare repository's directory. Git ignores files it does not know there, and
``git http-backend`` serves only git's own paths, so the file never reaches a clone. Each update
is a read-modify-write under an flock (:data:`LOCK_FILE`) finished by an atomic rename: a
reader sees the old record or the new one, never half of either, and a sync and a verify
running at once both land.

Recorded:

- ``last_verified``: when, by which command, and which tip of ``main`` the last successful sync
  or verify found valid (an up-to-date sync counts: it checked the primary still has our tip);
- ``last_error``: the last failed sync or verify, its message and time. A later success does not
  erase it; compare its time with ``last_verified``'s to see whether the mirror recovered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import tempfile
import time
from typing import Any

import pygit2

from ..errors import StoreError, one_line
from ..store.durable import WriterLock

__all__ = [
    "LOCK_FILE",
    "STATUS_FILE",
    "mirror_status",
    "record_error",
    "record_verified",
]

STATUS_FILE = "asfaload-status.json"
LOCK_FILE = "asfaload-status.lock"
MAIN = "refs/heads/main"
PRIMARY_CONFIG = "asfaload.primary"
READONLY_CONFIG = "asfaload.readonly"

log = logging.getLogger(__name__)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _read(repo_path: str) -> dict[str, Any]:
    try:
        with open(os.path.join(repo_path, STATUS_FILE), encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return {}  # never recorded, or damaged: report nothing rather than fail the status
    return doc if isinstance(doc, dict) else {}


def _update(repo_path: str, key: str, value: dict[str, Any]) -> None:
    """Record ``key`` in the status file. The status only describes what happened: a disk that
    cannot take it (full, read-only) costs the record, never the sync or verification."""
    if not os.path.isdir(repo_path):
        return  # nothing to describe: a sync refused before it created the mirror
    try:
        _write(repo_path, key, value)
    except OSError as exc:
        log.warning("cannot record the mirror status (%s): %s", key, exc.strerror or exc)


def _write(repo_path: str, key: str, value: dict[str, Any]) -> None:
    with WriterLock(os.path.join(repo_path, LOCK_FILE)):
        doc = _read(repo_path)
        doc[key] = value
        fd, tmp = tempfile.mkstemp(prefix="." + STATUS_FILE + ".", dir=repo_path)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=2, sort_keys=True)
                f.write("\n")
            os.replace(tmp, os.path.join(repo_path, STATUS_FILE))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def record_verified(repo_path: str, tip: str | None, by: str) -> None:
    """``by`` (``sync`` or ``verify``) found ``main`` at ``tip`` valid just now."""
    _update(repo_path, "last_verified", {"at": _now(), "tip": tip, "by": by})


def record_error(repo_path: str, message: str, by: str) -> None:
    """``by`` failed just now with ``message`` (one line)."""
    text = one_line(message) or "error"
    _update(repo_path, "last_error", {"at": _now(), "message": text, "by": by})


def _commit_count(repo_path: str) -> int:
    res = subprocess.run(
        ["git", "--git-dir", repo_path, "rev-list", "--count", MAIN],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return int(res.stdout.strip()) if res.returncode == 0 and res.stdout.strip() else 0


def mirror_status(repo_path: str) -> dict[str, Any]:
    """``tip``, ``upstream`` (None on a primary), ``read_only``, ``commits``, ``last_verified``
    and ``last_error`` (None when never recorded) of the mirror at ``repo_path``."""
    repo_path = os.path.abspath(repo_path)
    try:
        repo = pygit2.Repository(repo_path)
    except (pygit2.GitError, KeyError) as exc:
        raise StoreError(f"Not a mirror repository: {repo_path}") from exc
    ref = repo.references.get(MAIN)
    tip = None if ref is None else str(ref.peel(pygit2.Commit).id)

    def config(name: str) -> str | None:
        try:
            return str(repo.config[name])
        except (KeyError, pygit2.GitError):
            return None

    recorded = _read(repo_path)
    return {
        "repo": repo_path,
        "tip": tip,
        "upstream": config(PRIMARY_CONFIG),
        "read_only": (config(READONLY_CONFIG) or "").lower() == "true",
        "commits": 0 if tip is None else _commit_count(repo_path),
        "last_verified": recorded.get("last_verified"),
        "last_error": recorded.get("last_error"),
    }
