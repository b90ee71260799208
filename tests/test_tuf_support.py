"""Builders shared by the TUF tests (no tests here): keys, python-tuf roots, trees that apply changes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from asfaload.rules.tree import Change, DictTree
from asfaload.tuf._api import CryptoSigner, Metadata, Root, Signer, SSlibKey
from asfaload.tuf.documents import AppRef

NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
REF = AppRef("alice", "my-app")


def key() -> CryptoSigner:
    return CryptoSigner.generate_ed25519()


def expires(days: int, now: int = NOW) -> datetime:
    return datetime.fromtimestamp(now, UTC) + timedelta(days=days)


def make_root(
    version: int,
    root_keys: list[CryptoSigner],
    threshold: int,
    online: dict[str, SSlibKey],
    *,
    days: int = 365,
    now: int = NOW,
) -> Root:
    root = Root(version=version, expires=expires(days, now), consistent_snapshot=True)
    for s in root_keys:
        root.add_key(s.public_key, "root")
    for role in ("targets", "snapshot", "timestamp"):
        root.add_key(online[role], role)
    root.roles["root"].threshold = threshold
    return root


def signed_doc(root: Root | dict[str, Any], signers: list[CryptoSigner]) -> dict[str, Any]:
    """The root as JSON with signatures from ``signers`` (dict roots keep unknown fields)."""
    signed = root if isinstance(root, dict) else root.to_dict()
    md = Metadata[Root].from_dict({"signed": copy.deepcopy(signed), "signatures": []})
    doc: dict[str, Any] = {"signatures": [], "signed": copy.deepcopy(signed)}
    for s in signers:
        doc["signatures"].append(s.sign(md.signed_bytes).to_dict())
    return doc


def sig_for(root_doc: dict[str, Any], signer: Signer) -> dict[str, str]:
    md = Metadata[Root].from_dict({"signed": copy.deepcopy(root_doc["signed"]), "signatures": []})
    out: dict[str, str] = signer.sign(md.signed_bytes).to_dict()
    return out


def apply(tree: DictTree, change: Change) -> DictTree:
    files = tree.files()
    for p in change.deletes:
        files.pop(p, None)
    files.update(change.writes)
    return DictTree(files)
