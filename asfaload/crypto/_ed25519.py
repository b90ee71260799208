"""Ed25519 primitives and our password-protected ed25519 secret key file.

The file layout is upstream Asfaload's ed25519 private-key blob with our own magic and text
prefix, so that a file of one project is never mistaken for the other's:

    asfaload-ed25519-secret-key:<unpadded standard base64 of 143 bytes>\\n

    off len field
      0   8 magic "ASFPYKEY"
      8   1 version = 1
      9  32 Ed25519 public key (cleartext, authenticated as associated data)
     41   1 kdf id = 1 (Argon2id v1.3)
     42   4 m_cost, KiB, u32 big-endian
     46   4 t_cost, u32 BE
     50   4 p_cost, u32 BE (libsodium implements p = 1 only)
     54  16 salt
     70   1 aead id = 1 (XChaCha20-Poly1305 IETF)
     71  24 nonce
     95  32 ciphertext of the 32-byte seed
    127  16 tag
    AAD = bytes 0..70 inclusive.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.pwhash
import nacl.signing

from ..errors import (
    KeyFormatError,
    SignatureVerificationError,
    UnsupportedAlgorithmError,
    WrongPasswordError,
)
from ._encoding import b64decode, b64encode

FILE_PREFIX = "asfaload-ed25519-secret-key:"
MAGIC = b"ASFPYKEY"
VERSION = 1
KDF_ARGON2ID = 1
AEAD_XCHACHA20POLY1305 = 1
BLOB_LEN = 143
AAD_LEN = 71
# Environment variable that lets tests (never production) write keys with cheaper Argon2id
# parameters, as "m,t,p" (m in KiB). Decoding always enforces the limits below instead.
INSECURE_KDF_ENV = "ASFALOAD_INSECURE_TEST_KDF_PARAMS"


@dataclass(frozen=True)
class Argon2Params:
    m_cost_kib: int = 65536
    t_cost: int = 3
    p_cost: int = 1

    def __post_init__(self) -> None:
        # Decode limits (refuse costs an attacker could use to exhaust memory or CPU), plus
        # libsodium's own minimums.
        if not (8 <= self.m_cost_kib <= 1_048_576):
            raise KeyFormatError("Argon2id memory cost out of range (8..1048576 KiB)")
        if not (1 <= self.t_cost <= 1000):
            raise KeyFormatError("Argon2id time cost out of range (1..1000)")
        if not (1 <= self.p_cost <= 255):
            raise KeyFormatError("Argon2id parallelism out of range (1..255)")
        if self.p_cost != 1:
            raise UnsupportedAlgorithmError(
                "Argon2id with parallelism other than 1 is not supported"
            )

    @classmethod
    def from_env(cls) -> Argon2Params:
        raw = os.environ.get(INSECURE_KDF_ENV)
        if not raw:
            return cls()
        try:
            m, t, p = (int(x) for x in raw.split(","))
        except ValueError as exc:
            raise KeyFormatError(f"{INSECURE_KDF_ENV} must be 'm,t,p'") from exc
        return cls(m, t, p)


PRODUCTION_PARAMS = Argon2Params()
TEST_PARAMS = Argon2Params(8, 1, 1)


def _derive(password: str, salt: bytes, params: Argon2Params) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        32,
        password.encode("utf-8"),
        salt,
        opslimit=params.t_cost,
        memlimit=params.m_cost_kib * 1024,
    )


def public_from_seed(seed: bytes) -> bytes:
    return bytes(nacl.signing.SigningKey(seed).verify_key)


def sign(seed: bytes, message: bytes) -> bytes:
    return nacl.signing.SigningKey(seed).sign(message).signature


def verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
        raise SignatureVerificationError("Signature verification failed") from exc


def encode_secret_key(seed: bytes, password: str, params: Argon2Params) -> str:
    pk = public_from_seed(seed)
    salt = os.urandom(nacl.pwhash.argon2id.SALTBYTES)
    nonce = os.urandom(24)
    header = (
        MAGIC
        + bytes([VERSION])
        + pk
        + bytes([KDF_ARGON2ID])
        + struct.pack(">III", params.m_cost_kib, params.t_cost, params.p_cost)
        + salt
        + bytes([AEAD_XCHACHA20POLY1305])
        + nonce
    )
    assert len(header) == AAD_LEN + 24
    key = _derive(password, salt, params)
    ct = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(
        seed, header[:AAD_LEN], nonce, key
    )
    blob = header + ct
    assert len(blob) == BLOB_LEN
    return FILE_PREFIX + b64encode(blob, pad=False) + "\n"


@dataclass(frozen=True)
class Ed25519SecretKeyBlob:
    public_key: bytes
    params: Argon2Params
    salt: bytes
    nonce: bytes
    aad: bytes
    ciphertext: bytes


def parse_secret_key_text(text: str) -> Ed25519SecretKeyBlob:
    body = text.removesuffix("\n").removesuffix("\r")
    if not body.startswith(FILE_PREFIX):
        raise KeyFormatError("Not an asfaload ed25519 secret key file")
    blob = b64decode(
        body[len(FILE_PREFIX) :],
        error=KeyFormatError,
        what="Ed25519 secret key",
        allow_unpadded=True,
    )
    if len(blob) != BLOB_LEN:
        raise KeyFormatError("Ed25519 secret key has the wrong length (truncated or corrupted)")
    if blob[0:8] != MAGIC:
        raise KeyFormatError("Ed25519 secret key has a bad magic")
    if blob[8] != VERSION:
        raise UnsupportedAlgorithmError(f"Unsupported ed25519 secret key version {blob[8]}")
    if blob[41] != KDF_ARGON2ID:
        raise UnsupportedAlgorithmError("Unsupported key derivation function in ed25519 secret key")
    if blob[70] != AEAD_XCHACHA20POLY1305:
        raise UnsupportedAlgorithmError("Unsupported encryption algorithm in ed25519 secret key")
    m, t, p = struct.unpack(">III", blob[42:54])
    return Ed25519SecretKeyBlob(
        public_key=blob[9:41],
        params=Argon2Params(m, t, p),
        salt=blob[54:70],
        nonce=blob[71:95],
        aad=blob[:AAD_LEN],
        ciphertext=blob[95:],
    )


def decrypt_secret_key(blob: Ed25519SecretKeyBlob, password: str) -> bytes:
    key = _derive(password, blob.salt, blob.params)
    try:
        seed = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
            blob.ciphertext, blob.aad, blob.nonce, key
        )
    except nacl.exceptions.CryptoError as exc:
        raise WrongPasswordError(
            "Wrong password for that key (or the key file was tampered with)"
        ) from exc
    if public_from_seed(seed) != blob.public_key:
        raise KeyFormatError("Ed25519 secret key is inconsistent with its public key")
    return seed
