"""The one commit check: a commit is accepted only if its tree IS the tree the rules derive.

The pre-receive hook (a signer's ``git push``), ``mirror verify`` (a replay of all history) and
``mirror sync`` (a read-only mirror taking a primary's new commits) all judge a commit here:

1. the commit has one parent (the root commit of a mirror holds the empty tree), a committer
   time not before its parent's (and, for a push, not ahead of the server's clock);
2. the files it changes are plain files at valid paths (no symlinks, submodules, executables;
   under the size cap of a push);
3. the operation is inferred from those files (:func:`infer_any_operation`; a push may only
   sign or revoke, :func:`asfaload.rules.push.infer_operation`) and the rules engine derives
   its change at the commit's committer time;
4. the parent's tree with that change applied must have the same tree **id** as the commit.
   Comparing ids, not file lists, is what refuses entries no file diff shows: an empty
   directory planted at a project id, at a pending signers directory or at a revocation path
   would otherwise block those paths for good.

The commit message is not state: plain git may write any message. TUF commits (under
``tuf/``) cannot be re-derived (their online roles are signed with private keys), so replay
checks them for what a TUF client relies on (:mod:`.tuf_commits`); a push never carries one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cache

import pygit2
from pygit2.enums import FileMode

from .. import layout
from ..crypto import PublicKey, SecretKey
from ..errors import AsfaloadError, CommitRefused
from ..rules import queries
from ..rules.engine import apply
from ..rules.groups import group_keys
from ..rules.ops import Op, ProposeUpdate, Register, RegisterRelease
from ..rules.push import compare_change, infer_operation
from ..rules.tree import Change, TreeView
from ..store.gittree import diff_trees
from ..store.objects.fast.trees import TreeEditor
from .tuf_commits import check_tuf_change, is_tuf_change

__all__ = [
    "CommitChecker",
    "CommitRefused",
    "Door",
    "infer_any_operation",
]


class Door(Enum):
    """Which operations a commit may carry: a signer's push, or anything the mirror records."""

    PUSH = "push"
    REPLAY = "replay"


# The largest file a replayed commit may write. The server writes only small files (request
# bodies and forge files are capped well below it); the cap keeps a hostile upstream's huge
# blob from being inflated in memory.
REPLAY_FILE_CAP = 16 << 20
# The largest commit a signer may push: headers and a message, never state.
MAX_PUSHED_COMMIT_BYTES = 64 << 10

_TYPE_NAMES = {
    int(pygit2.enums.ObjectType.TREE): b"tree",
    int(pygit2.enums.ObjectType.BLOB): b"blob",
}


class _DerivedObjects:
    """Objects of the derived trees, hashed as git would and kept in memory: checking a commit
    never writes into the repository it checks (a refused push's quarantine, a mirror being
    verified), and objects equal to the commit's already exist there when it matches."""

    def __init__(self, odb: pygit2.Odb) -> None:
        self._odb = odb
        self._new: dict[bytes, tuple[int, bytes]] = {}

    def read(self, oid: pygit2.Oid) -> tuple[int, bytes]:
        hit = self._new.get(oid.raw)
        if hit is not None:
            return hit
        kind, data = self._odb.read(oid)
        return int(kind), bytes(data)

    def write(self, kind: int, data: bytes) -> pygit2.Oid:
        header = _TYPE_NAMES[kind] + b" " + str(len(data)).encode() + b"\0"
        oid = pygit2.Oid(raw=hashlib.sha1(header + data).digest())
        self._new[oid.raw] = (kind, data)
        return oid

    def written(self) -> frozenset[bytes]:
        return frozenset(self._new)

    def forget(self) -> None:
        self._new.clear()


@dataclass(frozen=True)
class CheckedCommit:
    """A commit that passed: the change it makes (the derived change, with its canonical
    message), the operation the rules derived it from (None for the root and TUF commits), and
    the raw ids of the trees and blobs its tree has that its parent's has not (what a push of
    it must carry, and all it may carry besides the commit)."""

    change: Change
    op: Op | None
    objects: frozenset[bytes] = frozenset()


