"""The pre-receive hook: a push lands only if the rules engine derives every pushed commit.

Signers may push two kinds of commits to ``main``:

- their signatures for one pending request (signers file + metadata, release index, pending
  revocation), together with the completion transition those signatures trigger;
- the initiation of a revocation: a signed revocation document (finalised in the same commit
  when the revocation threshold is 1).

This module refuses what git could carry but the mirror never holds: other refs, deletions,
rewrites, merges, and committer times ahead of this server's clock. Each new commit, oldest
first, then goes through the one commit check shared with ``mirror verify`` and ``mirror sync``
(:class:`asfaload.replication.commits.CommitChecker`): plain files at valid paths under the size
cap, an operation inferred from them, and a tree whose id is the tree the rules derive. Any
commit message is accepted (it is not state). Registrations, releases and anything else the
rules do not derive come only through the server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pygit2

from ..errors import AsfaloadError, CommitRefused, one_line
from ..replication.commits import CheckedCommit, CommitChecker, Door
from ..store.gittree import MAIN

ZERO = "0" * 40
DEFAULT_MAX_FILE_SIZE = 1 << 20
MAX_FILE_SIZE_KEY = "asfaload.maxFileSize"
# How far a pushed committer time may run ahead of this server's clock.
CLOCK_SKEW = 600
MAX_COMMITS_PER_PUSH = 1000


class PushRejected(AsfaloadError):
    """A push the mirror refuses; ``str()`` is the one line the pusher sees."""

    http_status = 403


@dataclass(frozen=True)
class RefUpdate:
    old: str
    new: str
    ref: str

    @classmethod
    def parse(cls, line: str) -> RefUpdate:
        parts = line.split()
        if len(parts) != 3:
            raise PushRejected("malformed ref update from git")
        return cls(*parts)


def parse_updates(text: str) -> list[RefUpdate]:
    return [RefUpdate.parse(line) for line in text.splitlines() if line.strip()]


def max_file_size(repo: pygit2.Repository) -> int:
    try:
        value = repo.config[MAX_FILE_SIZE_KEY]
        if value is None:
            return DEFAULT_MAX_FILE_SIZE
    except KeyError:
        return DEFAULT_MAX_FILE_SIZE
    try:
        return int(value)
    except ValueError:
        return DEFAULT_MAX_FILE_SIZE


# --- the push ---------------------------------------------------------------------------------------
def check_push(
    repo: pygit2.Repository,
    updates: Sequence[RefUpdate],
    *,
    size_cap: int = DEFAULT_MAX_FILE_SIZE,
    wall_clock: Callable[[], float] | None = None,
    quarantine: Quarantine | None = None,
) -> None:
    """Raise PushRejected unless every update is an allowed fast-forward of main (and, given
    the push's ``quarantine``, unless the push carries only objects its commits use)."""
    if not updates:
        raise PushRejected("nothing to update")
    for u in updates:
        if u.ref != MAIN:
            raise PushRejected(f"only {MAIN} can be pushed, not {u.ref}")
        if u.new == ZERO:
            raise PushRejected(f"deleting {MAIN} is not allowed")
        if u.old == ZERO:
            raise PushRejected(f"creating {MAIN} by push is not allowed")
    now = (wall_clock or time.time)()
    checker = _checker(repo, size_cap, int(now) + CLOCK_SKEW)
    used: set[bytes] = set()
    for u in updates:
        for commit in new_commits(repo, u.old, u.new):
            used.add(commit.id.raw)
            used |= checker.check_one(commit).objects
    if quarantine is not None:
        check_carried_objects(quarantine, used)


def check_carried_objects(quarantine: Quarantine, used: set[bytes]) -> None:
    """Refuse a push that carries objects none of its commits use.

    git keeps every object of an accepted push, reachable or not, and serves it (over dumb
    HTTP, by id over protocol v2): a valid signature with a few extra blobs in its pack would
    make the mirror host them. An object the mirror already had is harmless (a thin pack's
    bases are completed with them).
    """
    extra = 0
    for oid in quarantine.incoming:
        if oid.raw not in used and not quarantine.existing.exists(oid):
            extra += 1
    if extra:
        raise PushRejected(
            f"the push carries {extra} object(s) that none of its commits uses; push only "
            "the commits (git push sends only what main needs)"
        )


@dataclass(frozen=True)
class Quarantine:
    """A push's objects as git holds them until the hook accepts it (``incoming``), and the
    repository's own objects (``existing``)."""

    incoming: pygit2.Odb
    existing: pygit2.Odb

    @classmethod
    def from_env(cls, git_dir: str) -> Quarantine | None:
        path = os.environ.get("GIT_QUARANTINE_PATH")
        if not path or not os.path.isdir(path):
            return None  # git without quarantine (before 2.11): nothing to tell apart
        return cls(pygit2.Odb(path), pygit2.Odb(os.path.join(git_dir, "objects")))


def new_commits(repo: pygit2.Repository, old: str, new: str) -> list[pygit2.Commit]:
    """The commits ``old..new``, oldest first; only a linear fast-forward is accepted."""
    try:
        new_oid, old_oid = pygit2.Oid(hex=new), pygit2.Oid(hex=old)
        if not repo.descendant_of(new_oid, old_oid):
            raise PushRejected(f"non-fast-forward update of {MAIN} is not allowed")
        cur = repo[new_oid].peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError) as e:
        raise PushRejected("pushed objects are missing") from e
    chain: list[pygit2.Commit] = []
    while cur.id != old_oid:
        if len(cur.parent_ids) != 1:
            raise PushRejected(f"commit {cur.short_id}: merge commits are not allowed")
        chain.append(cur)
        if len(chain) > MAX_COMMITS_PER_PUSH:
            raise PushRejected(f"too many commits in one push (max {MAX_COMMITS_PER_PUSH})")
        cur = cur.parents[0]
    chain.reverse()
    return chain


