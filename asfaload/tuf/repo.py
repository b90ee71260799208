"""Pure TUF repository operations on a mirror tree: ``(TreeView, now) -> Change``.

Each operation reads what it needs from the view it is given (so under the store's single
writer, concurrent requests see each other's commits and no signature is lost), checks the
request as FaynoSync does (in its order, with its messages, where it is sound), and returns the exact writes and deletes of one commit. Online roles are signed with
ed25519, which is deterministic, and every time is the commit time ``now``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from securesystemslib.exceptions import UnverifiedSignatureError
from tuf.api.serialization.json import JSONSerializer

from .. import layout
from ..errors import SIGNATURE_FAILED, TASK_NOT_ACCEPTED, UPDATE_FAILED, FormatError, TufError
from ..rules.tree import Change, TreeView
from ._api import (
    Metadata,
    MetaFile,
    Root,
    RootVerificationResult,
    Signature,
    Signer,
    Snapshot,
    Targets,
    Timestamp,
)
from .documents import (
    ONLINE_ROLES,
    AppRef,
    Expirations,
    ParsedRoot,
    check_distinct_keys,
    expires_in,
    is_expired,
    parse_root,
    parse_root_bytes,
    tuf_time,
)

_SERIALIZER = JSONSerializer(compact=False)


# --- reading the published state -------------------------------------------------------------------
def versions(view: TreeView, ref: AppRef, role: str) -> list[int]:
    out = []
    for name in view.listdir(ref.dir):
        parsed = layout.parse_tuf_versioned_name(name)
        if parsed is not None and parsed[1] == role:
            out.append(parsed[0])
    return sorted(out)


def latest_version(view: TreeView, ref: AppRef, role: str) -> int | None:
    found = versions(view, ref, role)
    return found[-1] if found else None


def is_bootstrapped(view: TreeView, ref: AppRef) -> bool:
    return latest_version(view, ref, "root") is not None


def trusted_root(view: TreeView, ref: AppRef) -> ParsedRoot | None:
    """The highest published root (what clients trust now), or None before bootstrap."""
    version = latest_version(view, ref, "root")
    if version is None:
        return None
    raw = view.read(ref.versioned("root", version))
    assert raw is not None
    return parse_root_bytes(raw)


def verified_trusted_root(view: TreeView, ref: AppRef, now: int) -> ParsedRoot | None:
    """The trusted root if it is unexpired and signed by its own threshold, else None."""
    try:
        parsed = trusted_root(view, ref)
    except FormatError:
        return None
    if parsed is None or is_expired(parsed.root, now):
        return None
    result = parsed.root.get_root_verification_result(
        None, parsed.md.signed_bytes, parsed.md.signatures
    )
    return parsed if result.verified else None


def pending_root(view: TreeView, ref: AppRef) -> dict[str, Any] | None:
    """The draft root document waiting for signatures, as stored."""
    raw = view.read(ref.pending_root)
    if raw is None:
        return None
    try:
        doc = parse_root_bytes(raw).doc
    except FormatError:
        raise TufError("Failed to parse metadata", status=500) from None
    return doc


# --- progress ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Side:
    """One root's view of the signatures: its threshold, who signed, who has not."""

    threshold: int
    signed: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def remaining(self) -> int:
        return max(0, self.threshold - len(self.signed))

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "signed": list(self.signed),
            "missing": list(self.missing),
            "remaining": self.remaining,
        }


