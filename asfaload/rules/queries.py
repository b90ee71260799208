"""Read-side questions about a mirror tree: projects, governing signers, pending requests.

All functions are pure over a :class:`~asfaload.rules.tree.TreeView`. The server, the pending
index and the hook ask these; :mod:`asfaload.rules.engine` builds on them.

- :func:`find_project` — the registered project a path belongs to (projects never nest).
- :func:`governing_signers` — the ACTIVE signers file of that project (what governs artifacts,
  revocations and, as the "old" file, signers updates).
- :func:`pending_request` — the open signature request whose subject is a path: its
  :class:`RequestKind` (stored for signers files, never guessed), the files signed together,
  and the signatures collected so far.
- :func:`who_may_sign`, :func:`missing_signers`, :func:`required_signers` (sorted strings),
  :func:`is_request_complete`.
- :func:`file_status` — ``pending`` / ``complete`` / ``revoked`` for a signable file, with the
  complete state RE-VERIFIED against the signers file that governed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from .. import layout
from ..crypto import PublicKey, sha512
from ..errors import (
    AsfaloadError,
    ConflictError,
    NotFoundError,
    RuleViolation,
    ThresholdNotMetError,
)
from ..model import SignaturesFile, SignersFile
from .groups import group_keys, groups_met, valid_signers
from .tree import TreeView

KIND_INITIAL = "initial"
KIND_UPDATE = "update"


class RequestKind(Enum):
    SIGNERS_INITIAL = "signers-initial"
    SIGNERS_UPDATE = "signers-update"
    ARTIFACT = "artifact"
    REVOCATION = "revocation"

    @property
    def is_signers(self) -> bool:
        return self in (RequestKind.SIGNERS_INITIAL, RequestKind.SIGNERS_UPDATE)


class FileStatus(Enum):
    PENDING = "pending"
    COMPLETE = "complete"
    REVOKED = "revoked"


def kind_file_bytes(kind: RequestKind) -> bytes:
    """Content of the ``…asfaload.signers.json.kind`` sidecar for a signers request."""
    if kind is RequestKind.SIGNERS_INITIAL:
        return (KIND_INITIAL + "\n").encode()
    if kind is RequestKind.SIGNERS_UPDATE:
        return (KIND_UPDATE + "\n").encode()
    raise ValueError(f"no kind file for {kind}")


def _parse_kind(raw: bytes | None, path: str) -> RequestKind:
    if raw == kind_file_bytes(RequestKind.SIGNERS_INITIAL):
        return RequestKind.SIGNERS_INITIAL
    if raw == kind_file_bytes(RequestKind.SIGNERS_UPDATE):
        return RequestKind.SIGNERS_UPDATE
    raise RuleViolation(f"Corrupt or missing signers request kind: {path}")


# --- memoised pure functions --------------------------------------------------------------------
# Every operation re-reads the active signers file of its project and, to count completion,
# re-checks the signatures already collected. Both are pure functions of their inputs (bytes in,
# immutable value out), so they are memoised by content: a hit returns exactly what a fresh
# computation would, and the rules stay the same (the writer's per-operation cost does not).


@lru_cache(maxsize=1024)
def parse_signers(raw: bytes) -> SignersFile:
    """:meth:`SignersFile.parse`, memoised by the file's bytes (the result is immutable; a parse
    error is raised again on every call, never cached)."""
    return SignersFile.parse(raw)


@lru_cache(maxsize=4096)
def parse_signatures(raw: bytes) -> SignaturesFile:
    """:meth:`SignaturesFile.from_bytes`, memoised by the file's bytes: the writer reads each
    pending signatures file once per signature, and the first signer of every request reads
    the same empty envelope."""
    return SignaturesFile.from_bytes(raw)


# --- projects and signers -------------------------------------------------------------------------
def is_project_root(view: TreeView, directory: str) -> bool:
    """A registered project dir holds its history file: written by the registration, never
    removed, and never created by anything else."""
    return bool(directory) and view.read(layout.join(directory, layout.HISTORY_FILE)) is not None


def find_project(view: TreeView, path: str) -> str | None:
    """The project dir that ``path`` (a file or dir) belongs to, or None.

    The OUTERMOST registered root wins: registration refuses nested projects, so anything that
    looks like a root deeper down was planted and must not take over.
    """
    layout.check_path(path)
    for d in reversed([path, *layout.ancestors(path)]):
        if is_project_root(view, d):
            return d
    return None


def active_signers(view: TreeView, project: str) -> SignersFile | None:
    raw = view.read(layout.signers_file_path(project))
    return None if raw is None else parse_signers(raw)


def governing_signers(view: TreeView, path: str) -> SignersFile:
    """The active signers file governing ``path``; NotFoundError when there is none.

    Only the signers file at the ROOT of the path's project counts: a signers dir planted
    deeper in the tree changes nothing.
    """
    return _signers_of(view, find_project(view, path), path)


def _signers_of(view: TreeView, project: str | None, path: str) -> SignersFile:
    signers = None if project is None else active_signers(view, project)
    if signers is None:
        raise NotFoundError(
            f"No signers file found for: {path}. Error: No signers file found in parent directories"
        )
    return signers


def governing_signers_path(view: TreeView, path: str) -> str | None:
    project = find_project(view, path)
    if project is None:
        return None
    p = layout.signers_file_path(project)
    return p if view.read(p) is not None else None


def read_signatures(view: TreeView, path: str) -> SignaturesFile:
    """The envelope at ``path``; a missing file reads as empty."""
    raw = view.read(path)
    return SignaturesFile.empty() if raw is None else parse_signatures(raw)


# --- pending requests -------------------------------------------------------------------------
@dataclass(frozen=True)
class PendingRequest:
    """An open signature request. ``files`` are signed together, subject first."""

    kind: RequestKind
    subject: str
    project: str
    files: tuple[str, ...]

    @property
    def pending_signatures_paths(self) -> tuple[str, ...]:
        return tuple(layout.pending_signatures_path(f) for f in self.files)


def _file_not_found(path: str) -> RuleViolation:
    return RuleViolation(f"File not found: {path}")


def pending_request(view: TreeView, subject: str) -> PendingRequest:
    """The open request for ``subject``, or raise why none can take signatures.

    RuleViolation (400) for an unknown file or a file that never had a request (only
    server-created requests take signatures); ConflictError (409) once it is complete or revoked.
    """
    layout.check_path(subject)
    if view.read(subject) is None:
        raise _file_not_found(subject)
    project = find_project(view, subject)
    if project is None:
        raise RuleViolation(f"No pending signature request for {subject}")

    located = layout.signers_project_of(subject)
    if located is not None:
        sp, pending = located
        name = layout.basename(subject)
        if sp != project:
            raise RuleViolation(f"No pending signature request for {subject}")
        if name == layout.METADATA_FILE:
            raise RuleViolation(
                f"Sign the signers file {layout.join(layout.parent(subject), layout.SIGNERS_FILE)};"
                " its metadata is signed with it"
            )
        if name != layout.SIGNERS_FILE:
            raise RuleViolation(f"No pending signature request for {subject}")
        if not pending:
            raise ConflictError("Signature already complete: Cannot accept additional signatures")
        kind = _parse_kind(view.read(layout.kind_path(project, pending=True)), subject)
        files = (subject, layout.metadata_path(project, pending=True))
        for f in files:
            if view.read(layout.pending_signatures_path(f)) is None:
                raise RuleViolation(f"No pending signature request for {f}")
        return PendingRequest(kind, subject, project, files)
    if layout.in_signers_dir(subject):
        raise RuleViolation(f"No pending signature request for {subject}")

    if layout.is_pending_revocation(subject):
        if view.read(layout.pending_signatures_path(subject)) is None:
            raise RuleViolation(f"No pending signature request for {subject}")
        return PendingRequest(RequestKind.REVOCATION, subject, project, (subject,))

    if view.read(layout.revocation_path(subject)) is not None:
        raise ConflictError("File is revoked: Cannot sign a revoked file")
    if view.read(layout.signatures_path(subject)) is not None:
        raise ConflictError("Signature already complete: Cannot accept additional signatures")
    if view.read(layout.pending_signatures_path(subject)) is None:
        raise RuleViolation(f"No pending signature request for {subject}")
    return PendingRequest(RequestKind.ARTIFACT, subject, project, (subject,))


def request_signers(view: TreeView, req: PendingRequest) -> tuple[SignersFile, SignersFile | None]:
    """``(governing, new)``: for a signers request ``governing`` is the OLD (active) file, or the
    new file itself for an initial registration; ``new`` is the proposed file (else None)."""
    if req.kind.is_signers:
        raw = view.read(req.subject)
        assert raw is not None
        new = parse_signers(raw)
        if req.kind is RequestKind.SIGNERS_INITIAL:
            return new, new
        old = active_signers(view, req.project)
        if old is None:
            raise RuleViolation(f"Signers update for {req.project} has no active signers file")
        return old, new
    # req.project is find_project(view, req.subject), found by pending_request.
    return _signers_of(view, req.project, req.subject), None


def authorised_keys(
    kind: RequestKind, old: SignersFile, new: SignersFile | None
) -> frozenset[PublicKey]:
    """Who may sign a request of ``kind`` (``docs/formats.md``, "Who signs what")."""
    if kind is RequestKind.ARTIFACT:
        return group_keys(old.artifact_groups())
    if kind is RequestKind.REVOCATION:
        return group_keys(old.revocation_groups())
    assert new is not None
    if kind is RequestKind.SIGNERS_INITIAL:
        return new.all_signer_keys()
    return (
        group_keys(old.admin_groups())
        | group_keys(old.master_groups())
        | group_keys(new.admin_groups())
        | group_keys(new.master_groups())
        | (new.all_signer_keys() - old.all_signer_keys())
    )


def completion_met(
    kind: RequestKind, old: SignersFile, new: SignersFile | None, signed: frozenset[PublicKey]
) -> bool:
    """The completion predicate (``docs/formats.md``, "Who signs what"); ``signed`` are the
    distinct keys with valid signatures on EVERY file of the request."""
    if kind is RequestKind.ARTIFACT:
        return groups_met(old.artifact_groups(), signed)
    if kind is RequestKind.REVOCATION:
        return groups_met(old.revocation_groups(), signed)
    assert new is not None
    if kind is RequestKind.SIGNERS_INITIAL:
        return new.all_signer_keys() <= signed
    old_ok = groups_met(old.admin_groups(), signed) or groups_met(old.master_groups(), signed)
    new_ok = groups_met(new.admin_groups(), signed) or groups_met(new.master_groups(), signed)
    added = new.all_signer_keys() - old.all_signer_keys()
    return old_ok and new_ok and added <= signed


def signed_keys(
    view: TreeView, files: tuple[str, ...], sigs: tuple[SignaturesFile, ...]
) -> frozenset[PublicKey]:
    """Keys whose signatures verify on every one of ``files`` (envelopes aligned with files)."""
    result: frozenset[PublicKey] | None = None
    for f, s in zip(files, sigs, strict=True):
        raw = view.read(f)
        if raw is None:
            return frozenset()
        keys = valid_signers(s, sha512(raw))
        result = keys if result is None else result & keys
    return result or frozenset()


def collected(view: TreeView, req: PendingRequest) -> tuple[SignaturesFile, ...]:
    return tuple(read_signatures(view, p) for p in req.pending_signatures_paths)


def who_may_sign(view: TreeView, subject: str) -> frozenset[PublicKey]:
    """Keys authorised to sign the pending request of ``subject`` (raises if none is open)."""
    req = pending_request(view, subject)
    old, new = request_signers(view, req)
    return authorised_keys(req.kind, old, new)


def is_request_complete(view: TreeView, req: PendingRequest) -> bool:
    old, new = request_signers(view, req)
    return completion_met(req.kind, old, new, signed_keys(view, req.files, collected(view, req)))


def missing_signers(view: TreeView, subject: str) -> frozenset[PublicKey]:
    """Authorised keys that have not signed yet; empty when the request is already satisfied,
    complete, or absent."""
    try:
        req = pending_request(view, subject)
    except AsfaloadError:
        return frozenset()
    old, new = request_signers(view, req)
    signed = signed_keys(view, req.files, collected(view, req))
    if completion_met(req.kind, old, new, signed):
        return frozenset()
    return authorised_keys(req.kind, old, new) - signed


def required_signers(view: TreeView, subject: str) -> list[str]:
    """:func:`missing_signers` as sorted key strings (stable API output)."""
    return sorted(str(k) for k in missing_signers(view, subject))


def can_sign(view: TreeView, subject: str, key: PublicKey) -> bool:
    """True when ``key`` is authorised for the open request of ``subject`` and has not signed."""
    try:
        req = pending_request(view, subject)
    except AsfaloadError:
        return False
    old, new = request_signers(view, req)
    if key not in authorised_keys(req.kind, old, new):
        return False
    return all(key not in s for s in collected(view, req))


# --- status of a signable file -----------------------------------------------------------------
def file_status(view: TreeView, path: str) -> FileStatus:
    """``pending`` / ``complete`` / ``revoked`` for ``path``; NotFoundError if it is not a signed
    or pending file. A complete artifact is re-verified against ITS local signers copy, a complete
    signers file against its stored kind (initial, or update of the last history entry); a
    complete file that does not satisfy its rules raises ThresholdNotMetError."""
    layout.check_path(path)
    if view.read(path) is None:
        raise NotFoundError(f"File not found: {path}")
    located = layout.signers_project_of(path)
    if located is not None and layout.basename(path) == layout.SIGNERS_FILE:
        project, pending = located
        if pending:
            return FileStatus.PENDING
        _verify_active_signers(view, project)
        return FileStatus.COMPLETE
    if layout.is_pending_revocation(path):
        return FileStatus.PENDING
    if view.read(layout.revocation_path(path)) is not None:
        return FileStatus.REVOKED
    complete = view.read(layout.signatures_path(path))
    if complete is not None:
        _verify_complete_artifact(view, path, SignaturesFile.from_bytes(complete))
        return FileStatus.COMPLETE
    if view.read(layout.pending_signatures_path(path)) is not None:
        return FileStatus.PENDING
    raise NotFoundError(f"No signatures for: {path}")


def _verify_complete_artifact(view: TreeView, path: str, sigs: SignaturesFile) -> None:
    local = view.read(layout.local_signers_path(path))
    if local is None:
        raise ThresholdNotMetError(f"Complete file has no local signers copy: {path}")
    signers = parse_signers(local)
    raw = view.read(path)
    assert raw is not None
    # A finalised revocation document is governed by the revocation groups of its copy.
    is_revocation = layout.is_revocation(path)
    groups = signers.revocation_groups() if is_revocation else signers.artifact_groups()
    if not groups_met(groups, valid_signers(sigs, sha512(raw))):
        raise ThresholdNotMetError(
            f"Complete signature file according to name is not complete according to signatures: {path}"
        )


def active_signers_request(
    view: TreeView, project: str
) -> tuple[RequestKind, SignersFile, SignersFile, frozenset[PublicKey]]:
    """``(kind, old, new, signed)`` of the request that activated ``project``'s signers file:
    its stored kind, the file it was judged against (itself for an initial registration, the
    last history entry for an update), the file, and the keys whose signatures verify on both
    the file and its metadata. ThresholdNotMetError when an update has no history entry to be
    judged against."""
    from .history import last_history_signers

    files = (layout.signers_file_path(project), layout.metadata_path(project))
    sigs = tuple(read_signatures(view, layout.signatures_path(f)) for f in files)
    signed = signed_keys(view, files, sigs)
    kind = _parse_kind(view.read(layout.kind_path(project)), files[0])
    raw = view.read(files[0])
    assert raw is not None
    new = parse_signers(raw)
    old = new if kind is RequestKind.SIGNERS_INITIAL else last_history_signers(view, project)
    if old is None:
        raise ThresholdNotMetError(
            f"Active signers file of {project} is not complete according to its signatures"
        )
    return kind, old, new, signed


def _verify_active_signers(view: TreeView, project: str) -> None:
    kind, old, new, signed = active_signers_request(view, project)
    if not completion_met(kind, old, new, signed):
        raise ThresholdNotMetError(
            f"Active signers file of {project} is not complete according to its signatures"
        )
