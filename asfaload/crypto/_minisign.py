"""The minisign formats, byte for byte as the ``minisign`` tool reads and writes them.

Layouts as minisign documents them (https://jedisct1.github.io/minisign/): a public key is
``"Ed" || keynum (8) || Ed25519 key (32)``; a secret key is encrypted with scrypt and carries a
BLAKE2b-256 checksum; a signature box is ``"ED"`` (prehashed) or ``"Ed"`` || keynum || the
Ed25519 signature, then a trusted comment and its global signature. This module only encodes
and decodes; Ed25519 itself lives in ``_ed25519``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass

from ..errors import (
    KeyFormatError,
    PasswordError,
    SignatureFormatError,
    UnsupportedAlgorithmError,
    WrongPasswordError,
)
from ._encoding import b64decode, b64encode

SIG_ALG = b"Ed"  # key algorithm, and the legacy (non-prehashed) signature algorithm
PREHASHED_SIG_ALG = b"ED"
KDF_SCRYPT = b"Sc"
KDF_NONE = b"\x00\x00"
CHK_BLAKE2B = b"B2"

# The parameters rust-minisign (the reference) writes: scrypt N=2^15, r=8, p=1, ~0.1 s.
OPSLIMIT = 1_048_576
MEMLIMIT = 33_554_432
# Upper bounds of the scrypt parameters we accept; minisign's own keys sit exactly at them
# (N=2^20, 1 GiB).
MAX_MEMLIMIT = 1 << 30
MAX_N_LOG2 = 20
# minisign derives p from opslimit; keys it writes have p=1. A larger p only makes a hostile key
# file burn CPU, so we refuse it.
MAX_P = 8

PUBLIC_KEY_LEN = 42
SECRET_KEY_LEN = 158
KEYNUM_LEN = 8
SIG_BLOB_LEN = 74
SECRET_KEY_COMMENT = "untrusted comment: minisign encrypted secret key"
UNTRUSTED_PREFIX = "untrusted comment: "
TRUSTED_PREFIX = "trusted comment: "
DEFAULT_SIG_COMMENT = "signature from minisign secret key"


def key_id(keynum: bytes) -> str:
    """minisign's key id: the keynum as a little-endian u64, 16 uppercase hex digits."""
    return f"{int.from_bytes(keynum, 'little'):016X}"


def public_key_file_text(pk_blob: bytes) -> str:
    return (
        f"untrusted comment: minisign public key: {key_id(pk_blob[2:10])}\n{b64encode(pk_blob)}\n"
    )


def decode_public_key(text: str) -> bytes:
    """Decode the 56-character base64 form to the 42-byte blob.

    The algorithm bytes must be ``Ed``, the only ones minisign writes in a public key: a key's
    identity is its Ed25519 bytes, and other algorithm bytes would only give one key a second
    spelling.
    """
    if len(text) != 56:
        raise KeyFormatError("A minisign public key must be 56 base64 characters")
    blob = b64decode(text, error=KeyFormatError, what="Minisign public key")
    if blob[:2] != SIG_ALG:
        raise KeyFormatError("Unsupported minisign public key algorithm (expected Ed)")
    return blob


