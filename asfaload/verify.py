"""Replay a mirror's history: every commit must be exactly what the rules derive from its parent.

``main`` starts with the empty root commit of :meth:`asfaload.store.Mirror.init`; every later
commit is one operation. For each commit, oldest first, the operation is inferred from the diff
against its parent and re-derived with the rules engine at the commit's committer time:

- server-only operations (:class:`~asfaload.rules.ops.Register`,
  :class:`~asfaload.rules.ops.ProposeUpdate`, :class:`~asfaload.rules.ops.RegisterRelease`) are
  recognised by the file they create (a project's history file, a pending signers file, a
  release index);
- signatures and revocations (made by the server or pushed) are inferred by
  :func:`asfaload.rules.push.infer_operation`, the same inference the push door uses;
- TUF commits (``tuf/<admin>/<app>/``) cannot be re-derived (their online roles are signed with
  private keys), so they are checked for what a TUF client relies on: published metadata is
  never rewritten or deleted, every new root is signed by its predecessor's and its own
  thresholds, and every online role verifies against the root in force.

The tree after the commit must equal the parent's tree plus the derived change, path for path,
and the commit message must be the derived change's message. A read-only mirror runs the same
check on every fetched commit before it moves its ``main`` (:func:`verify_range`).

Limitation: the server authenticates who submits a registration, an update proposal or a
release, but the mirror records no submitter for them. Replay therefore checks those three with
a key the rules would accept if one exists (a key listed in the new signers file; an admin or
master of the active one; a signer of the project), i.e. it proves that SOME authorised key could
have made the commit, not which one did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import pygit2
from pygit2.enums import FileMode

from . import layout
from .crypto import PublicKey, SecretKey
from .errors import AsfaloadError, VerificationError
from .rules import queries
from .rules.engine import apply
from .rules.groups import group_keys
from .rules.ops import Op, ProposeUpdate, Register, RegisterRelease
from .rules.push import infer_operation
from .rules.tree import Change, TreeView
from .store import MAIN
from .store.gittree import GitTreeView, diff_trees

__all__ = [
    "BadCommit",
    "ReplayError",
    "VerifyReport",
    "first_parent_chain",
    "tree_diff",
    "infer_any_operation",
    "verify_commit",
    "verify_history",
    "verify_range",
    "verify_repository",
]


# The store's id-skipping tree diff, under the name this module exported before the store
# adopted it (one implementation: the hook, the pending index and replay share it).
tree_diff = diff_trees


class ReplayError(VerificationError):
    """A commit of the mirror is not what the rules derive from its parent."""


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
            "ok": self.ok,
            "head": self.head,
            "commits_verified": self.checked,
            "first_bad_commit": None if self.bad is None else self.bad.to_dict(),
        }


# --- history ------------------------------------------------------------------------------------------
def first_parent_chain(
    repo: pygit2.Repository, tip: pygit2.Oid, stop: pygit2.Oid | None = None
) -> list[pygit2.Commit]:
    """Commits from the root (or from just after ``stop``) to ``tip``, oldest first.

    Follows first parents only; a merge commit is reported by :func:`verify_commit`. Raises
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


def verify_commit(repo: pygit2.Repository, commit: pygit2.Commit) -> Change:
    """The change ``commit`` makes, when the rules (or the TUF checks) derive exactly it.

    A parentless commit must be the empty root commit. Raises :class:`ReplayError` (or the rules
    engine's own :class:`~asfaload.errors.AsfaloadError`) with a one-line reason otherwise.
    """
    if not commit.parent_ids:
        if len(commit.tree) != 0:
            raise ReplayError("the root commit must hold the empty tree")
        return Change(commit.message.rstrip("\n"))
    if len(commit.parent_ids) != 1:
        raise ReplayError("merge commits are not allowed")
    parent = commit.parents[0]
    when = commit.commit_time
    if when < parent.commit_time:
        raise ReplayError("committer time is earlier than its parent's")
    change = _diff_change(repo, parent.tree, commit.tree)
    before = GitTreeView(repo, parent.tree)
    after = GitTreeView(repo, commit.tree)
    message = commit.message.rstrip("\n")
    if _is_tuf_change(change):
        _check_tuf(before, after, change, message)
        return change
    try:
        op = infer_any_operation(before, change)
    except AsfaloadError as e:
        paths = sorted(change.paths)
        shown = ", ".join(paths[:3]) + (", …" if len(paths) > 3 else "")
        raise ReplayError(f"no operation of the rules makes this change ({shown}): {e}") from e
    expected = apply(before, op, when)
    _compare(expected, change)
    if message != expected.message:
        raise ReplayError(f"commit message must be {expected.message!r}")
    return expected


