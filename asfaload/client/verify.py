"""Client-side checks of what a mirror serves: signature thresholds and revocation records.

Nothing here trusts the backend: every signature is re-verified over the exact bytes served, and
counted with the rules engine's own threshold arithmetic (:mod:`asfaload.rules.groups`), so the
client accepts exactly what the server's rules would have completed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto import PublicKey, sha512
from ..errors import AsfaloadError, ThresholdNotMetError, VerificationError
from ..model import RevocationDocument, SignaturesFile, SignerGroup, SignersFile
from ..rules.groups import group_keys, groups_met, valid_signers


@dataclass(frozen=True)
class SignatureCheck:
    """Outcome of a threshold check: authorised keys that validly signed, and bad entries."""

    valid: frozenset[PublicKey]
    invalid: int


def describe_groups(groups: tuple[SignerGroup, ...]) -> str:
    return ", ".join(f"{g.threshold} of {g.size}" for g in groups) or "no group"


def check_artifact_signatures(
    signers_raw: bytes, subject_raw: bytes, signatures_raw: bytes
) -> SignatureCheck:
    """Verify ``signatures_raw`` over SHA-512(``subject_raw``) against the artifact groups."""
    try:
        signers = SignersFile.parse(signers_raw)
        sigs = SignaturesFile.from_bytes(signatures_raw)
    except AsfaloadError as exc:
        raise VerificationError(f"Cannot verify signatures: {exc}") from exc
    groups = tuple(signers.artifact_groups())
    good = valid_signers(sigs, sha512(subject_raw))
    authorised = good & group_keys(groups)
    invalid = len(sigs) - len(good)
    if not groups_met(groups, authorised):
        raise ThresholdNotMetError(
            f"Signature threshold not met: {len(authorised)} valid signature(s) from authorised "
            f"signers, the signers file requires {describe_groups(groups)}"
            + (f" ({invalid} invalid signature(s) ignored)" if invalid else "")
        )
    return SignatureCheck(valid=authorised, invalid=invalid)


@dataclass(frozen=True)
class Revocation:
    """A verified revocation of a subject."""

    revoked_at: str
    revoked_by: str
    document: RevocationDocument

    @property
    def message(self) -> str:
        return f"File has been revoked at {self.revoked_at} by {self.revoked_by}"


def check_revocation(
    subject_raw: bytes,
    revocation_raw: bytes,
    revocation_signatures_raw: bytes | None,
    revocation_signers_raw: bytes | None,
    *,
    where: str = "the backend",
) -> Revocation:
    """Verify a completed revocation record (the full revocation threshold, the
    subject digest and the initiator's own signature). A record that does not verify is an error,
    never silently ignored: a mirror that shows one is not to be trusted for this file."""
    if revocation_signatures_raw is None or revocation_signers_raw is None:
        raise VerificationError(
            f"{where[0].upper() + where[1:]} holds a revocation record for this file without "
            "its signatures "
            "or signers copy; refusing to download"
        )
    try:
        doc = RevocationDocument.from_bytes(revocation_raw)
        signers = SignersFile.parse(revocation_signers_raw)
        sigs = SignaturesFile.from_bytes(revocation_signatures_raw)
    except AsfaloadError as exc:
        raise VerificationError(f"Invalid revocation record on {where}: {exc}") from exc
    if doc.subject_digest != sha512(subject_raw):
        raise VerificationError(
            f"The revocation record on {where} names other content than its release index; "
            "refusing to download"
        )
    groups = tuple(signers.revocation_groups())
    good = valid_signers(sigs, sha512(revocation_raw)) & group_keys(groups)
    if doc.initiator not in good or not groups_met(groups, good):
        raise VerificationError(
            f"The revocation record on {where} for this file does not verify "
            f"(requires {describe_groups(groups)} revocation signatures); refusing to download"
        )
    return Revocation(revoked_at=str(doc.timestamp), revoked_by=str(doc.initiator), document=doc)
