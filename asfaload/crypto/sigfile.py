"""Signature *files* for the local ``sign-file`` / ``verify-sig`` helpers.

Forms we write:
- minisign: the 4-line signature box, exactly what ``minisign -S`` writes to ``FILE.minisig``;
- ed25519: a small JSON document, ``{"format": "ed25519", "public_key": "ed25519:…",
  "signature": "<base64>"}`` plus a newline (there is no standard file form for raw Ed25519).

Forms we read: both of the above, and a bare wire string (one line, as found in a signatures
file). Decision on legacy minisign: a signature *file* may be a legacy ``Ed`` box, as
``minisign -S -l`` writes; the wire form used in JSON and headers stays prehashed-only.

What a signature file covers: our own signatures cover the 64-byte SHA-512 digest of the file.
Signatures made by the minisign tool on the file itself (``minisign -S -m FILE``, prehashed or
legacy) cover the file content. ``verify_file`` accepts either and says which one matched.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass

from ..errors import (
    FormatError,
    SignatureFormatError,
    SignatureVerificationError,
    UnsupportedAlgorithmError,
)
from . import _minisign
from .hashing import sha512_file
from .keys import ED25519, MINISIGN, PublicKey, Signature, read_small_file

COVERS_DIGEST = "sha512-digest"
COVERS_CONTENT = "file-content"
_CHUNK = 1 << 20
# Legacy minisign signs the raw message, so verifying one reads the whole file into memory.
_MAX_LEGACY_CONTENT = 1 << 30


@dataclass(frozen=True)
class SignatureFile:
    signature: Signature
    public_key: PublicKey | None = None  # named by the ed25519 JSON form


def signature_file_text(signature: Signature, public_key: PublicKey) -> str:
    if signature.box is not None:
        return signature.box.text
    doc = {"format": ED25519, "public_key": str(public_key), "signature": signature.to_wire()}
    return json.dumps(doc, indent=2) + "\n"


def parse_signature_file(text: str) -> SignatureFile:
    stripped = text.strip()
    if stripped.startswith(_minisign.UNTRUSTED_PREFIX):
        return SignatureFile(Signature.from_minisign_text(text, allow_legacy=True))
    if stripped.startswith("{"):
        try:
            doc = json.loads(stripped)
        except (ValueError, RecursionError) as exc:
            raise SignatureFormatError("Signature file is not valid JSON") from exc
        if not isinstance(doc, dict):
            raise SignatureFormatError("Signature file must be a JSON object")
        fmt, wire, key = doc.get("format"), doc.get("signature"), doc.get("public_key")
        if not isinstance(fmt, str) or not isinstance(wire, str):
            raise SignatureFormatError("Signature file needs string 'format' and 'signature'")
        if fmt not in (MINISIGN, ED25519):
            raise UnsupportedAlgorithmError(f"Unknown signature format {fmt[:40]!r}")
        pk = None
        if key is not None:
            if not isinstance(key, str):
                raise SignatureFormatError("'public_key' must be a string")
            pk = PublicKey.parse(key)
        return SignatureFile(Signature.from_wire(wire, fmt), pk)
    if stripped and "\n" not in stripped:
        return SignatureFile(Signature.from_wire(stripped))
    raise SignatureFormatError("Unrecognised signature file")


def read_signature_file(path: str | os.PathLike[str]) -> SignatureFile:
    return parse_signature_file(read_small_file(path, "Signature file", SignatureFormatError))


def _content_prehash(path: str | os.PathLike[str]) -> bytes:
    h = hashlib.blake2b(digest_size=64)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.digest()


def _content(path: str | os.PathLike[str]) -> bytes:
    if os.path.getsize(path) > _MAX_LEGACY_CONTENT:
        raise FormatError("File too large to verify a legacy minisign signature over its content")
    with open(path, "rb") as fh:
        return fh.read()


def verify_file(path: str | os.PathLike[str], sigfile: SignatureFile, key: PublicKey) -> str:
    """Verify a signature file for ``path``; return what it covers (COVERS_DIGEST/CONTENT)."""
    sig = sigfile.signature
    digest = sha512_file(path)
    try:
        key.verify(digest, sig)
        return COVERS_DIGEST
    except SignatureVerificationError as first:
        box = sig.box
        if box is None or key.algorithm != MINISIGN or box.keynum != key.keynum:
            raise first
        try:
            signed = _content_prehash(path) if box.prehashed else _content(path)
        except OSError as exc:
            raise FormatError(f"Cannot read {os.fspath(path)}: {exc.strerror}") from exc
        key.verify_minisign_box(box, signed)
        return COVERS_CONTENT