@dataclass(frozen=True)
class Progress:
    """How far a root proposal is from TUF spec 5.3.4: old root's threshold AND its own."""

    version: int
    collected: int
    old: Side
    new: Side

    @property
    def complete(self) -> bool:
        return self.old.remaining == 0 and self.new.remaining == 0

    @classmethod
    def of(cls, version: int, result: RootVerificationResult) -> Progress:
        def side(r: Any) -> Side:
            return Side(r.threshold, tuple(sorted(r.signed)), tuple(sorted(r.unsigned)))

        return cls(version, len(result.signed), side(result.first), side(result.second))

    def summary(self) -> str:
        def keys(ks: Iterable[str]) -> str:
            return "[" + " ".join(ks) + "]"

        text = (
            f"Progress: {self.collected} valid signature(s) collected;"
            f" trusted root {len(self.old.signed)}/{self.old.threshold},"
            f" new root {len(self.new.signed)}/{self.new.threshold}."
            f" {self.old.remaining} more old and {self.new.remaining} more new required."
        )
        parts = [
            ("Old keys signed", self.old.signed),
            ("New keys signed", self.new.signed),
            ("Missing old keys", self.old.missing),
            ("Missing new keys", self.new.missing),
        ]
        for label, ks in parts:
            if ks:
                text += f" {label}: {keys(ks)}."
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "collected": self.collected,
            "complete": self.complete,
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
            "summary": self.summary(),
        }


@dataclass(frozen=True)
class RootOutcome:
    """What a root operation did: the commit's change, and published version or progress."""

    change: Change
    progress: Progress
    published: bool

    @property
    def version(self) -> int:
        return self.progress.version


class NothingToCommit(Exception):
    """Raised from an operation that changes nothing (e.g. a signature already collected).

    The store commits nothing when an operation raises; the caller catches this and answers
    with the carried outcome. It is not an error a user sees.
    """

    def __init__(self, progress: Progress) -> None:
        super().__init__("nothing to commit")
        self.progress = progress


# --- signing the online roles ---------------------------------------------------------------------------
def _role_signers(root: Root, role: str, keys: Mapping[str, Signer]) -> list[Signer]:
    """The first ``threshold`` keys of ``role`` that this server holds (as FaynoSync picks them)."""
    r = root.roles[role]
    held = [keys[k] for k in r.keyids if k in keys]
    if len(held) < r.threshold:
        raise TufError(
            f"online role {role} needs {r.threshold} key(s) held by this server,"
            f" it holds {len(held)} of {len(r.keyids)} (see `asfaload tuf online-keys`)",
            message=UPDATE_FAILED,
        )
    return held[: r.threshold]


def check_online_keys(root: Root, keys: Mapping[str, Signer]) -> None:
    for role in ONLINE_ROLES:
        _role_signers(root, role, keys)


def _sign(signed: Targets | Snapshot | Timestamp, signers: list[Signer]) -> bytes:
    md: Metadata[Any] = Metadata(signed)
    for s in signers:
        md.sign(s, append=True)
    return md.to_bytes(_SERIALIZER)


def _meta(raw: bytes, version: int) -> MetaFile:
    return MetaFile(
        version=version, length=len(raw), hashes={"sha256": hashlib.sha256(raw).hexdigest()}
    )


