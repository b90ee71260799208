"""Replay a mirror's history: every commit must be exactly what the rules derive from its parent.

``main`` starts with the empty root commit of :meth:`asfaload.store.Mirror.init`; every later
commit is one operation. Each commit, oldest first, goes through the one commit check
(:class:`asfaload.replication.commits.CommitChecker`, shared with the pre-receive hook and
``mirror sync``): the operation is inferred from the files it changes, re-derived with the rules
engine at the commit's committer time, and the parent's tree with the derived change must have
the commit's tree id. A read-only mirror runs the same check on every fetched commit before it
moves its ``main`` (:func:`verify_range`).

Limitation: the server authenticates who submits a registration, an update proposal or a
release, but the mirror records no submitter for them. Replay therefore checks those three with
a key the rules would accept if one exists (a key listed in the new signers file; an admin or
master of the active one; a signer of the project), i.e. it proves that SOME authorised key could
have made the commit, not which one did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pygit2

from ..errors import AsfaloadError, CommitRefused, one_line
from ..store import MAIN
from ..store.gittree import diff_trees
from .commits import CommitChecker, Door, infer_any_operation

__all__ = [
    "BadCommit",
    "ReplayError",
    "VerifyReport",
    "first_parent_chain",
    "tree_diff",
    "infer_any_operation",
    "verify_history",
    "verify_range",
    "verify_since",
    "verify_repository",
]


# The store's id-skipping tree diff, under the name this module exported before the store
# adopted it (one implementation: the hook, the pending index and replay share it).
tree_diff = diff_trees


# The name replay's callers know for a refused commit.
ReplayError = CommitRefused


@dataclass(frozen=True)
class BadCommit:
    """The first commit that failed replay: its id, 0-based position on main, message, why."""

    commit: str
    position: int
    message: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "position": self.position,
            "message": self.message,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of a replay: ``checked`` commits passed; ``bad`` is the first failure, if any."""

    head: str | None
    checked: int
    bad: BadCommit | None = None

    @property
    def ok(self) -> bool:
        return self.bad is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.ok,
            "head": self.head,
            "commits_verified": self.checked,
            "first_bad_commit": None if self.bad is None else self.bad.to_dict(),
        }


# --- history ------------------------------------------------------------------------------------------
def first_parent_chain(
    repo: pygit2.Repository, tip: pygit2.Oid, stop: pygit2.Oid | None = None
) -> list[pygit2.Commit]:
    """Commits from the root (or from just after ``stop``) to ``tip``, oldest first.

    Follows first parents only; a merge commit is reported by the commit check. Raises
    ReplayError when ``stop`` is given but not reached (not an ancestor: a history rewrite).
    """
    chain: list[pygit2.Commit] = []
    cur: pygit2.Commit | None = repo[tip].peel(pygit2.Commit)
    while cur is not None:
        if stop is not None and cur.id == stop:
            break
        chain.append(cur)
        cur = cur.parents[0] if cur.parent_ids else None
    else:
        if stop is not None:
            raise ReplayError(f"{stop} is not an ancestor of {tip}: history was rewritten")
    chain.reverse()
    return chain


# --- whole histories --------------------------------------------------------------------------------
def _one_line(text: str) -> str:
    return one_line(text) or "rejected"


def verify_history(repo: pygit2.Repository, ref: str = MAIN) -> VerifyReport:
    """Replay ``ref`` from its root commit; stops at the first bad commit."""
    target = repo.references.get(ref)
    if target is None:
        return VerifyReport(None, 0, BadCommit("", 0, "", f"{ref} does not exist"))
    tip = target.peel(pygit2.Commit).id
    return _replay(repo, first_parent_chain(repo, tip), str(tip), start=0)


def verify_range(repo: pygit2.Repository, old: str, new: str) -> VerifyReport:
    """Replay the commits ``old..new`` (``old`` already trusted); a rewrite of ``old`` fails."""
    try:
        old_oid, new_oid = pygit2.Oid(hex=old), pygit2.Oid(hex=new)
        chain = first_parent_chain(repo, new_oid, stop=old_oid)
    except ReplayError as e:
        return VerifyReport(new, 0, BadCommit(new, 0, "", str(e)))
    except (KeyError, ValueError, pygit2.GitError):
        return VerifyReport(new, 0, BadCommit(new, 0, "", "commits are missing"))
    return _replay(repo, chain, new, start=1)


def verify_since(repo: pygit2.Repository, known: str | None, tip: str) -> VerifyReport:
    """Replay what ``tip`` adds to ``known``, the tip a client verified before (already
    trusted), or all of ``tip``'s history when it knows none."""
    if known is not None:
        return verify_range(repo, known, tip)
    return _replay(repo, first_parent_chain(repo, pygit2.Oid(hex=tip)), tip, start=0)


def _replay(
    repo: pygit2.Repository, chain: list[pygit2.Commit], head: str, *, start: int
) -> VerifyReport:
    checker = CommitChecker(repo, Door.REPLAY)
    for i, commit in enumerate(chain):
        try:
            if not commit.parent_ids and i != 0:
                raise ReplayError("only the first commit may lack a parent")
            checker.check(commit)
        except AsfaloadError as e:
            reason = _one_line(str(e))
        except Exception as e:  # a corrupt object or a bug: still a failed verification
            reason = f"cannot be replayed: {type(e).__name__}: {_one_line(str(e))}"
        else:
            continue
        # The message as a person reads it: a hostile one may be megabytes of escapes.
        shown = one_line(commit.message)
        bad = BadCommit(str(commit.id), start + i, shown, reason)
        return VerifyReport(head, i, bad)
    return VerifyReport(head, len(chain))


def verify_repository(path: str, ref: str = MAIN) -> VerifyReport:
    """Open the bare repository at ``path`` and replay ``ref``."""
    try:
        repo = pygit2.Repository(path)
    except (pygit2.GitError, KeyError) as e:
        raise ReplayError("Not a git repository") from e
    return verify_history(repo, ref)
