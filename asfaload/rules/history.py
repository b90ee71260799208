"""The rules engine's contact points with the history, metadata, index and revocation models.

Kept in one place so the engine reads as rules, not as JSON handling:

- :func:`empty_history_bytes`, :func:`entry_from_active`, :func:`append`: the signers history.
  Each entry holds the obsoleted signers file and metadata as their RAW bytes with both
  signature envelopes, so the whole chain can be re-verified (never a re-serialised copy).
  ``obsoleted_at`` is the commit time ``now`` (deterministic, so the hook can recompute it).
- :func:`last_history_signers`: the signers file an active update replaced.
- :func:`check_metadata`, :func:`check_index`: the bytes parse (they are stored verbatim).
- :func:`revocation_fields`: ``(subject_digest bytes, initiator key)`` of a revocation document.
"""

from __future__ import annotations

from .. import layout
from ..crypto import PublicKey
from ..errors import RuleViolation
from ..model import SignaturesFile, SignersFile
from ..model.history import HistoryEntry, SignersHistory
from ..model.index import ReleaseIndex
from ..model.metadata import SignersMetadata
from ..model.revocation import RevocationDocument
from ..model.timestamps import format_rfc3339, to_unix
from .tree import TreeView


def empty_history_bytes() -> bytes:
    empty: bytes = SignersHistory(()).to_bytes()
    return empty


def _read_history(raw: bytes | None) -> SignersHistory:
    return SignersHistory(()) if raw is None else SignersHistory.from_bytes(raw)


def entry_from_active(view: TreeView, project: str, now: int) -> HistoryEntry:
    """A history entry for the ACTIVE signers of ``project``, obsoleted at ``now``."""
    sf = layout.signers_file_path(project)
    md = layout.metadata_path(project)
    signers, metadata = view.read(sf), view.read(md)
    if signers is None or metadata is None:
        raise RuleViolation(f"Active signers of {project} are incomplete")

    def sigs(path: str) -> SignaturesFile:
        raw = view.read(layout.signatures_path(path))
        return SignaturesFile.empty() if raw is None else SignaturesFile.from_bytes(raw)

    return HistoryEntry(
        obsoleted_at=format_rfc3339(now),
        signers_file=SignersFile.parse(signers),
        signatures=sigs(sf),
        metadata=SignersMetadata.from_bytes(metadata),
        metadata_signatures=sigs(md),
    )


def append(raw: bytes | None, entry: HistoryEntry) -> bytes:
    history: SignersHistory = _read_history(raw).with_entry(entry)
    return history.to_bytes()


def last_history_signers(view: TreeView, project: str) -> SignersFile | None:
    history = _read_history(view.read(layout.history_path(project)))
    if not history.entries:
        return None
    return history.entries[-1].signers_file


def check_metadata(raw: bytes, signers: bytes) -> None:
    """The metadata parses and records the SHA-512 of exactly these signers-file bytes."""
    if not SignersMetadata.from_bytes(raw).matches(signers):
        raise RuleViolation("Metadata content hash does not match the signers file")


def check_index(raw: bytes) -> None:
    ReleaseIndex.from_bytes(raw)


def revocation_fields(raw: bytes) -> tuple[bytes, PublicKey, int]:
    """``(subject_digest, initiator, timestamp as Unix seconds)`` of a revocation document."""
    doc = RevocationDocument.from_bytes(raw)
    return doc.subject_digest, doc.initiator, to_unix(doc.timestamp_dt)
