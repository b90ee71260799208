"""``apply(view, op, now) -> Change``: the one function that decides every change to the mirror.

Pure and deterministic: the result depends only on the tree ``view`` before the operation, the
operation, and ``now`` (Unix seconds, the committer time of the commit the change becomes; the
only clock — e.g. a history entry's ``obsoleted_at``). The pre-receive hook re-derives a pushed
commit by calling ``apply(parent_tree, op, commit_time)`` and comparing.

Rejections raise (never return a partial change):

- :class:`~asfaload.errors.RuleViolation` (400): bad input, unknown file, no pending request,
  invalid signature, wrong initiator or digest…
- :class:`~asfaload.errors.NotAuthorizedError` (403): the key may not do this.
- :class:`~asfaload.errors.ConflictError` (409): already registered / pending / complete /
  signed by this key / release exists / not fully signed (revoke).
- :class:`~asfaload.errors.NotFoundError` (404): revoking a file that does not exist.
- :class:`~asfaload.errors.FormatError` (400): signers file, metadata, index or revocation
  document bytes that do not parse.

Completion transitions are part of the change of the signature that triggers them:

- artifact: ``X.signatures.json.pending`` -> ``X.signatures.json`` + ``X.signers.json`` (copy of
  the active signers file);
- signers request (both the signers file and its metadata signed): the pending dir becomes the
  active dir (every file renamed, pending suffixes dropped); an update first appends the old
  active file, its metadata and both signature envelopes (raw bytes) to the history with
  ``obsoleted_at = now`` and removes the old active dir;
- revocation: ``A.revocation.json.pending`` (+ its signatures) -> ``A.revocation.json`` (+
  ``.signatures.json``), ``A.revocation.json.signers.json`` (copy of the active signers file),
  ``A.signatures.json`` -> ``A.signatures.json.revoked``. Irreversible: nothing ever deletes
  these files, and a revoked file takes no signatures and no second revocation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import layout
from ..crypto import PublicKey, Signature, sha512
from ..errors import (
    ConflictError,
    NotAuthorizedError,
    NotFoundError,
    RuleViolation,
)
from ..model import SignaturesFile, SignersFile
from . import history as hist
from .groups import group_keys, signature_is_valid
from .queries import (
    PendingRequest,
    RequestKind,
    active_signers,
    authorised_keys,
    collected,
    completion_met,
    find_project,
    is_project_root,
    kind_file_bytes,
    pending_request,
    request_signers,
    signed_keys,
)
from .tree import Change, OverlayTree, TreeView

if TYPE_CHECKING:  # the operations call this module's transitions; it never imports them
    from .ops import AddSignatures, Op, ProposeUpdate, Register, RegisterRelease, Revoke

# How far a revocation document's timestamp may run ahead of the commit time.
REVOCATION_CLOCK_SKEW = 600


def apply(view: TreeView, op: Op, now: int) -> Change:
    """The exact change ``op`` makes to ``view`` at commit time ``now``, or raise why not."""
    if isinstance(now, bool) or not isinstance(now, int) or now < 0:
        raise RuleViolation(f"Invalid commit time: {now!r}")
    transition = getattr(op, "transition", None)
    if transition is None:
        raise RuleViolation(f"Unknown operation: {type(op).__name__}")
    change: Change = transition(view, now)
    return _net(view, change)


def _net(view: TreeView, change: Change) -> Change:
    """The net effect on ``view``: a file created and consumed within one operation (a pending
    revocation finalised at once) disappears, and writes that change nothing are dropped, so the
    change is exactly the diff between the tree before and the tree after."""
    writes = {p: d for p, d in change.writes.items() if view.read(p) != d}
    deletes = frozenset(p for p in change.deletes if view.read(p) is not None)
    return Change(change.message, writes, deletes)


# --- signers requests ---------------------------------------------------------------------------
def _open_signers_request(
    project: str, signers: bytes, metadata: bytes, kind: RequestKind
) -> dict[str, bytes]:
    empty = SignaturesFile.empty().to_bytes()
    sf = layout.signers_file_path(project, pending=True)
    md = layout.metadata_path(project, pending=True)
    return {
        sf: signers,
        md: metadata,
        layout.kind_path(project, pending=True): kind_file_bytes(kind),
        layout.pending_signatures_path(sf): empty,
        layout.pending_signatures_path(md): empty,
    }


# The check_*_target functions are the checks that need no submitted content: the engine runs
# them first, and the service runs the same ones before it fetches anything from a forge.
def check_register_target(view: TreeView, project_id: str) -> None:
    """``project_id`` may be registered: nothing there yet, and not inside a registered project."""
    if view.read(project_id) is not None or view.is_dir(project_id):
        raise ConflictError(
            f"Project '{project_id}' is already registered or registration is in progress."
        )
    for anc in layout.ancestors(project_id):
        if anc and (view.read(anc) is not None or is_project_root(view, anc)):
            # Projects never nest: one root governs every path.
            raise ConflictError(
                f"Project '{project_id}' lies inside the registered project '{anc}'."
            )


def derive_register(view: TreeView, op: Register) -> Change:
    p = op.project_id
    check_register_target(view, p)
    new = SignersFile.parse(op.signers)
    hist.check_metadata(op.metadata, op.signers)
    if op.submitter not in new.all_signer_keys():
        raise NotAuthorizedError(
            "Invalid signer: The provided public key is not in the signers file"
        )
    writes = _open_signers_request(p, op.signers, op.metadata, RequestKind.SIGNERS_INITIAL)
    writes[layout.history_path(p)] = hist.empty_history_bytes()
    return Change(f"register {p}", writes)


def check_update_target(view: TreeView, project_id: str, submitter: PublicKey) -> SignersFile:
    """``submitter`` may propose a signers update for ``project_id`` now; returns the active file."""
    if not is_project_root(view, project_id):
        raise RuleViolation(f"Project '{project_id}' is not registered. Register the repo first.")
    old = active_signers(view, project_id)
    if old is None:
        raise RuleViolation(
            f"Project '{project_id}' has no active signers file. Complete initial registration first."
        )
    if view.is_dir(layout.signers_dir(project_id, pending=True)):
        raise ConflictError(
            f"A signers update is already pending for '{project_id}'. Sign it instead."
        )
    if submitter not in group_keys(old.admin_groups()) | group_keys(old.master_groups()):
        raise NotAuthorizedError(
            "Invalid signer: The provided public key is not in the required groups of current "
            "config for signers update"
        )
    return old


def derive_propose_update(view: TreeView, op: ProposeUpdate) -> Change:
    p = op.project_id
    old = check_update_target(view, p, op.submitter)
    new = SignersFile.parse(op.signers)
    hist.check_metadata(op.metadata, op.signers)
    if new.timestamp_dt <= old.timestamp_dt:
        raise RuleViolation(
            "Invalid data: Timestamp of update is smaller than active signers file's: "
            f"update:{new.timestamp} <= active:{old.timestamp}"
        )
    writes = _open_signers_request(p, op.signers, op.metadata, RequestKind.SIGNERS_UPDATE)
    return Change(f"propose signers update for {p}", writes)


def _activate(view: TreeView, req: PendingRequest, now: int) -> Change:
    """The pending signers dir becomes the active one (view = tree with the new signatures)."""
    p = req.project
    pending_dir = layout.signers_dir(p, pending=True)
    active_dir = layout.signers_dir(p)
    deletes: set[str] = set()
    writes: dict[str, bytes] = {}
    if req.kind is RequestKind.SIGNERS_UPDATE:
        entry = hist.entry_from_active(view, p, now)
        writes[layout.history_path(p)] = hist.append(view.read(layout.history_path(p)), entry)
        deletes |= _files_under(view, active_dir)
    for path in sorted(_files_under(view, pending_dir)):
        data = view.read(path)
        assert data is not None
        name = path[len(pending_dir) + 1 :]
        if name.endswith(layout.PENDING_SIGNATURES_SUFFIX):
            name = name[: -len(layout.PENDING_SUFFIX)]
        deletes.add(path)
        writes[layout.join(active_dir, name)] = data
    return Change(f"activate signers of {p}", writes, frozenset(deletes - set(writes)))


def _files_under(view: TreeView, directory: str) -> set[str]:
    out: set[str] = set()
    for name in view.listdir(directory):
        path = layout.join(directory, name)
        if view.read(path) is not None:
            out.add(path)
        else:
            out |= _files_under(view, path)
    return out


# --- releases ---------------------------------------------------------------------------------------
def check_release_target(view: TreeView, index_path: str, submitter: PublicKey) -> None:
    """``submitter`` may register a release index at ``index_path`` now."""
    if layout.basename(index_path) != layout.INDEX_FILE or layout.in_signers_dir(index_path):
        raise RuleViolation(f"Invalid release index path: {index_path}")
    project = find_project(view, layout.parent(index_path))
    if project is None:
        raise RuleViolation(f"No registered project for {index_path}")
    signers = active_signers(view, project)
    if signers is None:
        raise RuleViolation("No active signers file found for repository")
    if submitter not in signers.all_signer_keys():
        raise NotAuthorizedError("Public key is not a signer of this project")
    related = (
        index_path,
        layout.pending_signatures_path(index_path),
        layout.signatures_path(index_path),
        layout.local_signers_path(index_path),
        layout.revocation_path(index_path),
        layout.pending_revocation_path(index_path),
    )
    if any(view.read(r) is not None or view.is_dir(r) for r in related):
        # Never overwrite: re-registering would wipe collected signatures.
        raise ConflictError("Release already registered: Release already registered")


def derive_register_release(view: TreeView, op: RegisterRelease) -> Change:
    x = op.index_path
    check_release_target(view, x, op.submitter)
    hist.check_index(op.index)
    writes = {x: op.index, layout.pending_signatures_path(x): SignaturesFile.empty().to_bytes()}
    return Change(f"register release {x}", writes)


# --- signatures -------------------------------------------------------------------------------------
def _verify(pk: PublicKey, data: bytes, sig: Signature, path: str) -> None:
    if not signature_is_valid(pk, sha512(data), sig):
        # 400 without any server path.
        raise RuleViolation(f"Invalid signature for {path}")


def derive_add_signatures(view: TreeView, op: AddSignatures, now: int) -> Change:
    req = pending_request(view, op.subject)
    expected, given = set(req.files), set(op.signatures)
    for f in req.files:
        if f not in given:
            raise RuleViolation(f"No signature provided for {f}")
    if given - expected:
        extra = sorted(given - expected)[0]
        raise RuleViolation(f"Unexpected signature for {extra} (not part of {req.subject})")
    old, new = request_signers(view, req)
    if op.submitter not in authorised_keys(req.kind, old, new):
        raise NotAuthorizedError("Public key is not an authorized signer")
    current = collected(view, req)
    for sigs in current:
        if op.submitter in sigs:
            raise ConflictError("Signature already collected for this key")
    writes: dict[str, bytes] = {}
    updated: list[SignaturesFile] = []
    for f, sigs in zip(req.files, current, strict=True):
        data = view.read(f)
        assert data is not None
        sig = op.signatures[f]
        _verify(op.submitter, data, sig, f)
        env = sigs.with_entry(op.submitter, sig)
        updated.append(env)
        writes[layout.pending_signatures_path(f)] = env.to_bytes()
    change = Change(f"sign {req.subject} by {op.submitter}", writes)
    signed = signed_keys(view, req.files, tuple(updated))
    if not completion_met(req.kind, old, new, signed):
        return change
    after = OverlayTree(view, change)
    if req.kind is RequestKind.ARTIFACT:
        done = _complete_artifact(after, req, old)
    elif req.kind is RequestKind.REVOCATION:
        done = _finalise_revocation(after, layout.subject_of_pending_revocation(req.subject), old)
    else:
        done = _activate(after, req, now)
    return change.then(done, f"{change.message}; {done.message}")


def _rename(view: TreeView, src: str, dst: str) -> Change:
    data = view.read(src)
    if data is None:
        raise RuleViolation(f"Missing file: {src}")
    if view.read(dst) is not None or view.is_dir(dst):
        raise ConflictError(f"Refusing to overwrite {dst}")
    return Change(f"rename {src}", {dst: data}, frozenset({src}))


def _write_new(view: TreeView, path: str, data: bytes) -> Change:
    if view.read(path) is not None or view.is_dir(path):
        raise ConflictError(f"Refusing to overwrite {path}")
    return Change(f"write {path}", {path: data})


def _complete_artifact(view: TreeView, req: PendingRequest, signers: SignersFile) -> Change:
    x = req.subject
    c = _rename(view, layout.pending_signatures_path(x), layout.signatures_path(x))
    c = c.then(_write_new(view, layout.local_signers_path(x), signers.raw))
    return Change(f"complete {x}", c.writes, c.deletes)


# --- revocation -------------------------------------------------------------------------------------
def derive_revoke(view: TreeView, op: Revoke, now: int) -> Change:
    a = op.subject
    data = view.read(a)
    if data is None:
        raise NotFoundError(f"File not found: {a}")
    if layout.in_signers_dir(a) or any(
        a.endswith(s)
        for s in (
            layout.SIGNATURES_SUFFIX,
            layout.PENDING_SIGNATURES_SUFFIX,
            layout.LOCAL_SIGNERS_SUFFIX,
            layout.REVOCATION_SUFFIX,
            layout.PENDING_REVOCATION_SUFFIX,
            layout.REVOKED_SUFFIX,
        )
    ):
        raise RuleViolation(f"Only signed release files can be revoked: {a}")
    if view.read(layout.revocation_path(a)) is not None:
        raise RuleViolation(f"File is already revoked: {a}")
    if view.read(layout.signatures_path(a)) is None:
        raise ConflictError(f"File has not been fully signed: {a}")
    if view.read(layout.pending_revocation_path(a)) is not None:
        raise ConflictError(
            f"A pending revocation already exists: {layout.pending_revocation_path(a)}. "
            "Should be signed instead."
        )
    project = find_project(view, a)
    signers = None if project is None else active_signers(view, project)
    if signers is None:
        raise RuleViolation(f"No signers file found for: {a}")
    if op.submitter not in group_keys(signers.revocation_groups()):
        raise NotAuthorizedError("Public key is not authorized to revoke this file")
    subject_digest, initiator, issued = hist.revocation_fields(op.document)
    if initiator != op.submitter:
        # The initiator named in the document must be the key that signs it.
        raise RuleViolation("Revocation initiator does not match the submitting public key")
    if subject_digest != sha512(data):
        raise RuleViolation(
            f"Digest mismatch: Revocation subject_digest does not match actual file digest for {a}"
        )
    if issued > now + REVOCATION_CLOCK_SKEW:
        # A revocation dated in the future would read as issued later than it was.
        raise RuleViolation("Revocation timestamp is in the future")
    pending = layout.pending_revocation_path(a)
    _verify(op.submitter, op.document, op.signature, pending)
    env = SignaturesFile.empty().with_entry(op.submitter, op.signature)
    change = Change(
        f"revoke {a} by {op.submitter}",
        {pending: op.document, layout.pending_signatures_path(pending): env.to_bytes()},
    )
    req = PendingRequest(RequestKind.REVOCATION, pending, project or "", (pending,))
    after = OverlayTree(view, change)
    if not completion_met(req.kind, signers, None, signed_keys(after, req.files, (env,))):
        return change
    done = _finalise_revocation(after, a, signers)
    return change.then(done, f"{change.message}; {done.message}")


def _finalise_revocation(view: TreeView, a: str, signers: SignersFile) -> Change:
    pending = layout.pending_revocation_path(a)
    c = _rename(view, pending, layout.revocation_path(a))
    c = c.then(
        _rename(view, layout.pending_signatures_path(pending), layout.revocation_signatures_path(a))
    )
    c = c.then(_write_new(view, layout.revocation_signers_path(a), signers.raw))
    c = c.then(_rename(view, layout.signatures_path(a), layout.revoked_signatures_path(a)))
    if view.read(layout.pending_signatures_path(a)) is not None:
        c = c.then(
            _rename(
                view, layout.pending_signatures_path(a), layout.revoked_pending_signatures_path(a)
            )
        )
    return Change(f"revocation of {a} complete", c.writes, c.deletes)
