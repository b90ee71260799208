"""Operations initiated by ``git push``: infer the operation from a pushed diff, then re-derive it.

A signer may push only what the rules derive from (parent tree, operation, commit time):

- adding their signatures to one pending request (release index, pending signers file with its
  metadata, pending revocation), including the completion transition those signatures trigger;
- initiating a revocation with a signed revocation document (finalised at once when the
  revocation threshold is one).

:func:`infer_operation` reads the operation out of the diff (which envelope gained which key, or
which revocation document appeared); :func:`check_push` then requires ``apply(parent, op, now)``
to write and delete exactly the pushed files (:func:`compare_change`). Anything else is refused
with a one-line :class:`~asfaload.errors.RuleViolation` (or the engine's own error). The
commit check of :mod:`asfaload.replication.commits` adds what a file comparison cannot see: the
pushed tree's id must be the derived tree's.
"""

from __future__ import annotations

from .. import layout
from ..crypto import PublicKey, Signature
from ..errors import AsfaloadError, FormatError, RuleViolation
from ..model import SignaturesFile, parse_json
from .engine import apply
from .ops import AddSignatures, Revoke
from .queries import collected, pending_request
from .tree import Change, TreeView

_NOT_DERIVED = "Push does not match any allowed operation"


def _single_entry(raw: bytes | None, what: str) -> tuple[PublicKey, Signature]:
    if raw is None:
        raise RuleViolation(f"{_NOT_DERIVED}: {what} has no signatures")
    env = SignaturesFile.from_bytes(raw)
    if len(env) != 1:
        raise RuleViolation(f"{_NOT_DERIVED}: {what} must hold exactly one signature")
    ((pk, sig),) = env.entries.items()
    return pk, sig


def _infer_revoke(view: TreeView, change: Change) -> Revoke | None:
    for path, data in sorted(change.writes.items()):
        if view.read(path) is not None:
            continue
        if layout.is_pending_revocation(path):
            subject = layout.subject_of_pending_revocation(path)
            env = change.writes.get(layout.pending_signatures_path(path))
        elif layout.is_revocation(path):
            subject = layout.subject_of_revocation(path)
            if view.read(layout.pending_revocation_path(subject)) is not None:
                continue  # a co-signature completing a pending revocation
            env = change.writes.get(layout.revocation_signatures_path(subject))
        else:
            continue
        pk, sig = _single_entry(env, f"revocation of {subject}")
        return Revoke(subject, data, sig, pk)
    return None


def _request_subject(view: TreeView, path: str) -> str | None:
    """The pending-request subject an envelope written at ``path`` belongs to, if any."""
    if path.endswith(layout.PENDING_SIGNATURES_SUFFIX):
        f = layout.subject_of_pending_signatures(path)
    elif path.endswith(layout.SIGNATURES_SUFFIX):
        f = layout.subject_of_signatures(path)
        located = layout.signers_project_of(f)
        if located is not None and not located[1]:
            # Activation: the active envelope replaces the pending one of the same name.
            f = layout.join(layout.signers_dir(located[0], pending=True), layout.basename(f))
        elif f.endswith(layout.REVOCATION_SUFFIX):
            f = f + layout.PENDING_SUFFIX
    else:
        return None
    if view.read(layout.pending_signatures_path(f)) is None:
        return None
    located = layout.signers_project_of(f)
    if located is not None and layout.basename(f) == layout.METADATA_FILE:
        return layout.signers_file_path(located[0], pending=True)
    return f


def _completed_envelope_path(view: TreeView, f: str) -> str:
    located = layout.signers_project_of(f)
    if located is not None:
        return layout.signatures_path(
            layout.join(layout.signers_dir(located[0]), layout.basename(f))
        )
    if layout.is_pending_revocation(f):
        return layout.revocation_signatures_path(layout.subject_of_pending_revocation(f))
    return layout.signatures_path(f)