def _diff_change(repo: pygit2.Repository, old: pygit2.Tree, new: pygit2.Tree) -> Change:
    writes: dict[str, bytes] = {}
    deletes: set[str] = set()
    for c in diff_trees(repo, old, new):
        try:
            layout.check_path(c.path)
        except AsfaloadError as e:
            raise ReplayError(f"invalid path {c.path!r}") from e
        if c.new is None:
            deletes.add(c.path)
            continue
        if c.mode != FileMode.BLOB:
            raise ReplayError(f"only regular non-executable files are allowed: {c.path}")
        writes[c.path] = repo[c.new].peel(pygit2.Blob).data
    if not writes and not deletes:
        raise ReplayError("the commit changes nothing")
    try:
        return Change("", writes, frozenset(deletes))
    except ValueError as e:
        raise ReplayError(f"inexact change: {e}") from e


def _compare(expected: Change, actual: Change) -> None:
    differing = sorted(
        {
            p
            for p in expected.writes.keys() | actual.writes.keys()
            if expected.writes.get(p) != actual.writes.get(p)
        }
        | (expected.deletes ^ actual.deletes)
    )
    if differing:
        p = differing[0]
        if p in actual.writes or p in actual.deletes:
            if p in expected.writes or p in expected.deletes:
                raise ReplayError(f"{p} differs from what the rules derive")
            raise ReplayError(f"{p} is changed, but the rules do not change it")
        raise ReplayError(f"{p} must change as the rules derive, but does not")


# --- inferring operations --------------------------------------------------------------------------
@cache
def _placeholder_key() -> PublicKey:
    # Stands in for a submitter when no plausible key exists, so that the rules engine itself
    # produces the rejection (and its reason) instead of this module guessing one.
    return SecretKey.generate("ed25519").public_key


def _pick(keys: Iterable[PublicKey]) -> PublicKey:
    ordered = sorted(keys, key=str)
    return ordered[0] if ordered else _placeholder_key()


def _created(before: TreeView, change: Change) -> list[str]:
    return sorted(p for p in change.writes if before.read(p) is None)


def infer_any_operation(before: TreeView, change: Change) -> Op:
    """The operation ``change`` claims to be, server-only ones included (not yet checked)."""
    created = _created(before, change)
    for path in created:
        if layout.basename(path) == layout.HISTORY_FILE and "/" in path:
            return _infer_register(before, change, layout.parent(path))
    for path in created:
        located = layout.signers_project_of(path)
        if located is not None and located[1] and layout.basename(path) == layout.SIGNERS_FILE:
            return _infer_update(before, change, located[0])
    for path in created:
        if layout.basename(path) == layout.INDEX_FILE:
            return _infer_release(before, change, path)
    return infer_operation(before, change)


def _written(change: Change, path: str) -> bytes:
    data = change.writes.get(path)
    if data is None:
        raise ReplayError(f"{path} must be written by this operation, but is not")
    return data


def _infer_register(before: TreeView, change: Change, project: str) -> Register:
    from .model import SignersFile

    signers = _written(change, layout.signers_file_path(project, pending=True))
    metadata = _written(change, layout.metadata_path(project, pending=True))
    keys = SignersFile.parse(signers).all_signer_keys()
    return Register(project, signers, metadata, _pick(keys))


def _infer_update(before: TreeView, change: Change, project: str) -> ProposeUpdate:
    from .model import SignersFile

    signers = _written(change, layout.signers_file_path(project, pending=True))
    metadata = _written(change, layout.metadata_path(project, pending=True))
    try:
        old = queries.active_signers(before, project)
    except AsfaloadError:
        old = None
    if old is not None:
        keys = set(group_keys(old.admin_groups()) | group_keys(old.master_groups()))
    else:
        keys = set(SignersFile.parse(signers).all_signer_keys())
    return ProposeUpdate(project, signers, metadata, _pick(keys))


def _infer_release(before: TreeView, change: Change, index_path: str) -> RegisterRelease:
    keys: Sequence[PublicKey] = ()
    project = queries.find_project(before, layout.parent(index_path))
    if project is not None:
        try:
            active = queries.active_signers(before, project)
        except AsfaloadError:
            active = None
        if active is not None:
            keys = tuple(active.all_signer_keys())
    return RegisterRelease(index_path, change.writes[index_path], _pick(keys))


# --- TUF commits ----------------------------------------------------------------------------------
_VERSIONED_RE = re.compile(r"^([1-9][0-9]{0,9})\.(root|targets|snapshot)\.json$")
_TUF_PREFIX = layout.TUF_DIR + "/"


