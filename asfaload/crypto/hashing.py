"""SHA-512 digests: the 64 raw bytes are what every signature in the project covers."""

from __future__ import annotations

import hashlib
import os
import string

from ..errors import FormatError, NotFoundError, UnsupportedAlgorithmError

DIGEST_SIZE = 64
_CHUNK = 1 << 20


def sha512(data: bytes) -> bytes:
    return hashlib.sha512(data).digest()


def sha512_file(path: str | os.PathLike[str]) -> bytes:
    """Hash a file in constant memory (artifacts can be large)."""
    h = hashlib.sha512()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    except FileNotFoundError as exc:
        raise NotFoundError(f"File not found: {os.fspath(path)}") from exc
    except IsADirectoryError as exc:
        raise FormatError(f"Is a directory, not a file: {os.fspath(path)}") from exc
    except OSError as exc:
        raise FormatError(f"Cannot read {os.fspath(path)}: {exc.strerror}") from exc
    return h.digest()


def digest_string(digest: bytes) -> str:
    if len(digest) != DIGEST_SIZE:
        raise FormatError("SHA512 must be 64 bytes")
    return "sha512:" + digest.hex()


def parse_digest_string(text: str) -> bytes:
    """Parse ``sha512:<hex>``; prefix case-insensitive and hex of either case, as upstream."""
    algo, sep, hexpart = text.partition(":")
    if not sep:
        raise FormatError("Invalid format. Expected 'algo:hex_string'")
    if algo.lower() != "sha512":
        raise UnsupportedAlgorithmError(f"Unsupported hash algorithm: {algo[:40]}")
    if not hexpart or any(c not in string.hexdigits for c in hexpart):
        raise FormatError("Invalid hex in digest")
    if len(hexpart) != 2 * DIGEST_SIZE:
        raise FormatError("SHA512 must be 64 bytes")
    return bytes.fromhex(hexpart)
