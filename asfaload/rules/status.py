"""The one answer to "what state is this file in, who signed it, who is still needed".

:func:`file_report` is the single place the state of a signable file is computed; the REST API
(``GET /v1/signatures/…``), ``asfaload signature-status`` and the web pages all show its
:class:`FileReport`. The state itself is :func:`~asfaload.rules.queries.file_status` (complete
files re-verified against the signers copy that governed them); the report adds, per group of
the completion rule, the keys that signed (with a signature that verifies on every file of the
request) and the keys still needed, and for a revocation its document (initiator, timestamp,
reason) and the keys that signed it.

Completion rules as groups (``docs/formats.md``, "Who signs what"): a rule is a conjunction of
*requirements*, each met by any one of its *alternatives*, an alternative being a tuple of groups
that must all meet their thresholds. An initial signers file needs every key of the new file (one
synthetic group whose threshold is its size); an update needs (old admin OR old master) AND (new
admin OR new master) AND every added key. A group of a met requirement needs nobody more.

Pure: reads a :class:`~asfaload.rules.tree.TreeView`, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import layout
from ..crypto import PublicKey, sha512
from ..errors import ThresholdNotMetError
from ..model import SignaturesFile, SignerGroup, SignersFile
from ..model.revocation import RevocationDocument
from ..model.timestamps import format_rfc3339, to_unix
from . import queries
from .groups import group_met, valid_signers
from .queries import FileStatus, RequestKind
from .tree import Change, TreeView

__all__ = [
    "FileReport",
    "GroupReport",
    "RevocationReport",
    "REVOKE_MESSAGES",
    "file_report",
    "group_reports",
    "revocation_status",
    "signer_dict",
]

# What a revocation's submitter is told, by REST (``POST /v1/revoke``) and by ``revoke --git``
# alike, for each revocation_status.
REVOKE_MESSAGES = {
    "revoked": "File revoked successfully",
    "pending": "Revocation initiated; it takes effect once the revocation threshold is met",
}


def revocation_status(subject: str, change: Change) -> str:
    """``revoked`` when ``change`` (a revocation's initiation) revokes ``subject`` at once (a
    threshold of one), ``pending`` while it awaits the other revokers."""
    return "revoked" if layout.revocation_path(subject) in change.writes else "pending"


# (role, group) pairs: the groups of one alternative.
_Alternative = tuple[tuple[str, SignerGroup], ...]
# Any one alternative meets the requirement.
_Requirement = tuple[_Alternative, ...]

RULES = {
    RequestKind.ARTIFACT: "every artifact signers group reaches its threshold",
    RequestKind.REVOCATION: "every revocation group of the active signers file reaches its "
    "threshold",
    RequestKind.SIGNERS_INITIAL: "every key of the new signers file signs",
    RequestKind.SIGNERS_UPDATE: "(old admin or old master groups) and (new admin or new master "
    "groups) and every key the new file adds",
}


def _sorted_keys(keys: frozenset[PublicKey] | set[PublicKey]) -> tuple[PublicKey, ...]:
    return tuple(sorted(keys, key=str))


def signer_dict(key: PublicKey) -> dict[str, str]:
    """A signer as every output shows it. The signers file format has no name field, so none."""
    return {"key_id": key.key_id, "public_key": str(key)}


@dataclass(frozen=True)
class GroupReport:
    """One group of a completion rule. ``missing``: its keys that have not signed, while the
    requirement it belongs to is unmet (any ``needed`` of them suffice); empty once met."""

    role: str
    threshold: int
    signers: tuple[PublicKey, ...]
    signed: tuple[PublicKey, ...]
    missing: tuple[PublicKey, ...]
    needed: int
    met: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "threshold": self.threshold,
            "size": len(self.signers),
            "signed": [signer_dict(k) for k in self.signed],
            "missing": [signer_dict(k) for k in self.missing],
            "needed": self.needed,
            "met": self.met,
        }


@dataclass(frozen=True)
class RevocationReport:
    """A revocation of a file: ``status`` is ``complete`` (the file is revoked) or ``pending``
    (still collecting signatures). ``timestamp`` is the document's, as RFC 3339 UTC."""

    file_path: str
    status: FileStatus
    initiator: PublicKey
    timestamp: str
    reason: str | None
    signed: tuple[PublicKey, ...]
    groups: tuple[GroupReport, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file_path": self.file_path,
            "status": self.status.value,
            "initiator": signer_dict(self.initiator),
            "timestamp": self.timestamp,
            "reason": self.reason,
            "signed": [signer_dict(k) for k in self.signed],
            "groups": [g.to_dict() for g in self.groups],
        }


@dataclass(frozen=True)
class FileReport:
    """The state of one signable file and who signed it. ``missing``: every key still needed
    (the union of the groups' ``missing``); empty unless ``status`` is pending."""

    file_path: str
    status: FileStatus
    kind: RequestKind
    groups: tuple[GroupReport, ...]
    signed: tuple[PublicKey, ...]
    missing: tuple[PublicKey, ...]
    revocation: RevocationReport | None

    @property
    def is_complete(self) -> bool:
        return self.status is FileStatus.COMPLETE

    @property
    def rule(self) -> str:
        return RULES[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file_path": self.file_path,
            "is_complete": self.is_complete,
            "status": self.status.value,
            "kind": self.kind.value,
            "rule": self.rule,
            "groups": [g.to_dict() for g in self.groups],
            "signed": [signer_dict(k) for k in self.signed],
            "missing": [signer_dict(k) for k in self.missing],
            "revocation": None if self.revocation is None else self.revocation.to_dict(),
        }


# --- completion rules as groups ---------------------------------------------------------------
def _all_of(keys: frozenset[PublicKey]) -> SignerGroup:
    ordered = _sorted_keys(keys)
    return SignerGroup(ordered, len(ordered))