# --- one commit -----------------------------------------------------------------------------------
class _PushChecker:
    """The one commit check (:class:`CommitChecker`, shared with replay and sync) at the push
    door, its refusals as the one line the pusher sees."""

    def __init__(self, checker: CommitChecker) -> None:
        self._checker = checker

    def check_one(self, commit: pygit2.Commit) -> CheckedCommit:
        where = f"commit {commit.short_id}"
        try:
            return self._checker.check(commit)
        except CommitRefused as e:
            raise PushRejected(f"{where}: {e}") from e
        except AsfaloadError as e:
            raise PushRejected(f"{where}: refused by the rules: {one_line(str(e))}") from e


def _checker(repo: pygit2.Repository, size_cap: int, latest: int | None) -> _PushChecker:
    return _PushChecker(CommitChecker(repo, Door.PUSH, size_cap=size_cap, latest=latest))


# --- entry point ------------------------------------------------------------------------------
def open_quarantined(git_dir: str | None = None) -> pygit2.Repository:
    """The repository as the hook must see it: with the pushed objects, which git keeps in a
    quarantine dir named by the environment until the hook accepts them (libgit2 ignores that
    environment unless asked, so a default open would not find them)."""
    path = git_dir or os.environ.get("GIT_DIR", ".")
    return pygit2.Repository(path, pygit2.enums.RepositoryOpenFlag.FROM_ENV)


def run(stdin_text: str) -> tuple[int, str | None]:
    """(exit status, the one line to tell the pusher)."""
    try:
        repo = open_quarantined()
        check_push(
            repo,
            parse_updates(stdin_text),
            size_cap=max_file_size(repo),
            quarantine=Quarantine.from_env(repo.path),
        )
    except PushRejected as e:
        return 1, f"asfaload: push rejected: {one_line(str(e))}"
    except Exception:
        return 1, "asfaload: push rejected: internal error while checking the push"
    return 0, None
