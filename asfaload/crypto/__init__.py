"""Keys, signatures and hashing (the bottom layer; no I/O beyond key and signature files).

Everything signed in the project is the 64-byte SHA-512 digest of the content. Two algorithms:
``minisign`` (files and prehashed signatures exactly as the minisign tool) and ``ed25519``
(our Argon2id + XChaCha20-Poly1305 secret key file, plain Ed25519 signatures). See
``keys``, ``sigfile`` and the private ``_minisign`` / ``_ed25519`` modules for the formats.

Tests may set ``ASFALOAD_INSECURE_TEST_KDF_PARAMS="m,t,p"`` (e.g. ``8,1,1``) to write ed25519
secret keys with a cheap Argon2id; production default is m=65536 KiB, t=3, p=1.
"""

from __future__ import annotations

from ._ed25519 import INSECURE_KDF_ENV, PRODUCTION_PARAMS, TEST_PARAMS, Argon2Params
from .hashing import DIGEST_SIZE, digest_string, parse_digest_string, sha512, sha512_file
from .keys import (
    ALGORITHMS,
    ED25519,
    MINISIGN,
    PublicKey,
    SecretKey,
    Signature,
    check_algorithm,
    ensure_dir,
    generate_keypair_files,
    keypair_paths,
    write_new_file,
)
from .password_strength import check_password_strength, password_weakness
from .sigfile import (
    COVERS_CONTENT,
    COVERS_DIGEST,
    SignatureFile,
    parse_signature_file,
    read_signature_file,
    signature_file_text,
    verify_file,
)

__all__ = [
    "ALGORITHMS",
    "COVERS_CONTENT",
    "COVERS_DIGEST",
    "DIGEST_SIZE",
    "ED25519",
    "INSECURE_KDF_ENV",
    "MINISIGN",
    "PRODUCTION_PARAMS",
    "TEST_PARAMS",
    "Argon2Params",
    "PublicKey",
    "SecretKey",
    "Signature",
    "SignatureFile",
    "check_algorithm",
    "check_password_strength",
    "digest_string",
    "generate_keypair_files",
    "keypair_paths",
    "parse_digest_string",
    "parse_signature_file",
    "password_weakness",
    "read_signature_file",
    "sha512",
    "sha512_file",
    "signature_file_text",
    "verify_file",
    "ensure_dir",
    "write_new_file",
]