def _is_tuf_change(change: Change) -> bool:
    return any(p.startswith(_TUF_PREFIX) for p in change.paths)


def _root_versions(view: TreeView, app_dir: str) -> list[int]:
    out = []
    for name in view.listdir(app_dir):
        m = _VERSIONED_RE.match(name)
        if m and m.group(2) == "root":
            out.append(int(m.group(1)))
    return sorted(out)


def _check_tuf(before: TreeView, after: TreeView, change: Change, message: str) -> None:
    from .tuf._api import Metadata, Root

    if not message.startswith("tuf: "):
        raise ReplayError("a TUF commit's message starts with 'tuf: '")
    apps = {layout.parent(p) for p in change.paths}
    if (
        any(not p.startswith(_TUF_PREFIX) or p.count("/") != 3 for p in change.paths)
        or len(apps) != 1
    ):
        raise ReplayError("a TUF commit changes the files of exactly one TUF app, nothing else")
    (app_dir,) = apps
    for p in sorted(change.deletes):
        if layout.basename(p) != layout.TUF_PENDING_ROOT_FILE:
            raise ReplayError(f"published TUF metadata is never deleted: {p}")
    new_roots: list[tuple[int, str]] = []
    online: list[tuple[str, str]] = []
    for p in sorted(change.writes):
        name = layout.basename(p)
        if name == layout.TUF_PENDING_ROOT_FILE:
            continue  # a draft: the TUF rules check it when it is signed and published
        m = _VERSIONED_RE.match(name)
        if m is None and name != layout.TUF_TIMESTAMP_FILE:
            raise ReplayError(f"unexpected file in a TUF app: {p}")
        if m is not None and before.read(p) is not None:
            raise ReplayError(f"published TUF metadata is never rewritten: {p}")
        if m is not None and m.group(2) == "root":
            new_roots.append((int(m.group(1)), p))
        else:
            online.append((m.group(2) if m is not None else "timestamp", p))
    try:
        previous: Any = None
        existing = _root_versions(before, app_dir)
        if existing:
            raw = before.read(layout.join(app_dir, f"{existing[-1]}.root.json"))
            assert raw is not None
            previous = Metadata[Root].from_bytes(raw).signed
        for version, p in sorted(new_roots):
            if previous is not None and version != previous.version + 1:
                raise ReplayError(f"{p}: root versions must follow {previous.version}")
            md = Metadata[Root].from_bytes(change.writes[p])
            if not isinstance(md.signed, Root):
                raise ReplayError(f"{p} does not hold root metadata")
            if md.signed.version != version:
                raise ReplayError(f"{p} holds root version {md.signed.version}")
            result = md.signed.get_root_verification_result(
                previous, md.signed_bytes, md.signatures
            )
            if not result.verified:
                raise ReplayError(f"{p} is not signed by the root thresholds it needs")
            previous = md.signed
        if online:
            if previous is None:
                raise ReplayError("TUF online metadata published before any root")
            for role, p in online:
                omd: Any = Metadata.from_bytes(change.writes[p])
                if omd.signed.type != role:
                    raise ReplayError(f"{p} holds {omd.signed.type!r} metadata")
                previous.verify_delegate(role, omd.signed_bytes, omd.signatures)
    except ReplayError:
        raise
    except Exception as e:  # python-tuf's parse and verification errors
        raise ReplayError(f"invalid TUF metadata: {' '.join(str(e).split())}") from None


# --- whole histories --------------------------------------------------------------------------------
def _one_line(text: str) -> str:
    return " ".join(text.split()) or "rejected"


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


def _replay(
    repo: pygit2.Repository, chain: list[pygit2.Commit], head: str, *, start: int
) -> VerifyReport:
    for i, commit in enumerate(chain):
        try:
            if not commit.parent_ids and i != 0:
                raise ReplayError("only the first commit may lack a parent")
            verify_commit(repo, commit)
        except AsfaloadError as e:
            reason = _one_line(str(e))
        except Exception as e:  # a corrupt object or a bug: still a failed verification
            reason = f"cannot be replayed: {type(e).__name__}: {_one_line(str(e))}"
        else:
            continue
        bad = BadCommit(str(commit.id), start + i, commit.message.rstrip("\n"), reason)
        return VerifyReport(head, i, bad)
    return VerifyReport(head, len(chain))


def verify_repository(path: str, ref: str = MAIN) -> VerifyReport:
    """Open the bare repository at ``path`` and replay ``ref``."""
    try:
        repo = pygit2.Repository(path)
    except (pygit2.GitError, KeyError) as e:
        raise ReplayError("Not a git repository") from e
    return verify_history(repo, ref)