def _alt(role: str, groups: tuple[SignerGroup, ...]) -> _Alternative:
    return tuple((role, g) for g in groups)


def _requirements(
    kind: RequestKind, old: SignersFile, new: SignersFile | None
) -> tuple[_Requirement, ...]:
    if kind is RequestKind.ARTIFACT:
        return ((_alt("artifact", old.artifact_groups()),),)
    if kind is RequestKind.REVOCATION:
        return ((_alt("revocation", old.revocation_groups()),),)
    assert new is not None
    if kind is RequestKind.SIGNERS_INITIAL:
        return (((("every key of the new file", _all_of(new.all_signer_keys())),),),)
    reqs: list[_Requirement] = []
    for when, file in (("old", old), ("new", new)):
        alts = (
            _alt(f"{when} admin", file.admin_groups()),
            _alt(f"{when} master", file.master_groups()),
        )
        reqs.append(tuple(a for a in alts if a))
    added = new.all_signer_keys() - old.all_signer_keys()
    if added:
        reqs.append(((("every added key", _all_of(added)),),))
    return tuple(reqs)


def group_reports(
    kind: RequestKind, old: SignersFile, new: SignersFile | None, signed: frozenset[PublicKey]
) -> tuple[GroupReport, ...]:
    """Each group of the completion rule of ``kind`` with who of ``signed`` counts for it."""
    out: list[GroupReport] = []
    for requirement in _requirements(kind, old, new):
        met = any(all(group_met(g, signed) for _, g in alt) for alt in requirement)
        for alt in requirement:
            for role, g in alt:
                have = g.keys & signed
                group_ok = group_met(g, signed)
                still = not met and not group_ok
                out.append(
                    GroupReport(
                        role=role,
                        threshold=g.threshold,
                        signers=g.signers,
                        signed=_sorted_keys(have),
                        missing=_sorted_keys(g.keys - signed) if still else (),
                        needed=g.threshold - len(have) if still else 0,
                        met=group_ok,
                    )
                )
    return tuple(out)


# --- the report ---------------------------------------------------------------------------------
def _envelope(view: TreeView, path: str) -> SignaturesFile:
    return queries.read_signatures(view, path)


def _valid(view: TreeView, subject: str, envelope_path: str) -> frozenset[PublicKey]:
    raw = view.read(subject)
    if raw is None:
        return frozenset()
    return valid_signers(_envelope(view, envelope_path), sha512(raw))


def _pending_parts(
    view: TreeView, subject: str
) -> tuple[RequestKind, SignersFile, SignersFile | None, frozenset[PublicKey]]:
    req = queries.pending_request(view, subject)
    old, new = queries.request_signers(view, req)
    return req.kind, old, new, queries.signed_keys(view, req.files, queries.collected(view, req))


def _copy(view: TreeView, path: str) -> SignersFile:
    raw = view.read(path)
    if raw is None:
        raise ThresholdNotMetError(f"Signed file has no signers copy: {path}")
    return queries.parse_signers(raw)


def _revocation(view: TreeView, subject: str) -> RevocationReport | None:
    done = layout.revocation_path(subject)
    pending = layout.pending_revocation_path(subject)
    if view.read(done) is not None:
        path, status = done, FileStatus.COMPLETE
        signed = _valid(view, done, layout.signatures_path(done))
        groups = group_reports(
            RequestKind.REVOCATION, _copy(view, layout.local_signers_path(done)), None, signed
        )
    elif view.read(pending) is not None:
        path, status = pending, FileStatus.PENDING
        kind, old, new, signed = _pending_parts(view, pending)
        groups = group_reports(kind, old, new, signed)
    else:
        return None
    raw = view.read(path)
    assert raw is not None
    doc = RevocationDocument.from_bytes(raw)
    return RevocationReport(
        file_path=path,
        status=status,
        initiator=doc.initiator,
        timestamp=format_rfc3339(to_unix(doc.timestamp_dt)),
        reason=doc.reason,
        signed=_sorted_keys(signed),
        groups=groups,
    )


def file_report(view: TreeView, path: str) -> FileReport:
    """The report of ``path``; raises as :func:`~asfaload.rules.queries.file_status` does
    (NotFoundError for a file that is not signed or pending, ThresholdNotMetError for a file
    named complete whose signatures do not satisfy its rules)."""
    status = queries.file_status(view, path)
    located = layout.signers_project_of(path)
    revocation: RevocationReport | None = None
    if located is not None and layout.basename(path) == layout.SIGNERS_FILE:
        project, pending = located
        if pending:
            kind, old, new, signed = _pending_parts(view, path)
        else:
            kind, old, new, signed = queries.active_signers_request(view, project)
    elif status is FileStatus.PENDING:
        kind, old, new, signed = _pending_parts(view, path)
    else:
        kind = RequestKind.REVOCATION if layout.is_revocation(path) else RequestKind.ARTIFACT
        old, new = _copy(view, layout.local_signers_path(path)), None
        envelope = (
            layout.revoked_signatures_path(path)
            if status is FileStatus.REVOKED
            else layout.signatures_path(path)
        )
        signed = _valid(view, path, envelope)
        if kind is RequestKind.ARTIFACT:
            revocation = _revocation(view, path)
    groups = group_reports(kind, old, new, signed)
    missing: set[PublicKey] = set()
    if status is FileStatus.PENDING:
        for g in groups:
            missing.update(g.missing)
    return FileReport(
        file_path=path,
        status=status,
        kind=kind,
        groups=groups,
        signed=_sorted_keys(signed),
        missing=_sorted_keys(missing),
        revocation=revocation,
    )
