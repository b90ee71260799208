"""Read-only mirrors: pull the primary's ``main``, re-verify every new commit, fast-forward.

A read-only mirror never trusts its primary. Each sync (gittuf's ``RSLFetch`` pattern):

1. ``git fetch`` the primary's ``refs/heads/main`` into the quarantine ref
   :data:`QUARANTINE_REF` of a scratch repository beside the mirror (``<repo>.incoming``, which
   borrows the mirror's objects through git alternates) — the new objects never enter the
   served repository unverified;
2. refuse a fetched tip that does not contain our ``main`` (a history rewrite, or a rollback to
   an older state): our ``main`` is already trusted and never moves backwards or sideways;
3. replay the new commits through the rules engine (:func:`asfaload.replication.replay.verify_range`, or
   :func:`~asfaload.replication.replay.verify_history` from the root on the first sync);
4. only then copy the verified objects into the mirror (a local ``git fetch`` from the scratch
   repository), move ``refs/heads/main`` with a compare-and-swap (``git update-ref NEW OLD``)
   and refresh the dumb-HTTP info files (``git update-server-info``).

The scratch repository and the quarantine ref are deleted whatever happens. A refused sync
leaves ``main`` exactly where it was and the mirror's object store untouched.

First use creates the local repository. It is not made with ``Mirror.init``: that writes its
own root commit, and a mirror's history must be the primary's, root included, so the repository
is created empty and ``main`` is first set to the verified fetched tip. The primary's root must be
an empty-tree commit like every mirror's (the replay checks it). A read-only mirror accepts no
pushes at all: its ``pre-receive`` hook refuses everything and tells the pusher to push to the
primary (signatures pushed here would fork it from the primary, and the next sync would have to
refuse the primary). Syncs serialise with each other (and with any store writer) on the flock
file ``<repo>.lock`` beside the repository, the store's writer lock.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pygit2

from ..errors import (
    AsfaloadError,
    ConcurrentUpdateError,
    FormatError,
    NetworkError,
    StoreError,
    VerificationError,
)
from ..layout import MIRROR_REPO_DIR
from ..store.durable import WriterLock, lock_path_for
from ..store.gitlimits import (
    REMOTE_CONFIG,
    check_remote,
    is_remote_url,
    limited,
    plain_netloc,
    run_git,
)
from ..store.mirror import init_bare_repository
from .replay import BadCommit, VerifyReport, verify_history, verify_range
from .status import PRIMARY_CONFIG, READONLY_CONFIG, record_error, record_verified

__all__ = [
    "QUARANTINE_REF",
    "FetchError",
    "HistoryRewriteError",
    "NoSourceError",
    "RejectedHistoryError",
    "SyncResult",
    "compare_and_swap_main",
    "create_readonly_mirror",
    "primary_of",
    "sync",
    "watch",
]

MAIN = "refs/heads/main"
QUARANTINE_REF = "refs/asfaload/incoming"
ZERO_OID = "0" * 40
SCRATCH_SUFFIX = ".incoming"
FETCH_TIMEOUT_SECONDS = 600.0

# Objects adopted into the mirror and the moved main reach the disk before the sync reports
# success (git >= 2.36; older versions ignore the unknown keys).
_DURABLE = ("-c", "core.fsync=objects,reference", "-c", "core.fsyncMethod=fsync")
# Variables that would make our git commands act on another repository or object store.
_GIT_ENV_DROP = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_QUARANTINE_PATH",
    "GIT_NAMESPACE",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
)

READONLY_CONFIG_VALUES = {
    "core.logAllRefUpdates": "false",
    # Malformed objects from the primary are refused by git itself, before our replay.
    "fetch.fsckObjects": "true",
    "receive.denyDeletes": "true",
    "receive.denyNonFastForwards": "true",
    # Smart-HTTP readers are never offered the unverified quarantine ref.
    "uploadpack.hideRefs": "refs/asfaload/",
    READONLY_CONFIG: "true",
}

REFUSE_PUSH_HOOK = (
    "#!/bin/sh\n"
    "echo 'asfaload: this is a read-only mirror; push signatures to the primary instead' >&2\n"
    "exit 1\n"
)


# --- errors -----------------------------------------------------------------------------------------
class FetchError(NetworkError):
    """``git fetch`` from the primary failed (unreachable, not a mirror, no main branch).

    ``detail`` is git's own reason, for callers that word the failure their way.
    """

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail or message


class NoSourceError(AsfaloadError):
    """No primary given and none recorded in the mirror."""


class RejectedHistoryError(VerificationError):
    """The primary's new commits do not replay through the rules; ``main`` was not moved."""

    def __init__(self, report: VerifyReport, local: str | None, fetched: str) -> None:
        assert report.bad is not None
        self.report = report
        self.bad: BadCommit = report.bad
        self.local = local
        self.fetched = fetched
        bad = report.bad
        where = f"commit {bad.commit}" if bad.commit else "the upstream's main"
        super().__init__(f"Refused the upstream's history: {where}: {bad.reason}")