def _scrypt_params(opslimit: int, memlimit: int) -> tuple[int, int, int]:
    """libsodium's ``pickparams`` for scryptsalsa208sha256, as minisign uses it: (log2 N, r, p)."""
    opslimit = max(opslimit, 32768)
    r = 8
    if opslimit < memlimit // 32:
        p = 1
        max_n = opslimit // (r * 4)
    else:
        max_n = memlimit // (r * 128)
    n_log2 = 1
    while n_log2 < 63 and (1 << n_log2) <= max_n // 2:
        n_log2 += 1
    if opslimit >= memlimit // 32:
        maxrp = min((opslimit // 4) // (1 << n_log2), 0x3FFFFFFF)
        p = maxrp // r
    return n_log2, r, p


def _keystream(password: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    if memlimit > MAX_MEMLIMIT:
        raise KeyFormatError("The key's scrypt memory limit exceeds 1 GiB; refusing to load it")
    n_log2, r, p = _scrypt_params(opslimit, memlimit)
    if n_log2 > MAX_N_LOG2 or p > MAX_P or p < 1:
        raise KeyFormatError("The key's scrypt parameters exceed the allowed limits")
    n = 1 << n_log2
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=128 * r * (n + p + 2) + (1 << 20),
        dklen=104,
    )


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _checksum(keynum: bytes, sk: bytes) -> bytes:
    return hashlib.blake2b(SIG_ALG + keynum + sk, digest_size=32).digest()


@dataclass(frozen=True)
class MinisignSecretKeyBlob:
    """The 158-byte binary secret key (still encrypted when ``kdf_alg`` is scrypt)."""

    kdf_alg: bytes
    salt: bytes
    opslimit: int
    memlimit: int
    enc: bytes  # keynum(8) ‖ sk(64) ‖ chk(32), XOR-encrypted unless kdf_alg is none

    @property
    def encrypted(self) -> bool:
        return self.kdf_alg != KDF_NONE


def parse_secret_key_text(text: str) -> MinisignSecretKeyBlob:
    lines = text.split("\n")
    if len(lines) < 2 or not lines[0].startswith(UNTRUSTED_PREFIX):
        raise KeyFormatError("Not a minisign secret key file (missing untrusted comment)")
    if any(line.strip() for line in lines[2:]):
        raise KeyFormatError("Unexpected trailing data in minisign secret key file")
    blob = b64decode(lines[1].rstrip("\r"), error=KeyFormatError, what="Minisign secret key")
    if len(blob) != SECRET_KEY_LEN:
        raise KeyFormatError("Minisign secret key has the wrong length (truncated or corrupted)")
    if blob[0:2] != SIG_ALG:
        raise UnsupportedAlgorithmError("Unsupported minisign key algorithm")
    kdf_alg = blob[2:4]
    if kdf_alg not in (KDF_SCRYPT, KDF_NONE):
        raise UnsupportedAlgorithmError("Unsupported encryption algorithm in minisign secret key")
    if blob[4:6] != CHK_BLAKE2B:
        raise UnsupportedAlgorithmError("Unsupported checksum algorithm in minisign secret key")
    opslimit, memlimit = struct.unpack("<QQ", blob[38:54])
    return MinisignSecretKeyBlob(kdf_alg, blob[6:38], opslimit, memlimit, blob[54:158])


def decrypt_secret_key(blob: MinisignSecretKeyBlob, password: str | None) -> tuple[bytes, bytes]:
    """Return (keynum, 64-byte sk = seed ‖ public key) after the checksum check."""
    plain = blob.enc
    if blob.encrypted:
        if password is None:
            raise PasswordError("This secret key is encrypted: a password is required")
        plain = _xor(plain, _keystream(password, blob.salt, blob.opslimit, blob.memlimit))
    keynum, sk, chk = plain[0:8], plain[8:72], plain[72:104]
    if not blob.encrypted and chk == bytes(32):
        # minisign -W (0.11) leaves the checksum zeroed on unencrypted keys; the caller still
        # checks that the seed derives the stored public key.
        return keynum, sk
    if not hmac.compare_digest(chk, _checksum(keynum, sk)):
        if blob.encrypted:
            raise WrongPasswordError("Wrong password for that key")
        raise KeyFormatError("Minisign secret key checksum mismatch (corrupted key file)")
    return keynum, sk


def encode_secret_key(keynum: bytes, sk: bytes, password: str) -> str:
    """Encrypt and encode like rust-minisign (scrypt N=2^15) in the minisign text form."""
    if not password:
        # minisign writes kdf "Sc" even without a password, making such keys unloadable
        # by the upstream client; we refuse to produce them instead.
        raise PasswordError("An empty password cannot protect a secret key")
    salt = os.urandom(32)
    plain = keynum + sk + _checksum(keynum, sk)
    enc = _xor(plain, _keystream(password, salt, OPSLIMIT, MEMLIMIT))
    blob = SIG_ALG + KDF_SCRYPT + CHK_BLAKE2B + salt + struct.pack("<QQ", OPSLIMIT, MEMLIMIT) + enc
    assert len(blob) == SECRET_KEY_LEN
    return f"{SECRET_KEY_COMMENT}\n{b64encode(blob)}\n"


@dataclass(frozen=True)
class SignatureBox:
    """A parsed minisign signature box; ``text`` keeps the exact bytes we were given."""

    untrusted_comment: str
    sig_alg: bytes
    keynum: bytes
    signature: bytes
    trusted_comment: str
    global_signature: bytes
    text: str

    @property
    def prehashed(self) -> bool:
        return self.sig_alg == PREHASHED_SIG_ALG


def parse_signature_box(text: str, *, allow_legacy: bool) -> SignatureBox:
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if len(lines) < 4:
        raise SignatureFormatError("A minisign signature needs 4 lines")
    if any(line for line in lines[4:]):
        raise SignatureFormatError("Unexpected trailing data after the minisign signature")
    uc, sig_line, tc, gsig_line = lines[:4]
    if not uc.startswith(UNTRUSTED_PREFIX):
        raise SignatureFormatError("Minisign signature: line 1 must be an untrusted comment")
    if not tc.startswith(TRUSTED_PREFIX):
        raise SignatureFormatError("Minisign signature: line 3 must be a trusted comment")
    blob = b64decode(sig_line, error=SignatureFormatError, what="Minisign signature")
    if len(blob) != SIG_BLOB_LEN:
        raise SignatureFormatError("Minisign signature has the wrong length")
    sig_alg = blob[0:2]
    if sig_alg == SIG_ALG and not allow_legacy:
        raise SignatureFormatError(
            "Legacy (non-prehashed) minisign signatures are not accepted here"
        )
    if sig_alg not in (SIG_ALG, PREHASHED_SIG_ALG):
        raise UnsupportedAlgorithmError("Unsupported minisign signature algorithm")
    gsig = b64decode(gsig_line, error=SignatureFormatError, what="Minisign global signature")
    if len(gsig) != 64:
        raise SignatureFormatError("Minisign global signature has the wrong length")
    return SignatureBox(
        untrusted_comment=uc[len(UNTRUSTED_PREFIX) :],
        sig_alg=sig_alg,
        keynum=blob[2:10],
        signature=blob[10:74],
        trusted_comment=tc[len(TRUSTED_PREFIX) :],
        global_signature=gsig,
        text=text,
    )


def signature_box_text(
    keynum: bytes, signature: bytes, trusted_comment: str, global_signature: bytes
) -> str:
    sig_blob = PREHASHED_SIG_ALG + keynum + signature
    return (
        f"{UNTRUSTED_PREFIX}{DEFAULT_SIG_COMMENT}\n{b64encode(sig_blob)}\n"
        f"{TRUSTED_PREFIX}{trusted_comment}\n{b64encode(global_signature)}\n"
    )


def prehash(message: bytes) -> bytes:
    return hashlib.blake2b(message, digest_size=64).digest()
