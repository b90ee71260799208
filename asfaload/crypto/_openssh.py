"""OpenSSH ed25519 keys, as ``ssh-keygen -t ed25519`` writes them, used as asfaload ed25519 keys.

An ``ssh-ed25519`` key is a plain Ed25519 key, so it signs asfaload digests exactly as our own
ed25519 keys do (plain Ed25519 over the 64 digest bytes); its key string is
``ed25519:<base64 of the 32 public-key bytes>``. Nothing SSH-specific (SSHSIG, namespaces) is
involved: only the key material is taken from the OpenSSH files.

- Public key line (``id_ed25519.pub``, one line of ``https://github.com/<user>.keys``):
  ``ssh-ed25519 <base64 blob> [comment]``, blob = string "ssh-ed25519" + string key (32 bytes),
  each string a 4-byte big-endian length and its bytes (RFC 4253, section 6.6; RFC 8709).
- Private key file: ``-----BEGIN OPENSSH PRIVATE KEY-----``, base64 of
  ``"openssh-key-v1\\0"`` + string cipher + string kdf + string kdf options + uint32 key count +
  string public key blob (per key) + string private section (encrypted unless cipher "none";
  kdf "bcrypt" with options string salt + uint32 rounds). The layout is OpenSSH's PROTOCOL.key.

The header is read here, so the key type, the public key and whether a passphrase is needed are
known before any prompt; the private section is decrypted by the ``cryptography`` library's
``load_ssh_private_key`` (bcrypt-pbkdf via the ``bcrypt`` package).

Every other SSH key type (rsa, dss, ecdsa, security keys ``sk-…``, certificates) is refused with
one line: asfaload signatures are plain Ed25519, which only ``ssh-ed25519`` keys make.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass

from ..errors import KeyFormatError, PasswordError, UnsupportedAlgorithmError, WrongPasswordError

SSH_ED25519 = "ssh-ed25519"
PRIVATE_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----"
PRIVATE_END = "-----END OPENSSH PRIVATE KEY-----"
_AUTH_MAGIC = b"openssh-key-v1\x00"
# bcrypt-pbkdf costs about 20 ms per round here; ssh-keygen writes 16 by default and guides
# suggest 100. A file asking for more than this would make loading it look like a hang.
MAX_BCRYPT_ROUNDS = 1000
# Ciphers whose authentication tag OpenSSH appends after the private section.
_AEAD_TAG_LEN = {"aes256-gcm@openssh.com": 16, "chacha20-poly1305@openssh.com": 16}
# Key types OpenSSH names, so that "ssh-rsa AAAA…" is recognised as an SSH key (and refused
# with its type) rather than reported as an unknown key string.
_KEY_TYPE_RE = re.compile(r"^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9-]+@openssh\.com)\S*$")


def _refuse_type(key_type: str) -> UnsupportedAlgorithmError:
    shown = key_type[:60]
    if key_type.startswith("sk-"):
        return UnsupportedAlgorithmError(
            f"Unsupported SSH key type {shown}: security-key (FIDO) keys cannot make plain "
            "Ed25519 signatures; use an ssh-ed25519 key"
        )
    return UnsupportedAlgorithmError(
        f"Unsupported SSH key type {shown}: only ssh-ed25519 keys can be used with asfaload"
    )


class _Reader:
    """Reads the SSH wire encoding (uint32 and length-prefixed strings), failing as a key error."""

    def __init__(self, data: bytes, what: str) -> None:
        self.data = data
        self.pos = 0
        self.what = what

    def _take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise KeyFormatError(f"{self.what} is truncated or corrupted")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def uint32(self) -> int:
        value: int = struct.unpack(">I", self._take(4))[0]
        return value

    def string(self) -> bytes:
        return self._take(self.uint32())

    def text(self) -> str:
        raw = self.string()
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError as exc:
            raise KeyFormatError(f"{self.what} is corrupted (non-ASCII name)") from exc

    def end(self, tail: int = 0) -> None:
        """Check that exactly ``tail`` bytes are left (an AEAD cipher's tag follows the
        private section, outside its string)."""
        if len(self.data) - self.pos != tail:
            raise KeyFormatError(f"{self.what} has trailing bytes")


def _ed25519_from_blob(blob: bytes, what: str) -> bytes:
    """The 32 key bytes of an ``ssh-ed25519`` public key blob; other types are refused."""
    r = _Reader(blob, what)
    key_type = r.text()
    if key_type != SSH_ED25519:
        raise _refuse_type(key_type)
    key = r.string()
    r.end()
    if len(key) != 32:
        raise KeyFormatError(f"{what} does not hold a 32-byte Ed25519 key")
    return key


# --- public key lines -------------------------------------------------------------------------
def looks_like_public_key_line(text: str) -> bool:
    """Whether ``text`` starts like an OpenSSH public key line (``<type> <base64>…``)."""
    first = text.strip().split(None, 1)
    return bool(first) and _KEY_TYPE_RE.match(first[0]) is not None


def parse_public_key_line(text: str) -> bytes:
    """The 32 Ed25519 key bytes of ``ssh-ed25519 <base64> [comment]``."""
    parts = text.strip().split(None, 2)
    key_type = parts[0] if parts else ""
    if key_type != SSH_ED25519:
        raise _refuse_type(key_type)
    if len(parts) < 2:
        raise KeyFormatError("OpenSSH public key line has no key after its type")
    try:
        blob = base64.b64decode(parts[1].encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise KeyFormatError("OpenSSH public key is not valid base64") from exc
    return _ed25519_from_blob(blob, "OpenSSH public key")


# --- private key files ------------------------------------------------------------------------
def is_private_key_text(text: str) -> bool:
    return text.lstrip().startswith(PRIVATE_BEGIN)


@dataclass(frozen=True)
class PrivateKeyHeader:
    """What the unencrypted part of an OpenSSH private key file tells."""

    public_key: bytes  # the 32 Ed25519 public-key bytes
    cipher: str
    kdf: str
    rounds: int  # bcrypt rounds; 0 when unencrypted

    @property
    def encrypted(self) -> bool:
        return self.cipher != "none"


def _armored_body(text: str) -> bytes:
    lines = [line.strip() for line in text.strip().splitlines()]
    if not lines or lines[0] != PRIVATE_BEGIN or lines[-1] != PRIVATE_END:
        raise KeyFormatError("OpenSSH private key file is truncated (no END line)")
    try:
        return base64.b64decode("".join(lines[1:-1]).encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise KeyFormatError("OpenSSH private key is not valid base64") from exc


def parse_private_key_header(text: str) -> PrivateKeyHeader:
    """Check an OpenSSH private key file up to its private section: one ``ssh-ed25519`` key,
    a cipher and kdf we can read, bounded kdf cost."""
    what = "OpenSSH private key"
    data = _armored_body(text)
    if not data.startswith(_AUTH_MAGIC):
        raise KeyFormatError(f"{what} has a bad magic (not openssh-key-v1)")
    r = _Reader(data[len(_AUTH_MAGIC) :], what)
    cipher, kdf, kdf_options = r.text(), r.text(), r.string()
    count = r.uint32()
    if count != 1:
        raise KeyFormatError(f"{what} file holds {count} keys; exactly one is supported")
    public_key = _ed25519_from_blob(r.string(), what)
    r.string()  # the private section, decrypted and checked by the cryptography library
    r.end(_AEAD_TAG_LEN.get(cipher, 0))
    rounds = 0
    if cipher == "none":
        if kdf != "none" or kdf_options:
            raise KeyFormatError(f"{what} is corrupted (a kdf without a cipher)")
    else:
        if kdf != "bcrypt":
            raise UnsupportedAlgorithmError(
                f"Unsupported key derivation {kdf[:40]!r} in {what} (expected bcrypt)"
            )
        opts = _Reader(kdf_options, f"{what} kdf options")
        opts.string()  # salt
        rounds = opts.uint32()
        opts.end()
        if not 1 <= rounds <= MAX_BCRYPT_ROUNDS:
            raise UnsupportedAlgorithmError(
                f"{what} asks for {rounds} bcrypt rounds (accepted: 1..{MAX_BCRYPT_ROUNDS})"
            )
    return PrivateKeyHeader(public_key=public_key, cipher=cipher, kdf=kdf, rounds=rounds)


def decrypt_private_key(text: str, password: str | None) -> tuple[PrivateKeyHeader, bytes]:
    """(header, 32-byte Ed25519 seed) of an OpenSSH private key file. ``password`` is used only
    when the file is encrypted (a passphrase-protected key needs one)."""
    header = parse_private_key_header(text)
    if header.encrypted and password is None:
        raise PasswordError("This OpenSSH key is protected by a passphrase: one is required")
    # Imported here: only OpenSSH keys pay for loading the cryptography library.
    from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_ssh_private_key

    secret = password.encode("utf-8") if header.encrypted and password is not None else None
    try:
        key = load_ssh_private_key(text.strip().encode("ascii") + b"\n", secret)
    except UnsupportedAlgorithm as exc:
        raise UnsupportedAlgorithmError(
            f"Cannot read this OpenSSH key (cipher {header.cipher[:40]!r}); re-encrypt it with "
            "ssh-keygen -p -Z aes256-ctr -f KEY"
        ) from exc
    except (ValueError, InvalidTag) as exc:
        # The private section starts with two equal check integers: a wrong passphrase decrypts
        # them to different values, which the library reports as a broken checksum (or, with
        # an AEAD cipher, the tag does not verify).
        if header.encrypted:
            raise WrongPasswordError("Wrong passphrase for that OpenSSH key") from exc
        raise KeyFormatError("OpenSSH private key is corrupted") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFormatError("OpenSSH private key does not hold an Ed25519 key")
    seed = key.private_bytes_raw()
    pub = key.public_key().public_bytes_raw()
    if pub != header.public_key:
        raise KeyFormatError("OpenSSH private key is inconsistent with its public key")
    return header, seed
