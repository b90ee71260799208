"""Building and signing root payloads from key files, for the ``asfaload tuf root`` commands.

Everything goes through python-tuf's ``Root``/``Metadata`` (keys added with ``add_key``, removed
with ``revoke_key``, signatures over ``signed_bytes``); nothing here spells TUF JSON by hand.
Key files are what ``tuf keygen`` writes (PKCS8 PEM private key) or prints (a TUF key dict with
its keyid), or a PEM public key, so key holders never need to hand over a private key.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from securesystemslib.signer._utils import compute_default_keyid

from ..errors import FormatError, KeyFormatError
from ._api import CryptoSigner, Key, Metadata, Root, Signer, SSlibKey
from .documents import ONLINE_ROLES, check_distinct_keys, expires_in, key_material, parse_root

MAX_ROOT_DAYS = 365


# --- key files -----------------------------------------------------------------------------------
def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise KeyFormatError(f"Cannot read key file {path}: {exc.strerror or exc}") from None


def key_from_dict(d: Any, origin: str) -> Key:
    """A TUF key dict (``keytype``, ``scheme``, ``keyval``), with an optional ``keyid`` to check."""
    if not isinstance(d, dict):
        raise KeyFormatError(f"{origin}: not a TUF key")
    d = copy.deepcopy(d)
    given = d.pop("keyid", None)
    keytype, scheme, keyval = d.get("keytype"), d.get("scheme"), d.get("keyval")
    if (
        not isinstance(keytype, str)
        or not isinstance(scheme, str)
        or not isinstance(keyval, dict)
        or not isinstance(keyval.get("public"), str)
    ):
        raise KeyFormatError(f"{origin}: not a TUF key (keytype, scheme, keyval.public)")
    computed = compute_default_keyid(keytype, scheme, keyval)
    if given is not None and given != computed:
        raise KeyFormatError(f"{origin}: keyid {given} does not match its key ({computed})")
    try:
        return Key.from_dict(computed, d)
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFormatError(f"{origin}: not a TUF key ({exc})") from None


def load_public_key(path: str | Path) -> Key:
    """The public key in a key file: PEM private or public key, or a TUF key dict (JSON)."""
    raw = _read(path)
    if raw.lstrip().startswith(b"-----BEGIN"):
        try:
            if b"PRIVATE KEY" in raw:
                return SSlibKey.from_crypto(load_pem_private_key(raw, password=None).public_key())
            return SSlibKey.from_crypto(load_pem_public_key(raw))
        except (ValueError, TypeError) as exc:
            raise KeyFormatError(f"{path}: unusable PEM key ({exc})") from None
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise KeyFormatError(f"{path}: neither a PEM key nor a TUF key dict (JSON)") from None
    return key_from_dict(doc, str(path))


def load_signer(path: str | Path) -> CryptoSigner:
    """A signer from a private key file (PKCS8 PEM, as ``tuf keygen`` writes it)."""
    raw = _read(path)
    try:
        private = load_pem_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"{path}: not an unencrypted PEM private key ({exc})") from None
    try:
        return CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))
    except (ValueError, TypeError) as exc:
        raise KeyFormatError(f"{path}: unsupported key type ({exc})") from None


def load_online_keys(path: str | Path) -> dict[str, Key]:
    """role -> key, from ``tuf online-keys --json`` output or from a root (its online roles)."""
    raw = _read(path)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise KeyFormatError(f"{path}: not JSON") from None
    if isinstance(doc, dict) and all(isinstance(doc.get(r), dict) for r in ONLINE_ROLES):
        return {r: key_from_dict(doc[r], f"{path} ({r})") for r in ONLINE_ROLES}
    try:
        root = parse_root(unwrap_root(doc)).root
    except FormatError:
        raise KeyFormatError(
            f"{path}: expected the output of `asfaload tuf online-keys --json` or a root"
        ) from None
    out: dict[str, Key] = {}
    for r in ONLINE_ROLES:
        keyids = root.roles[r].keyids
        if len(keyids) != 1:
            raise KeyFormatError(f"{path}: role {r} has {len(keyids)} keys; give one per role")
        out[r] = root.keys[keyids[0]]
    return out


def unwrap_root(doc: Any) -> Any:
    """The root document inside a server answer, or ``doc`` itself.

    Accepts ``GET /tuf/v1/metadata/sign`` (``data.metadata.root``), ``GET /tuf/v1/metadata/root``
    (``data.trusted_root``) and a bare root, so files saved from either endpoint can be used.
    """
    if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
        data = doc["data"]
        if isinstance(data.get("metadata"), dict) and "root" in data["metadata"]:
            return data["metadata"]["root"]
        if "trusted_root" in data:
            return data["trusted_root"]
    if (
        isinstance(doc, dict)
        and isinstance(doc.get("metadata"), dict)
        and "root" in doc["metadata"]
    ):
        return doc["metadata"]["root"]
    return doc


# --- building roots ------------------------------------------------------------------------------
def _check_days(days: int) -> None:
    if not 1 <= days <= MAX_ROOT_DAYS:
        raise FormatError(f"root expiry must be 1..{MAX_ROOT_DAYS} days, got {days}")


def _check_threshold(threshold: int, count: int) -> None:
    if threshold < 1:
        raise FormatError(f"root threshold must be at least 1, got {threshold}")
    if threshold > count:
        raise FormatError(f"root threshold {threshold} is above the {count} root key(s)")


def _distinct(keys: Iterable[Key]) -> list[Key]:
    """``keys`` once each; the server refuses a root listing one public key under two keyids."""
    seen: dict[bytes, Key] = {}
    for k in keys:
        material = key_material(k)
        if material in seen:
            raise FormatError(f"root key {k.keyid} is given twice")
        seen[material] = k
    return list(seen.values())


def new_root(
    root_keys: Sequence[Key],
    threshold: int,
    online: Mapping[str, Key],
    *,
    days: int,
    now: int,
    version: int = 1,
) -> Root:
    """A root naming ``root_keys`` (threshold ``threshold``) and one online key per role."""
    keys = _distinct(root_keys)
    if not keys:
        raise FormatError("a root needs at least one root key")
    _check_threshold(threshold, len(keys))
    _check_days(days)
    if version < 1:
        raise FormatError(f"root version must be at least 1, got {version}")
    root = Root(version=version, expires=expires_in(now, days), consistent_snapshot=True)
    for k in keys:
        root.add_key(k, "root")
    for role in ONLINE_ROLES:
        root.add_key(online[role], role)
    root.roles["root"].threshold = threshold
    check_distinct_keys(root)
    return root


def next_root(
    trusted: Root,
    *,
    add: Sequence[Key] = (),
    remove: Sequence[str] = (),
    threshold: int | None = None,
    online: Mapping[str, Key] | None = None,
    days: int,
    now: int,
) -> Root:
    """The successor of ``trusted``: version + 1, root keys changed, new expiry.

    ``remove`` holds keyids of root keys to drop; ``online`` replaces every online role's keys.
    Unknown fields of the trusted root are kept (python-tuf carries them in ``to_dict``).
    """
    _check_days(days)
    root = Root.from_dict(copy.deepcopy(trusted.to_dict()))
    root.version = trusted.version + 1
    root.expires = expires_in(now, days)
    root.consistent_snapshot = True
    current = set(root.roles["root"].keyids)
    for keyid in remove:
        if keyid not in current:
            raise FormatError(f"{keyid} is not a root key of version {trusted.version}")
        root.revoke_key(keyid, "root")
        current.discard(keyid)
    for k in _distinct(add):
        if k.keyid in current:
            raise FormatError(f"{k.keyid} is already a root key")
        root.add_key(k, "root")
        current.add(k.keyid)
    if not current:
        raise FormatError("the new root would have no root keys")
    if threshold is not None:
        root.roles["root"].threshold = threshold
    _check_threshold(root.roles["root"].threshold, len(current))
    if online is not None:
        for role in ONLINE_ROLES:
            for keyid in list(root.roles[role].keyids):
                root.revoke_key(keyid, role)
            root.add_key(online[role], role)
            root.roles[role].threshold = 1
    check_distinct_keys(root)
    return root


def root_document(root: Root, signers: Sequence[Signer] = ()) -> dict[str, Any]:
    """``{"signatures": [...], "signed": {...}}`` for ``root``, signed by ``signers``."""
    md = Metadata(root)
    for s in signers:
        md.sign(s, append=True)
    out: dict[str, Any] = md.to_dict()
    return out


def sign_document(doc: Mapping[str, Any], signer: Signer) -> dict[str, str]:
    """A ``{keyid, sig}`` over the canonical bytes of ``doc["signed"]``, exactly as submitted."""
    parsed = parse_root(unwrap_root(doc))
    sig: dict[str, str] = signer.sign(parsed.md.signed_bytes).to_dict()
    return sig


def add_signatures(doc: Mapping[str, Any], signers: Sequence[Signer]) -> dict[str, Any]:
    """``doc`` with signatures from ``signers`` appended (a signer already present is replaced).

    The document is copied field for field, never re-serialised through python-tuf, so
    signatures over fields python-tuf does not know stay valid.
    """
    parsed = parse_root(unwrap_root(doc))
    out = copy.deepcopy(parsed.doc)
    for s in signers:
        sig = s.sign(parsed.md.signed_bytes).to_dict()
        out["signatures"] = [x for x in out["signatures"] if x.get("keyid") != sig["keyid"]]
        out["signatures"].append(sig)
    return out