def resign_online(
    view: TreeView,
    ref: AppRef,
    root: Root,
    now: int,
    expirations: Expirations,
    keys: Mapping[str, Signer],
    roles: Iterable[str] = ONLINE_ROLES,
) -> tuple[dict[str, bytes], list[str]]:
    """Writes that bring targets/snapshot/timestamp up to date under ``root``.

    ``roles`` are bumped on request; targets is also bumped whenever the published targets no
    longer verifies under ``root`` (its keys rotated), snapshot whenever targets moved, and the
    timestamp always: after a root rotation clients must find metadata signed by the new keys
    (TUF specification 5.3.11, https://theupdateframework.github.io/specification/latest/).
    """
    wanted = set(roles)
    writes: dict[str, bytes] = {}
    updated: list[str] = []

    tv = latest_version(view, ref, "targets")
    targets_md: Metadata[Targets] | None = None
    if tv is not None:
        raw = view.read(ref.versioned("targets", tv))
        assert raw is not None
        targets_md = Metadata[Targets].from_bytes(raw)
    stale = targets_md is None or not root.get_verification_result(
        "targets", targets_md.signed_bytes, targets_md.signatures
    )
    if "targets" in wanted or stale:
        base = targets_md.signed if targets_md is not None else Targets()
        tv = (tv or 0) + 1
        new_targets = Targets(
            version=tv,
            expires=expires_in(now, expirations.targets),
            targets=base.targets,
            delegations=base.delegations,
            unrecognized_fields=base.unrecognized_fields,
        )
        targets_raw = _sign(new_targets, _role_signers(root, "targets", keys))
        writes[ref.versioned("targets", tv)] = targets_raw
        updated.append("targets")
    else:
        assert tv is not None
        raw_t = view.read(ref.versioned("targets", tv))
        assert raw_t is not None
        targets_raw = raw_t

    sv = (latest_version(view, ref, "snapshot") or 0) + 1
    snapshot = Snapshot(
        version=sv,
        expires=expires_in(now, expirations.snapshot),
        meta={"targets.json": _meta(targets_raw, tv)},
    )
    snapshot_raw = _sign(snapshot, _role_signers(root, "snapshot", keys))
    writes[ref.versioned("snapshot", sv)] = snapshot_raw
    updated.append("snapshot")

    ts_version = 1
    old_ts = view.read(ref.timestamp)
    if old_ts is not None:
        ts_version = Metadata[Timestamp].from_bytes(old_ts).signed.version + 1
    timestamp = Timestamp(
        version=ts_version,
        expires=expires_in(now, expirations.timestamp),
        snapshot_meta=_meta(snapshot_raw, sv),
    )
    writes[ref.timestamp] = _sign(timestamp, _role_signers(root, "timestamp", keys))
    updated.append("timestamp")
    return writes, updated


# --- bootstrap ---------------------------------------------------------------------------------------------
def bootstrap(
    view: TreeView,
    now: int,
    ref: AppRef,
    root_doc: Any,
    expirations: Expirations,
    keys: Mapping[str, Signer],
) -> RootOutcome:
    """Publish a self-signed first root and targets v1, snapshot v1, timestamp v1."""
    if is_bootstrapped(view, ref):
        raise TufError("System already has root metadata. Bootstrap already completed.", status=409)
    try:
        parsed = parse_root(root_doc)
        check_distinct_keys(parsed.root)
    except FormatError as exc:
        raise TufError("Failed to load root metadata", details=str(exc)) from None
    root = parsed.root
    if is_expired(root, now):
        raise TufError(f"root metadata is expired at {tuf_time(root.expires)}")
    result = root.get_root_verification_result(None, parsed.md.signed_bytes, parsed.md.signatures)
    progress = Progress.of(parsed.version, result)
    if not result.verified:
        raise TufError(
            "root metadata is not signed by its own root threshold: " + progress.summary()
        )
    check_online_keys(root, keys)
    writes = {ref.versioned("root", parsed.version): parsed.to_bytes()}
    online, _ = resign_online(view, ref, root, now, expirations, keys)
    writes.update(online)
    change = Change(f"tuf: bootstrap {ref.admin}/{ref.app} with root v{parsed.version}", writes)
    return RootOutcome(change, progress, published=True)


# --- rotation ------------------------------------------------------------------------------------------------
def require_bootstrapped(view: TreeView, ref: AppRef) -> ParsedRoot:
    try:
        trusted = trusted_root(view, ref)
    except FormatError:
        raise TufError("Failed to load current root metadata", status=500) from None
    if trusted is None:
        raise TufError(
            "Requires bootstrap finished. State: ", status=404, message=TASK_NOT_ACCEPTED
        )
    return trusted


