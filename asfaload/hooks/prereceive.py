"""The pre-receive hook: a push lands only if the rules engine derives every pushed commit.

Signers may push two kinds of commits to ``main`` (DESIGN "Shape"):

- their signatures for one pending request (signers file + metadata, release index, pending
  revocation), together with the completion transition those signatures trigger;
- the initiation of a revocation: a signed revocation document (finalised in the same commit
  when the revocation threshold is 1).

For each new commit, in order, the operation is inferred from the diff against its parent, the
rules engine computes ``apply(parent_tree, op, committer_time)``, and the pushed tree must be
EXACTLY that change (:func:`asfaload.rules.push.check_push`), with the change's message. Before
that, this module refuses what git could carry but the mirror never holds: other refs, deletions,
rewrites, merges, symlinks, submodules, executables, oversized files, odd paths and committer
times that run backwards or ahead of this server's clock. Registrations, releases and anything
else the rules do not derive come only through the server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pygit2
from pygit2.enums import FileMode

from .. import layout
from ..errors import AsfaloadError, FormatError
from ..rules import push as rules_push
from ..rules.engine import apply
from ..rules.tree import Change, TreeView
from ..store.gittree import MAIN, GitTreeView, PathChange, diff_trees

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
) -> None:
    """Raise PushRejected unless every update is an allowed fast-forward of main."""
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
    for u in updates:
        for commit in new_commits(repo, u.old, u.new):
            check_commit(repo, commit, size_cap=size_cap, latest=int(now) + CLOCK_SKEW)


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
def check_commit(
    repo: pygit2.Repository, commit: pygit2.Commit, *, size_cap: int, latest: int | None = None
) -> Change:
    """The change ``commit`` makes, if the rules derive it exactly; else PushRejected."""
    where = f"commit {commit.short_id}"
    try:
        return _check_commit(repo, commit, size_cap=size_cap, latest=latest)
    except PushRejected as e:
        raise PushRejected(f"{where}: {e}") from e
    except AsfaloadError as e:
        raise PushRejected(f"{where}: refused by the rules: {_one_line(str(e))}") from e


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_commit(
    repo: pygit2.Repository, commit: pygit2.Commit, *, size_cap: int, latest: int | None
) -> Change:
    parent = commit.parents[0]
    when = commit.commit_time
    if when < parent.commit_time:
        raise PushRejected("committer time is earlier than its parent's")
    if latest is not None and when > latest:
        raise PushRejected("committer time is in the future")
    changes = list(diff_trees(repo, parent.tree, commit.tree))
    if not changes:
        raise PushRejected("the commit changes nothing")
    for c in changes:
        _check_entry(repo, c, size_cap)
    before = GitTreeView(repo, parent.tree)
    after = GitTreeView(repo, commit.tree)
    pushed = _pushed_change(after, changes)
    # The inference and the exact comparison live in the rules (shared with `mirror verify`).
    op = rules_push.check_push(before, pushed, when)
    expected = apply(before, op, when)
    message = commit.message.rstrip("\n")
    if message != expected.message:
        raise PushRejected(f"commit message must be {expected.message!r}")
    return expected


def _check_entry(repo: pygit2.Repository, c: PathChange, size_cap: int) -> None:
    try:
        layout.check_path(c.path)
    except FormatError as e:
        raise PushRejected(f"invalid path {c.path!r}") from e
    if c.new is None:
        return
    if c.mode == FileMode.LINK:
        raise PushRejected(f"symlinks are not allowed: {c.path}")
    if c.mode == FileMode.COMMIT:
        raise PushRejected(f"submodules are not allowed: {c.path}")
    if c.mode != FileMode.BLOB:
        raise PushRejected(f"only regular non-executable files are allowed: {c.path}")
    size = repo[c.new].peel(pygit2.Blob).size
    if size > size_cap:
        raise PushRejected(f"{c.path} is {size} bytes, over the {size_cap}-byte limit")


def _pushed_change(after: TreeView, changes: list[PathChange]) -> Change:
    writes: dict[str, bytes] = {}
    deletes: set[str] = set()
    for c in changes:
        if c.new is None:
            deletes.add(c.path)
        else:
            data = after.read(c.path)
            if data is None:  # a path that is both deleted and re-added as a directory entry
                raise PushRejected(f"{c.path} is not a regular file")
            writes[c.path] = data
    return Change("pushed", writes, frozenset(deletes - set(writes)))


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
        check_push(repo, parse_updates(stdin_text), size_cap=max_file_size(repo))
    except PushRejected as e:
        return 1, f"asfaload: push rejected: {_one_line(str(e))}"
    except Exception:
        return 1, "asfaload: push rejected: internal error while checking the push"
    return 0, None
