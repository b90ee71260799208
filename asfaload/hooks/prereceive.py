"""The pre-receive hook: a push lands only if the rules engine derives every pushed commit.

Signers may push two kinds of commits to ``main`` (DESIGN "Shape"):

- their signatures for one pending request (signers file + metadata, release index, pending
  revocation), together with the completion transition those signatures trigger;
- the initiation of a revocation: a signed revocation document (finalised in the same commit
  when the revocation threshold is 1).

For each new commit, in order, the operation is inferred from the diff against its parent, the
rules engine computes ``apply(parent_tree, op, committer_time)``, and the pushed tree must be
EXACTLY that change (and the message the change's message). Registrations, releases and anything
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
from ..crypto import PublicKey, Signature
from ..errors import AsfaloadError, FormatError
from ..model import SignaturesFile
from ..rules import queries
from ..rules.engine import apply
from ..rules.ops import AddSignatures, Op, Revoke
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
    op = infer_operation(before, after, changes)
    expected = apply(before, op, when)
    _compare(before, after, changes, expected)
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


def _compare(
    before: TreeView, after: TreeView, changes: list[PathChange], expected: Change
) -> None:
    derived = {p for p, data in expected.writes.items() if before.read(p) != data}
    derived |= {p for p in expected.deletes if before.read(p) is not None}
    pushed = {c.path for c in changes}
    extra = sorted(pushed - derived)
    if extra:
        raise PushRejected(f"{extra[0]} is changed, but the rules do not change it")
    missing = sorted(derived - pushed)
    if missing:
        raise PushRejected(f"{missing[0]} must change as the rules derive, but does not")
    for p, data in expected.writes.items():
        if after.read(p) != data:
            raise PushRejected(f"{p} differs from what the rules derive")
    for p in expected.deletes:
        if after.read(p) is not None:
            raise PushRejected(f"{p} must be deleted")


# --- inferring the operation --------------------------------------------------------------------
NOT_ALLOWED = (
    "only signatures for a pending request, or a signed revocation, can be pushed"
    " (registrations, releases and other changes go through the server)"
)


def infer_operation(before: TreeView, after: TreeView, changes: list[PathChange]) -> Op:
    """The single operation a pushed diff claims to be: a Revoke or an AddSignatures.

    A wrong guess cannot let anything through: the caller checks the pushed tree against what
    the rules derive for the guessed operation.
    """
    revoked = _revocation_subjects(before, changes)
    if len(revoked) > 1:
        raise PushRejected("one revocation per commit")
    if revoked:
        return _infer_revoke(after, revoked.pop())
    return _infer_signatures(before, after, changes)


def _revocation_subjects(before: TreeView, changes: list[PathChange]) -> set[str]:
    subjects: set[str] = set()
    for c in changes:
        if c.old is not None or c.new is None:
            continue
        if layout.is_pending_revocation(c.path):
            subjects.add(layout.subject_of_pending_revocation(c.path))
        elif c.path.endswith(layout.REVOCATION_SUFFIX):
            a = c.path[: -len(layout.REVOCATION_SUFFIX)]
            # Finalised in one step (threshold 1) only if nothing was pending before; otherwise
            # this is the completion of a pending revocation by a co-signature.
            if a and before.read(layout.pending_revocation_path(a)) is None:
                subjects.add(a)
    return subjects


def _single_entry(raw: bytes | None, what: str) -> tuple[PublicKey, Signature]:
    if raw is None:
        raise PushRejected(f"missing signatures for {what}")
    env = SignaturesFile.from_bytes(raw)
    if len(env.entries) != 1:
        raise PushRejected(f"a new revocation carries exactly one signature ({what})")
    ((key, sig),) = env.entries.items()
    return key, sig


def _infer_revoke(after: TreeView, subject: str) -> Revoke:
    pending = layout.pending_revocation_path(subject)
    document = after.read(pending)
    envelope = after.read(layout.pending_signatures_path(pending))
    if document is None:  # finalised at threshold 1
        document = after.read(layout.revocation_path(subject))
        envelope = after.read(layout.revocation_signatures_path(subject))
    if document is None:
        raise PushRejected(f"missing revocation document for {subject}")
    key, sig = _single_entry(envelope, subject)
    return Revoke(subject=subject, document=document, signature=sig, submitter=key)


def _request_of(before: TreeView, path: str) -> queries.PendingRequest | None:
    """The pending request the pending-signatures file ``path`` belongs to, if any."""
    try:
        f = layout.subject_of_pending_signatures(path)
    except FormatError:
        return None
    candidates = [f]
    if layout.basename(f) == layout.METADATA_FILE:
        candidates.append(layout.join(layout.parent(f), layout.SIGNERS_FILE))
    for subject in candidates:
        try:
            return queries.pending_request(before, subject)
        except AsfaloadError:
            continue
    return None


def _completed_locations(req: queries.PendingRequest, f: str) -> list[str]:
    """Where the signatures of ``f`` live after the request completes."""
    if req.kind.is_signers:
        return [
            layout.signatures_path(layout.join(layout.signers_dir(req.project), layout.basename(f)))
        ]
    if req.kind is queries.RequestKind.REVOCATION:
        return [layout.revocation_signatures_path(layout.subject_of_pending_revocation(f))]
    return [layout.signatures_path(f)]


def _infer_signatures(
    before: TreeView, after: TreeView, changes: list[PathChange]
) -> AddSignatures:
    requests: dict[str, queries.PendingRequest] = {}
    for c in changes:
        if c.old is None or not c.path.endswith(layout.PENDING_SIGNATURES_SUFFIX):
            continue
        req = _request_of(before, c.path)
        if req is not None:
            requests[req.subject] = req
    if not requests:
        raise PushRejected(NOT_ALLOWED)
    if len(requests) > 1:
        raise PushRejected("signatures for one pending request per commit")
    (req,) = requests.values()
    submitter: PublicKey | None = None
    signatures: dict[str, Signature] = {}
    for f in req.files:
        old_raw = before.read(layout.pending_signatures_path(f))
        old = SignaturesFile.empty() if old_raw is None else SignaturesFile.from_bytes(old_raw)
        new_raw = None
        for loc in [layout.pending_signatures_path(f), *_completed_locations(req, f)]:
            new_raw = after.read(loc)
            if new_raw is not None:
                break
        if new_raw is None:
            raise PushRejected(f"the signatures of {f} are gone")
        added = {
            k: s
            for k, s in SignaturesFile.from_bytes(new_raw).entries.items()
            if k not in old.entries
        }
        if len(added) != 1:
            raise PushRejected(f"a commit adds exactly one key's signature to {f}")
        ((key, sig),) = added.items()
        if submitter is not None and key != submitter:
            raise PushRejected("all signatures of a commit must come from one key")
        submitter = key
        signatures[f] = sig
    assert submitter is not None
    return AddSignatures(subject=req.subject, submitter=submitter, signatures=signatures)


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
