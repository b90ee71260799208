"""Builders shared by the TUF tests (no tests here): keys, python-tuf roots, trees that apply changes."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from securesystemslib.signer._utils import compute_default_keyid

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


def twin_key(signer: CryptoSigner, how: str) -> SSlibKey:
    """``signer``'s public key spelt another way, so under another keyid: the same key material.

    ``upper``: the hex in upper case; ``extra``: an extra ``keyval`` field; ``pem``: the key as
    a PEM SubjectPublicKeyInfo instead of raw hex.
    """
    public = signer.public_key.keyval["public"]
    if how == "upper":
        keyval = {"public": public.upper()}
    elif how == "extra":
        keyval = {"public": public, "x-note": "twin"}
    elif how == "pem":
        pem = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public)).public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        )
        keyval = {"public": pem.decode()}
    else:
        raise ValueError(how)
    keytype, scheme = signer.public_key.keytype, signer.public_key.scheme
    keyid = compute_default_keyid(keytype, scheme, keyval)
    assert keyid != signer.public_key.keyid
    return SSlibKey(keyid, keytype, scheme, keyval)


def twin_root(
    version: int, holder: CryptoSigner, how: str, online: dict[str, SSlibKey], **kw: Any
) -> tuple[Root, SSlibKey]:
    """A root of threshold 2 whose two root keys are ``holder``'s key under two keyids."""
    root = make_root(version, [holder], 1, online, **kw)
    twin = twin_key(holder, how)
    root.add_key(twin, "root")
    root.roles["root"].threshold = 2
    return root, twin


def signed_by_twins(root: Root, holder: CryptoSigner, twin: SSlibKey) -> dict[str, Any]:
    """``root`` signed by ``holder`` alone, its one signature given under both keyids."""
    doc = signed_doc(root, [holder])
    doc["signatures"].append({"keyid": twin.keyid, "sig": doc["signatures"][0]["sig"]})
    return doc