def infer_operation(view: TreeView, change: Change) -> AddSignatures | Revoke:
    """The one push-allowed operation ``change`` claims to be (not yet checked)."""
    revoke = _infer_revoke(view, change)
    if revoke is not None:
        return revoke
    subjects = {s for p in change.writes if (s := _request_subject(view, p)) is not None}
    if len(subjects) != 1:
        raise RuleViolation(
            f"{_NOT_DERIVED}: it must add signatures to exactly one pending request"
        )
    subject = subjects.pop()
    req = pending_request(view, subject)
    signatures: dict[str, Signature] = {}
    keys: set[PublicKey] = set()
    for f, before in zip(req.files, collected(view, req), strict=True):
        raw = change.writes.get(layout.pending_signatures_path(f))
        if raw is None:
            raw = change.writes.get(_completed_envelope_path(view, f))
        if raw is None:
            raise RuleViolation(f"{_NOT_DERIVED}: no signature added for {f}")
        after = SignaturesFile.from_bytes(raw)
        added = after.keys() - before.keys()
        if len(added) != 1:
            raise RuleViolation(f"{_NOT_DERIVED}: exactly one new signature expected for {f}")
        (pk,) = added
        keys.add(pk)
        signatures[f] = after[pk]
    if len(keys) != 1:
        raise RuleViolation(f"{_NOT_DERIVED}: all signatures must come from one key")
    return AddSignatures(subject, keys.pop(), signatures)


def check_push(view: TreeView, change: Change, now: int) -> AddSignatures | Revoke:
    """Infer the operation of a pushed ``change`` and require the rules to derive exactly its
    files (``view`` is the parent commit's tree, ``now`` the pushed commit's committer time).

    Returns the operation; raises an :class:`~asfaload.errors.AsfaloadError` with a one-line
    reason. This is the pure half of the commit check
    (:class:`asfaload.replication.commits.CommitChecker`), which also compares tree ids.
    """
    return derive_push(view, change, now)[0]


def derive_push(view: TreeView, change: Change, now: int) -> tuple[AddSignatures | Revoke, Change]:
    """:func:`check_push` that also returns the change the rules derive (with the canonical
    commit message the server would write), so callers need not apply the operation again."""
    try:
        op = infer_operation(view, change)
    except AsfaloadError:
        raise
    except (ValueError, KeyError) as exc:  # defensive: never a traceback to the pusher
        raise RuleViolation(f"{_NOT_DERIVED}: {exc}") from None
    expected = apply(view, op, now)
    compare_change(expected, change)
    return op, expected


def compare_change(expected: Change, actual: Change) -> None:
    """Refuse ``actual`` unless it writes and deletes exactly the files ``expected`` does; the
    reason names the first differing path."""
    differing = sorted(
        {
            p
            for p in expected.writes.keys() | actual.writes.keys()
            if expected.writes.get(p) != actual.writes.get(p)
        }
        | (expected.deletes ^ actual.deletes)
    )
    if not differing:
        return
    completing = sorted(
        q
        for q in expected.deletes - actual.deletes
        if q.endswith(layout.PENDING_SIGNATURES_SUFFIX) and q in actual.writes
    )
    if completing:
        raise RuleViolation(
            f"{completing[0]} differs from what the rules derive: this signature completes the "
            "request, so the commit must also turn the pending signatures into the complete "
            "ones (docs/git.md, 'The signature that completes a release')"
        )
    p = differing[0]
    if p in actual.writes or p in actual.deletes:
        if p in expected.writes or p in expected.deletes:
            hint = _same_json_hint(expected.writes.get(p), actual.writes.get(p))
            raise RuleViolation(f"{p} differs from what the rules derive{hint}")
        raise RuleViolation(
            f"{p} differs from what the rules derive (the commit changes it, the rules do not)"
        )
    raise RuleViolation(
        f"{p} differs from what the rules derive (the rules change it, the commit does not)"
    )


def _same_json_hint(expected: bytes | None, actual: bytes | None) -> str:
    """A hint when a file holds the right JSON in other bytes (plain git users write it by
    hand): the mirror compares bytes, as git does."""
    if expected is None or actual is None:
        return ""
    try:
        same = parse_json(expected, FormatError) == parse_json(actual, FormatError)
    except FormatError:
        return ""
    if not same:
        return ""
    return (
        ": the same JSON, formatted otherwise; write it as the server does (keys sorted, "
        "two-space indent, a final newline)"
    )