def _publish(
    view: TreeView,
    now: int,
    ref: AppRef,
    parsed: ParsedRoot,
    expirations: Expirations,
    keys: Mapping[str, Signer],
    what: str,
) -> Change:
    writes = {ref.versioned("root", parsed.version): parsed.to_bytes()}
    # Targets only moves when its keys changed; snapshot and timestamp always do.
    online, _ = resign_online(
        view, ref, parsed.root, now, expirations, keys, ("snapshot", "timestamp")
    )
    writes.update(online)
    # A published rotation supersedes any draft: it could never verify now.
    deletes = (
        frozenset({ref.pending_root}) if view.read(ref.pending_root) is not None else frozenset()
    )
    return Change(f"tuf: {what} {ref.admin}/{ref.app} root v{parsed.version}", writes, deletes)


def _authorized_keys(draft: Root, trusted: Root) -> dict[str, Any]:
    allowed = {k: trusted.keys[k] for k in trusted.roles["root"].keyids}
    allowed.update({k: draft.keys[k] for k in draft.roles["root"].keyids})  # the draft's wins
    return allowed


def _check_signature(parsed: ParsedRoot, trusted: Root, keyid: str, sig: str, message: str) -> None:
    key = _authorized_keys(parsed.root, trusted).get(keyid)
    if key is None:
        raise TufError(
            f"Invalid signature or unauthorized key: keyid {keyid} is not authorized for role root",
            message=message,
        )
    try:
        bytes.fromhex(sig)
    except ValueError:
        raise TufError(
            "Invalid signature or unauthorized key: invalid signature hex", message=message
        ) from None
    try:
        key.verify_signature(Signature(keyid, sig), parsed.md.signed_bytes)
    except UnverifiedSignatureError:
        raise TufError(
            f"Invalid signature or unauthorized key: signature verification failed for keyid {keyid}",
            message=message,
        ) from None


def propose_root(
    view: TreeView,
    now: int,
    ref: AppRef,
    root_doc: Any,
    expirations: Expirations,
    keys: Mapping[str, Signer],
) -> RootOutcome:
    """``POST /tuf/v1/metadata``: publish a fully signed root, or stage it as the draft."""
    trusted = require_bootstrapped(view, ref)
    try:
        parsed = parse_root(root_doc)
        check_distinct_keys(parsed.root)
    except FormatError as exc:
        raise TufError("Failed to load new root metadata", details=str(exc)) from None
    expected = trusted.version + 1
    if parsed.version != expected:
        raise TufError(
            f"Failed to verify the trust: expected root version {expected},"
            f" got version {parsed.version}",
            message=UPDATE_FAILED,
        )
    if is_expired(parsed.root, now):
        raise TufError(
            f"Failed to verify the trust: new root metadata is expired at"
            f" {tuf_time(parsed.root.expires)}",
            message=UPDATE_FAILED,
        )
    check_online_keys(parsed.root, keys)
    # Unlike FaynoSync, signatures in the body are checked now: a bad one stored in a draft
    # would block its key for good.
    for keyid, sig in parsed.md.signatures.items():
        _check_signature(parsed, trusted.root, keyid, sig.signature, UPDATE_FAILED)
    result = parsed.root.get_root_verification_result(
        trusted.root, parsed.md.signed_bytes, parsed.md.signatures
    )
    progress = Progress.of(parsed.version, result)
    if result.verified:
        change = _publish(view, now, ref, parsed, expirations, keys, "rotate")
        return RootOutcome(change, progress, published=True)
    change = Change(
        f"tuf: stage root v{parsed.version} draft for {ref.admin}/{ref.app}",
        {ref.pending_root: parsed.to_bytes()},
    )
    return RootOutcome(change, progress, published=False)