class HistoryRewriteError(RejectedHistoryError):
    """The primary's main does not contain ours: rewritten, forked or rolled back."""


# --- results ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyncResult:
    """One successful sync: ``main`` moved from ``old`` to ``new`` (equal when up to date)."""

    source: str
    repo_path: str
    old: str | None
    new: str
    commits: int
    created: bool

    @property
    def status(self) -> str:
        if self.old is None:
            return "created"
        return "up-to-date" if self.old == self.new else "updated"

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": True,
            "status": self.status,
            "source": self.source,
            "main": self.new,
            "previous": self.old,
            "commits_verified": self.commits,
        }


# --- the repository ---------------------------------------------------------------------------------
def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV_DROP}
    env["GIT_TERMINAL_PROMPT"] = "0"  # never wait for a password on a terminal
    env["LC_ALL"] = "C"
    return env


def _git(repo_path: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return run_git(limited(["git", "--git-dir", repo_path, *args]), env=_git_env(), timeout=timeout)


def create_readonly_mirror(path: str, source: str) -> pygit2.Repository:
    """An empty bare repository (HEAD → main, no commits) set up as a read-only mirror."""
    path = os.path.abspath(path)
    repo = init_bare_repository(path, {**READONLY_CONFIG_VALUES, PRIMARY_CONFIG: source})
    hooks = os.path.join(path, "hooks")
    os.makedirs(hooks, exist_ok=True)
    hook = os.path.join(hooks, "pre-receive")
    with open(hook, "w", encoding="utf-8") as f:
        f.write(REFUSE_PUSH_HOOK)
    os.chmod(hook, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return repo


def _open(path: str) -> pygit2.Repository:
    try:
        repo = pygit2.Repository(path)
    except (pygit2.GitError, KeyError) as e:
        raise StoreError("Not a mirror repository") from e
    if not repo.is_bare:
        raise StoreError("Not a mirror repository (not bare)")
    return repo


def primary_of(path: str) -> str | None:
    """The primary recorded in the mirror at ``path`` (None when absent or not a repository)."""
    try:
        value = pygit2.Repository(path).config[PRIMARY_CONFIG]
    except (pygit2.GitError, KeyError):
        return None
    return str(value)


def public_upstream(path: str) -> str | None:
    """The upstream recorded in the mirror at ``path`` as fit to show anyone: an http(s) or
    git:// URL without credentials, query or fragment; None for a local path (a server's own
    file layout is nobody's business), an ssh URL, or nothing recorded."""
    recorded = primary_of(path)
    if recorded is None:
        return None
    parts = urlsplit(recorded)
    netloc = plain_netloc(recorded)  # None for a bad port recorded by hand
    if parts.scheme not in ("http", "https", "git") or netloc is None:
        return None
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


MIRROR_SUFFIX = "/" + MIRROR_REPO_DIR  # where an asfaload server serves its mirror


def read_only_refusal(
    path: str, what: str, primary_url: str | None = None, *, rest: bool = False
) -> str:
    """What a read-only mirror at ``path`` answers a write: ``what`` ("push signatures") goes to
    the primary, ``primary_url`` when the operator gave it. Else the upstream is named when it
    may be shown; it may itself be a mirror (a chain primary → A → B), which B cannot tell, so
    it is named as what B follows. For a ``rest`` write, an asfaload server's ``…/mirror.git``
    is named by its REST base, which is what ``-u`` takes."""
    if primary_url:
        return f"this server is a read-only mirror; {what} to the primary at {primary_url}"
    upstream = public_upstream(path)
    if upstream is not None and rest and upstream.endswith(MIRROR_SUFFIX):
        upstream = upstream.removesuffix(MIRROR_SUFFIX)  # the server's REST base, for -u
    follows = f" following {upstream}" if upstream else ""
    where = f" ({upstream}, or the primary it follows)" if upstream else ""
    return f"this server is a read-only mirror{follows}; {what} to the primary{where}"


def is_url(source: str) -> bool:
    """``scheme://…``: a remote to fetch (anything else names a local path)."""
    return is_remote_url(source)


def normalise_source(source: str) -> str:
    """A URL with an allowed scheme, or an existing local path made absolute.

    Rejects what :func:`~asfaload.store.gitlimits.check_remote` rejects; scp-like ``host:path``
    forms must be written as ``ssh://`` URLs, so a colon in a local name is never taken for a
    host.
    """
    if check_remote(source, "primary URL"):
        return source
    if not os.path.isdir(source):
        raise FormatError(f"No such primary repository: {source}")
    return os.path.abspath(source)


# --- steps ------------------------------------------------------------------------------------------
def _fetch(repo_path: str, source: str) -> None:
    args = [
        *REMOTE_CONFIG,
        "-c",
        "fetch.fsckObjects=true",
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--no-recurse-submodules",
        "--",
        source,
        f"+{MAIN}:{QUARANTINE_REF}",
    ]
    try:
        res = _git(repo_path, *args, timeout=FETCH_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as e:
        raise FetchError("Fetching from the upstream timed out", "timed out") from e
    if res.returncode != 0:
        lines = [ln.strip() for ln in res.stderr.splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"git exited with {res.returncode}"
        raise FetchError(f"Cannot fetch main from the upstream: {detail}", detail)


def compare_and_swap_main(repo_path: str, new: str, old: str | None) -> None:
    """Point ``main`` at ``new`` only if it is still ``old`` (None: only if it does not exist).

    ``git update-ref`` takes git's ref lock and checks the old value under it, so a concurrent
    push or store writer is never overwritten. Raises ConcurrentUpdateError otherwise.
    """
    res = _git(
        repo_path, *_DURABLE, "update-ref", "-m", "asfaload mirror sync", MAIN, new, old or ZERO_OID
    )
    if res.returncode != 0:
        raise ConcurrentUpdateError("main moved during the sync; nothing was changed")


def _make_scratch(repo_path: str) -> str:
    """A fresh bare repository beside the mirror, borrowing its objects (alternates).

    The primary's objects land here, never in the served object store, until they are
    verified: a refused history leaves no trace in the mirror (dumb HTTP serves objects by
    name, and a primary that keeps offering a forged commit must not grow the mirror each
    round).
    """
    scratch = repo_path.rstrip("/") + SCRATCH_SUFFIX
    shutil.rmtree(scratch, ignore_errors=True)
    pygit2.init_repository(scratch, bare=True)
    alternates = os.path.join(scratch, "objects", "info", "alternates")
    os.makedirs(os.path.dirname(alternates), exist_ok=True)
    with open(alternates, "w", encoding="utf-8") as f:
        f.write(os.path.join(repo_path, "objects") + "\n")
    return scratch


def _adopt(repo_path: str, scratch: str) -> None:
    """Copy the verified objects from the scratch repository into the mirror (a local fetch)."""
    res = _git(
        repo_path,
        *_DURABLE,
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--",
        scratch,
        f"+{QUARANTINE_REF}:{QUARANTINE_REF}",
        timeout=FETCH_TIMEOUT_SECONDS,
    )
    if res.returncode != 0:
        raise StoreError("Cannot copy the verified commits into the mirror")


def _delete_quarantine(repo: pygit2.Repository) -> None:
    ref = repo.references.get(QUARANTINE_REF)
    if ref is not None:
        ref.delete()


def _refresh_server_info(repo_path: str) -> None:
    # Dumb-HTTP readers (and mirrors of this mirror) find main through info/refs.
    _git(repo_path, "update-server-info")


def _check_descends(repo: pygit2.Repository, local: str, fetched: str) -> None:
    if repo.descendant_of(pygit2.Oid(hex=fetched), pygit2.Oid(hex=local)):
        return
    if repo.descendant_of(pygit2.Oid(hex=local), pygit2.Oid(hex=fetched)):
        reason = f"the upstream's main {fetched} is behind ours {local}: a rollback"
    else:
        reason = (
            f"the upstream's main {fetched} does not contain ours {local}: history was rewritten"
        )
    report = VerifyReport(fetched, 0, BadCommit(fetched, 0, "", reason))
    raise HistoryRewriteError(report, local, fetched)


# --- sync -------------------------------------------------------------------------------------------
def sync(repo_path: str, source: str | None = None) -> SyncResult:
    """Bring the read-only mirror at ``repo_path`` up to the primary ``source``, verified.

    Creates the mirror when ``repo_path`` does not exist (or is an empty directory). ``source``
    defaults to the primary recorded at creation. Raises :class:`FetchError`,
    :class:`HistoryRewriteError`, :class:`RejectedHistoryError` (``main`` unchanged) or
    :class:`~asfaload.errors.ConcurrentUpdateError`. The outcome is recorded for
    ``mirror status`` (:mod:`asfaload.replication.status`).
    """
    repo_path = os.path.abspath(repo_path)
    try:
        result = _sync(repo_path, source)
    except AsfaloadError as exc:
        record_error(repo_path, str(exc), "sync")
        raise
    record_verified(repo_path, result.new, "sync")
    return result


def _sync(repo_path: str, source: str | None) -> SyncResult:
    if source is not None:
        source = normalise_source(source)
    os.makedirs(os.path.dirname(repo_path), exist_ok=True)
    # The store's own writer lock: one sync, or one writer, at a time.
    with WriterLock(lock_path_for(repo_path)):
        # Decided under the lock: two first syncs at once must not both create the mirror.
        fresh = not os.path.exists(repo_path) or (
            os.path.isdir(repo_path) and not os.listdir(repo_path)
        )
        if source is None:
            recorded = None if fresh else primary_of(repo_path)
            if recorded is None:
                raise NoSourceError("No primary given (--from) and none recorded in the mirror")
            source = normalise_source(recorded)
        if fresh:
            repo = create_readonly_mirror(repo_path, source)
        else:
            repo = _open(repo_path)
            if primary_of(repo_path) is None:
                repo.config[PRIMARY_CONFIG] = source
        try:
            result = _sync_locked(repo, repo_path, source, created=fresh)
        finally:
            _delete_quarantine(repo)
        # After the quarantine ref is gone, so that info/refs never lists it.
        _refresh_server_info(repo_path)
        return result


def _sync_locked(
    repo: pygit2.Repository, repo_path: str, source: str, *, created: bool
) -> SyncResult:
    _delete_quarantine(repo)  # left by a sync killed before its cleanup
    # git treats the empty tree (every mirror's root commit's) as always present, so a fetch
    # over dumb HTTP never downloads it; libgit2 does not, and replaying the root commit would
    # miss it. Writing it here (its id is fixed) puts it where the scratch repository sees it.
    repo.TreeBuilder().write()
    scratch = _make_scratch(repo_path)
    try:
        _fetch(scratch, source)
        incoming = pygit2.Repository(scratch)
        try:
            fetched = str(incoming.references[QUARANTINE_REF].peel(pygit2.Commit).id)
        except (KeyError, ValueError, pygit2.GitError) as e:
            raise FetchError("The upstream's main is not a commit", "main is not a commit") from e
        ref = repo.references.get(MAIN)
        local = None if ref is None else str(ref.peel(pygit2.Commit).id)
        if local == fetched:
            return SyncResult(source, repo_path, local, fetched, 0, created)
        # The scratch repository sees the mirror's objects through its alternates, so the
        # trusted main is there too.
        if local is None:
            report = verify_history(incoming, QUARANTINE_REF)
        else:
            _check_descends(incoming, local, fetched)
            report = verify_range(incoming, local, fetched)
        if report.bad is not None:
            if "rewritten" in report.bad.reason:
                raise HistoryRewriteError(report, local, fetched)
            raise RejectedHistoryError(report, local, fetched)
        _adopt(repo_path, scratch)
        compare_and_swap_main(repo_path, fetched, local)
        return SyncResult(source, repo_path, local, fetched, report.checked, created)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def watch(
    repo_path: str,
    source: str | None,
    interval: float,
    on_result: Callable[[SyncResult], None],
    on_error: Callable[[AsfaloadError], None],
    *,
    iterations: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Sync every ``interval`` seconds (``iterations`` times, or forever).

    A failed sync (primary unreachable, refused history) is reported and retried at the next
    tick: ``main`` stays at the last verified state meanwhile, so readers are never served
    anything unverified.
    """
    if interval <= 0:
        raise FormatError("The watch interval must be positive")
    done = 0
    while iterations is None or done < iterations:
        if done:
            sleep(interval)
        try:
            on_result(sync(repo_path, source))
        except AsfaloadError as e:
            on_error(e)
        done += 1