class CommitChecker:
    """Checks commits of one repository; keeps the parsed trees between commits (a replay or a
    push checks consecutive commits that share most directories)."""

    def __init__(
        self,
        repo: pygit2.Repository,
        door: Door,
        *,
        size_cap: int | None = None,
        latest: int | None = None,
    ) -> None:
        self._repo = repo
        self._door = door
        self._size_cap = size_cap
        self._latest = latest
        self._objects = _DerivedObjects(repo.odb)
        self._editor = TreeEditor(self._objects.read, self._objects.write)

    def check(self, commit: pygit2.Commit) -> CheckedCommit:
        """The commit's change when the rules derive exactly its tree; else CommitRefused (or
        the rules engine's own AsfaloadError) with a one-line reason."""
        try:
            return self._check(commit)
        finally:
            self._objects.forget()

    def _check(self, commit: pygit2.Commit) -> CheckedCommit:
        if not commit.parent_ids:
            if self._door is Door.PUSH:
                raise CommitRefused("a pushed commit must have a parent")
            if len(commit.tree) != 0:
                raise CommitRefused("the root commit must hold the empty tree")
            return CheckedCommit(Change(commit.message.rstrip("\n")), None)
        if len(commit.parent_ids) != 1:
            raise CommitRefused("merge commits are not allowed")
        if self._door is Door.PUSH:
            _, size = self._repo.odb.read_header(commit.id)
            if size > MAX_PUSHED_COMMIT_BYTES:
                raise CommitRefused(
                    f"the commit object is {size} bytes, over the {MAX_PUSHED_COMMIT_BYTES}-byte "
                    "limit (its message stays in every clone for good)"
                )
        parent = commit.parents[0]
        when = commit.commit_time
        if when < parent.commit_time:
            raise CommitRefused("committer time is earlier than its parent's")
        if self._latest is not None and when > self._latest:
            raise CommitRefused("committer time is in the future")
        change = self._files_changed(parent.tree, commit.tree)
        # The editor's view: its parsed trees and blobs are the ones the previous commit's
        # derivation left (a replay's parent is the tree derived one commit before).
        before = self._editor.view(parent.tree.id)
        op: Op | None = None
        if self._door is Door.REPLAY and is_tuf_change(change):
            check_tuf_change(before, change)
            expected = change
        else:
            try:
                op = (
                    infer_operation(before, change)
                    if self._door is Door.PUSH
                    else infer_any_operation(before, change)
                )
            except AsfaloadError as e:
                paths = sorted(change.paths)
                shown = ", ".join(paths[:3]) + (", …" if len(paths) > 3 else "")
                raise CommitRefused(f"no allowed operation makes this change ({shown}): {e}") from e
            except (ValueError, KeyError) as e:  # a hostile change: never a traceback
                raise CommitRefused(f"no allowed operation makes this change: {e}") from None
            expected = apply(before, op, when)
            compare_change(expected, change)
        derived = self._editor.apply(parent.tree.id, expected)
        if derived != commit.tree.id:
            where = self._first_difference(derived, commit.tree.id, "")
            raise CommitRefused(
                f"the commit's tree is not the tree the rules derive: {where} "
                "is not part of it (empty directories and other entries are refused)"
            )
        return CheckedCommit(expected, op, self._objects.written())

    def _files_changed(self, old: pygit2.Tree, new: pygit2.Tree) -> Change:
        writes: dict[str, bytes] = {}
        deletes: set[str] = set()
        for c in diff_trees(self._repo, old, new):
            try:
                layout.check_path(c.path)
            except AsfaloadError as e:
                raise CommitRefused(f"invalid path {c.path[:200]!r}") from e
            if c.new is None:
                deletes.add(c.path)
                continue
            if c.mode == FileMode.LINK:
                raise CommitRefused(f"symlinks are not allowed: {c.path}")
            if c.mode == FileMode.COMMIT:
                raise CommitRefused(f"submodules are not allowed: {c.path}")
            if c.mode != FileMode.BLOB:
                raise CommitRefused(f"only regular non-executable files are allowed: {c.path}")
            oid = pygit2.Oid(hex=c.new)
            # The size from the object's header, before its content is inflated: a hostile
            # upstream's blob may be gigabytes that a few KiB of pack describe.
            _, size = self._repo.odb.read_header(oid)
            cap = self._size_cap if self._size_cap is not None else REPLAY_FILE_CAP
            if size > cap:
                raise CommitRefused(f"{c.path} is {size} bytes, over the {cap}-byte limit")
            writes[c.path] = self._repo[oid].peel(pygit2.Blob).data
        if not writes and not deletes:
            if old.id == new.id:
                raise CommitRefused("the commit changes nothing")
            raise CommitRefused(
                "the commit changes no file (empty directories and other entries are refused)"
            )
        try:
            return Change("", writes, frozenset(deletes))
        except ValueError as e:
            raise CommitRefused(f"inexact change: {e}") from e

    def _first_difference(self, derived: pygit2.Oid, actual: pygit2.Oid, prefix: str) -> str:
        """The first path at which two trees differ (for the one-line reason)."""
        dkeys, dentries = self._editor.parsed(derived)
        akeys, aentries = self._editor.parsed(actual)
        d = dict(zip(dkeys, dentries, strict=True))
        a = dict(zip(akeys, aentries, strict=True))
        for key in sorted(d.keys() | a.keys()):
            if d.get(key) == a.get(key):
                continue
            path = prefix + key.rstrip(b"/").decode(errors="replace")
            mine, theirs = d.get(key), a.get(key)
            if key.endswith(b"/") and mine is not None and theirs is not None:
                return self._first_difference(
                    pygit2.Oid(raw=mine[-20:]), pygit2.Oid(raw=theirs[-20:]), path + "/"
                )
            if key.endswith(b"/") and theirs is not None:
                return self._first_leaf(pygit2.Oid(raw=theirs[-20:]), path)
            return repr(path[:200])
        return "the root"

    def _first_leaf(self, tree: pygit2.Oid, path: str) -> str:
        """The first entry that is no directory, or the first empty directory, beneath ``tree``
        (the entry a hostile commit added where the rules add nothing)."""
        while len(path) < 200:  # a hostile tree may be deep; the reason shows 200 characters
            keys, entries = self._editor.parsed(tree)
            if not keys or not keys[0].endswith(b"/"):
                break
            path = path + "/" + keys[0].rstrip(b"/").decode(errors="replace")
            tree = pygit2.Oid(raw=entries[0][-20:])
        return repr(path[:200])


# --- inferring any operation of the mirror --------------------------------------------------------
# Server-only operations (registration, signers update proposal, release registration) are
# recognised by the file they create. The mirror records no submitter for them, so replay checks
# them with a key the rules would accept if one exists: it proves that SOME authorised key could
# have made the commit, not which one did.


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
            return _infer_register(change, layout.parent(path))
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
        raise CommitRefused(f"{path} must be written by this operation, but is not")
    return data


def _infer_register(change: Change, project: str) -> Register:
    from ..model import SignersFile

    signers = _written(change, layout.signers_file_path(project, pending=True))
    metadata = _written(change, layout.metadata_path(project, pending=True))
    keys = SignersFile.parse(signers).all_signer_keys()
    return Register(project, signers, metadata, _pick(keys))


def _infer_update(before: TreeView, change: Change, project: str) -> ProposeUpdate:
    from ..model import SignersFile

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