def add_signature(
    view: TreeView,
    now: int,
    ref: AppRef,
    role: str,
    keyid: str,
    sig: str,
    expirations: Expirations,
    keys: Mapping[str, Signer],
) -> RootOutcome:
    """``POST /tuf/v1/metadata/sign``: add one signature to the draft; publish at threshold."""
    if not is_bootstrapped(view, ref):
        raise TufError(
            "Requires bootstrap in signing state. State: ",
            status=404,
            message="No signing pending.",
        )
    doc = pending_root(view, ref) if role == "root" else None
    if doc is None:
        raise TufError(
            f"No metadata found in signing process for role {role}",
            status=404,
            message=f"No signatures pending for {role}",
        )
    parsed = parse_root(doc)
    try:
        # A draft staged before this check existed may still list a key twice.
        check_distinct_keys(parsed.root)
    except FormatError as exc:
        raise TufError(
            f"the draft root cannot collect signatures: {exc}", message=SIGNATURE_FAILED
        ) from None
    if is_expired(parsed.root, now):
        raise TufError("metadata is expired", message=SIGNATURE_FAILED)
    trusted = verified_trusted_root(view, ref, now)
    if trusted is None:
        raise TufError(
            "trusted root is required for signature authorization: the published root is"
            " expired or not signed to its threshold",
            message=SIGNATURE_FAILED,
        )
    expected = trusted.version + 1
    if parsed.version != expected:
        raise TufError(
            f"Invalid signature or threshold not reached: expected root version {expected},"
            f" got version {parsed.version}",
            message=SIGNATURE_FAILED,
        )
    already = keyid in parsed.md.signatures
    if not already:
        _check_signature(parsed, trusted.root, keyid, sig, SIGNATURE_FAILED)
        parsed = parsed.with_signature(keyid, sig)
    result = parsed.root.get_root_verification_result(
        trusted.root, parsed.md.signed_bytes, parsed.md.signatures
    )
    progress = Progress.of(parsed.version, result)
    if result.verified:
        change = _publish(view, now, ref, parsed, expirations, keys, "sign and publish")
        return RootOutcome(change, progress, published=True)
    if already:
        # Re-posting a collected signature is idempotent: never counted twice, nothing to write.
        raise NothingToCommit(progress)
    change = Change(
        f"tuf: add root v{parsed.version} signature {keyid[:16]} for {ref.admin}/{ref.app}",
        {ref.pending_root: parsed.to_bytes()},
    )
    return RootOutcome(change, progress, published=False)


def draft_progress(view: TreeView, ref: AppRef, now: int) -> Progress | None:
    """Progress of the current draft against the trusted root, or None without both."""
    doc = pending_root(view, ref)
    trusted = verified_trusted_root(view, ref, now)
    if doc is None or trusted is None:
        return None
    parsed = parse_root(doc)
    try:
        result = parsed.root.get_root_verification_result(
            trusted.root, parsed.md.signed_bytes, parsed.md.signatures
        )
    except ValueError:
        return None
    return Progress.of(parsed.version, result)


def delete_draft(view: TreeView, ref: AppRef, role: str) -> Change:
    """``POST /tuf/v1/metadata/sign/delete``: abandon the draft."""
    if role != "root" or view.read(ref.pending_root) is None:
        raise TufError(
            f"The {role} role is not in a signing process.",
            status=404,
            message=f"No signing process for {role}.",
        )
    return Change(
        f"tuf: abandon root draft for {ref.admin}/{ref.app}", deletes=frozenset({ref.pending_root})
    )


def refresh_online(
    view: TreeView,
    now: int,
    ref: AppRef,
    roles: Iterable[str],
    expirations: Expirations,
    keys: Mapping[str, Signer],
) -> tuple[Change, list[str]]:
    """``POST /tuf/v1/metadata/online``: re-sign the online roles under the trusted root."""
    trusted = require_bootstrapped(view, ref)
    if is_expired(trusted.root, now):
        raise TufError(
            f"trusted root metadata is expired at {tuf_time(trusted.root.expires)}", status=409
        )
    writes, updated = resign_online(view, ref, trusted.root, now, expirations, keys, roles)
    change = Change(f"tuf: re-sign {', '.join(updated)} for {ref.admin}/{ref.app}", writes)
    return change, updated
