"""Public keys, secret keys and signatures for both algorithms, parsed and printed in one place.

Key strings: ``minisign:<56 base64>`` (a bare ``RW…`` is accepted on input) and
``ed25519:<base64 of 32 bytes>`` (padded on output; unpadded accepted). A key's identity is its
32 Ed25519 public-key bytes: keys compare and hash by them alone, so one key written under two
minisign key ids (or as both a minisign and an ed25519 string) is one signer everywhere: in
duplicate checks, thresholds, the master keys' exclusivity and authentication.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import (
    AsfaloadError,
    FormatError,
    KeyFormatError,
    NotFoundError,
    PasswordError,
    RefusingToOverwriteError,
    SignatureFormatError,
    SignatureVerificationError,
    UnsupportedAlgorithmError,
)
from . import _ed25519, _minisign, _openssh
from ._encoding import b64decode, b64encode

MINISIGN = "minisign"
ED25519 = "ed25519"
ALGORITHMS = (MINISIGN, ED25519)
# Keys and signature files are small; anything bigger is not one of ours.
_MAX_KEY_FILE = 64 * 1024


def check_algorithm(algorithm: str) -> str:
    if algorithm not in ALGORITHMS:
        raise UnsupportedAlgorithmError(
            f"Unknown algorithm {algorithm[:40]!r} (expected one of: {', '.join(ALGORITHMS)})"
        )
    return algorithm


def read_small_file(path: str | os.PathLike[str], what: str, error: type[FormatError]) -> str:
    p = os.fspath(path)
    try:
        with open(p, "rb") as fh:
            data = fh.read(_MAX_KEY_FILE + 1)
    except FileNotFoundError as exc:
        raise NotFoundError(f"{what} not found: {p}") from exc
    except IsADirectoryError as exc:
        raise error(f"{what} is a directory: {p}") from exc
    except OSError as exc:
        raise error(f"Cannot read {what.lower()} {p}: {exc.strerror}") from exc
    if len(data) > _MAX_KEY_FILE:
        raise error(f"{what} is too large: {p}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} is not UTF-8 text: {p}") from exc


@dataclass(frozen=True, eq=False)
class PublicKey:
    """A public key. ``raw`` is the 42-byte minisign blob or the 32-byte Ed25519 key; equality
    and hash are by :attr:`key_bytes` only (see the module docstring)."""

    algorithm: str
    raw: bytes

    def __post_init__(self) -> None:
        check_algorithm(self.algorithm)
        want = _minisign.PUBLIC_KEY_LEN if self.algorithm == MINISIGN else 32
        if len(self.raw) != want:
            raise KeyFormatError(f"A {self.algorithm} public key must be {want} bytes")
        if self.algorithm == MINISIGN and self.raw[:2] != _minisign.SIG_ALG:
            raise KeyFormatError("Unsupported minisign public key algorithm (expected Ed)")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self.key_bytes == other.key_bytes

    def __hash__(self) -> int:
        return hash(self.key_bytes)

    @property
    def key_bytes(self) -> bytes:
        return self.raw[10:] if self.algorithm == MINISIGN else self.raw

    @property
    def keynum(self) -> bytes:
        return self.raw[2:10] if self.algorithm == MINISIGN else b""

    @property
    def key_id(self) -> str:
        """minisign key id (16 hex digits); for ed25519 the first 8 bytes of the key in hex."""
        if self.algorithm == MINISIGN:
            return _minisign.key_id(self.keynum)
        return self.raw[:8].hex().upper()

    @property
    def bare(self) -> str:
        """The key string without its algorithm prefix."""
        return b64encode(self.raw)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.bare}"

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        if not isinstance(text, str):
            raise KeyFormatError("A public key must be a string")
        return _parse_public_key(text)

    @classmethod
    def _parse(cls, text: str) -> PublicKey:
        if text.startswith("minisign:"):
            return cls(MINISIGN, _minisign.decode_public_key(text[len("minisign:") :]))
        if text.startswith("ed25519:"):
            raw = b64decode(
                text[len("ed25519:") :],
                error=KeyFormatError,
                what="Ed25519 public key",
                allow_unpadded=True,
            )
            return cls(ED25519, raw)
        if len(text) == 56 and ":" not in text:
            # A bare minisign key (normally ``RW…``; the reference accepts any algorithm bytes).
            return cls(MINISIGN, _minisign.decode_public_key(text))
        prefix, sep, _ = text.partition(":")
        if sep and prefix.isascii() and prefix.isidentifier():
            raise UnsupportedAlgorithmError(f"Unknown key algorithm {prefix[:40]!r}")
        raise KeyFormatError("Unrecognised public key (expected minisign:RW… or ed25519:…)")

    @classmethod
    def from_input(cls, text: str) -> PublicKey:
        """A key as a person gives it: a key string, a bare minisign key, or an OpenSSH public
        key line (``ssh-ed25519 AAAA… comment``, read as the ed25519 key it is; other SSH key
        types are refused). Only people's input takes SSH lines: signers files, envelopes and
        headers keep to the key strings of :meth:`parse`."""
        if not isinstance(text, str):
            raise KeyFormatError("A public key must be a string")
        text = text.strip()
        if _openssh.looks_like_public_key_line(text):
            return cls(ED25519, _openssh.parse_public_key_line(text))
        return cls.parse(text)

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        """Parse the content of a ``.pub`` file: minisign's two lines, one key string, or one
        OpenSSH public key line (``ssh-keygen``'s ``id_ed25519.pub``)."""
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if lines and lines[0].startswith("untrusted comment:"):
            lines = lines[1:]
        if len(lines) != 1:
            raise KeyFormatError("A public key file must hold exactly one key")
        return cls.from_input(lines[0])

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> PublicKey:
        return cls.from_text(read_small_file(path, "Public key file", KeyFormatError))

    def file_text(self) -> str:
        """The ``.pub`` file: minisign's own two-line form, or the key string for ed25519."""
        if self.algorithm == MINISIGN:
            return _minisign.public_key_file_text(self.raw)
        return f"{self}\n"

    def verify(self, message: bytes, signature: Signature | str) -> None:
        """Check ``signature`` over ``message`` (normally the 64-byte SHA-512 digest)."""
        sig = signature if isinstance(signature, Signature) else Signature.from_wire(signature)
        if sig.algorithm != self.algorithm:
            raise SignatureVerificationError(
                f"A {sig.algorithm} signature cannot be verified with a {self.algorithm} key"
            )
        if sig.box is None:
            _ed25519.verify(self.key_bytes, message, sig.signature)
            return
        self.verify_minisign_box(
            sig.box, _minisign.prehash(message) if sig.box.prehashed else message
        )

    def verify_minisign_box(self, box: _minisign.SignatureBox, signed: bytes) -> None:
        """Check a minisign box whose Ed25519 input is ``signed`` (already prehashed if ``ED``)."""
        if self.algorithm != MINISIGN:
            raise SignatureVerificationError("A minisign signature needs a minisign key")
        if box.keynum != self.keynum:
            raise SignatureVerificationError(
                f"Signature key id {_minisign.key_id(box.keynum)} is different from "
                f"public key {self.key_id}"
            )
        _ed25519.verify(self.key_bytes, signed, box.signature)
        try:
            _ed25519.verify(
                self.key_bytes,
                box.signature + box.trusted_comment.encode("utf-8"),
                box.global_signature,
            )
        except SignatureVerificationError as exc:
            raise SignatureVerificationError(
                "Trusted comment signature verification failed"
            ) from exc

    def is_valid(self, message: bytes, signature: Signature | str) -> bool:
        try:
            self.verify(message, signature)
        except (SignatureVerificationError, SignatureFormatError, UnsupportedAlgorithmError):
            return False
        return True


@lru_cache(maxsize=4096)
def _parse_public_key(text: str) -> PublicKey:
    """:meth:`PublicKey.parse`, memoised by the string (a key is immutable; errors are raised
    again each time, never cached): every authenticated request parses its caller's key."""
    return PublicKey._parse(text)


@dataclass(frozen=True)
class Signature:
    """A signature. ``signature`` is the 64-byte Ed25519 signature; ``box`` the minisign box."""

    algorithm: str
    signature: bytes
    box: _minisign.SignatureBox | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_algorithm(self.algorithm)
        if len(self.signature) != 64:
            raise SignatureFormatError("An Ed25519 signature must be 64 bytes")
        if (self.algorithm == MINISIGN) != (self.box is not None):
            raise SignatureFormatError("A minisign signature needs its signature box")

    @classmethod
    def from_minisign_text(cls, text: str, *, allow_legacy: bool = False) -> Signature:
        box = _minisign.parse_signature_box(text, allow_legacy=allow_legacy)
        return cls(MINISIGN, box.signature, box)

    @classmethod
    def from_wire(cls, wire: str, algorithm: str | None = None) -> Signature:
        """Parse the JSON/header form. Only prehashed minisign signatures are accepted here."""
        if not isinstance(wire, str):
            raise SignatureFormatError("A signature must be a string")
        if algorithm is not None:
            check_algorithm(algorithm)
        if algorithm is None:
            algorithm = ED25519 if len(wire) in (86, 88) else MINISIGN
        if algorithm == ED25519:
            raw = b64decode(
                wire, error=SignatureFormatError, what="Ed25519 signature", allow_unpadded=True
            )
            if len(raw) != 64:
                raise SignatureFormatError("An Ed25519 signature must be 64 bytes")
            return cls(ED25519, raw)
        data = b64decode(wire, error=SignatureFormatError, what="Minisign signature")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SignatureFormatError("Minisign signature is not UTF-8 text") from exc
        return cls.from_minisign_text(text)

    def to_wire(self) -> str:
        if self.box is not None:
            # The box text is kept verbatim, so a signature round-trips byte for byte.
            return b64encode(self.box.text.encode("utf-8"))
        return b64encode(self.signature)

    @property
    def legacy(self) -> bool:
        return self.box is not None and not self.box.prehashed


@dataclass(frozen=True, repr=False)
class SecretKey:
    """A decrypted secret key. ``seed`` is the 32-byte Ed25519 seed; repr never shows it."""

    algorithm: str
    seed: bytes
    keynum: bytes = b""

    def __post_init__(self) -> None:
        check_algorithm(self.algorithm)
        if len(self.seed) != 32:
            raise KeyFormatError("An Ed25519 seed must be 32 bytes")
        if self.algorithm == MINISIGN and len(self.keynum) != _minisign.KEYNUM_LEN:
            raise KeyFormatError("A minisign key needs an 8-byte key number")

    def __repr__(self) -> str:
        return f"SecretKey({self.algorithm}, public={self.public_key})"

    @classmethod
    def generate(cls, algorithm: str = MINISIGN) -> SecretKey:
        check_algorithm(algorithm)
        keynum = os.urandom(_minisign.KEYNUM_LEN) if algorithm == MINISIGN else b""
        return cls(algorithm, os.urandom(32), keynum)

    @property
    def public_key(self) -> PublicKey:
        pk = _ed25519.public_from_seed(self.seed)
        if self.algorithm == MINISIGN:
            return PublicKey(MINISIGN, _minisign.SIG_ALG + self.keynum + pk)
        return PublicKey(ED25519, pk)

    def sign(self, message: bytes, *, trusted_comment: str | None = None) -> Signature:
        """Sign ``message`` (normally the 64-byte digest); minisign signatures are prehashed."""
        if self.algorithm == ED25519:
            return Signature(ED25519, _ed25519.sign(self.seed, message))
        if trusted_comment is None:
            trusted_comment = f"timestamp:{int(time.time())}"
        if "\n" in trusted_comment or "\r" in trusted_comment:
            raise FormatError("A trusted comment must be a single line")
        sig = _ed25519.sign(self.seed, _minisign.prehash(message))
        gsig = _ed25519.sign(self.seed, sig + trusted_comment.encode("utf-8"))
        text = _minisign.signature_box_text(self.keynum, sig, trusted_comment, gsig)
        return Signature.from_minisign_text(text)

    # --- files ------------------------------------------------------------------------------
    def to_text(self, password: str, *, kdf: _ed25519.Argon2Params | None = None) -> str:
        """Encrypt with ``password``. ``kdf`` overrides the ed25519 Argon2id cost (tests only)."""
        if not password:
            raise PasswordError("An empty password cannot protect a secret key")
        if self.algorithm == MINISIGN:
            sk = self.seed + _ed25519.public_from_seed(self.seed)
            return _minisign.encode_secret_key(self.keynum, sk, password)
        return _ed25519.encode_secret_key(
            self.seed, password, kdf or _ed25519.Argon2Params.from_env()
        )

    @staticmethod
    def text_needs_password(text: str) -> bool:
        """Whether loading ``text`` needs a password; a file that cannot be one of our secret
        keys is refused here, before anyone is asked for a password."""
        if text.startswith(_ed25519.FILE_PREFIX):
            return True
        if _openssh.is_private_key_text(text):
            return _openssh.parse_private_key_header(text).encrypted
        if text.startswith(_minisign.UNTRUSTED_PREFIX):
            return _minisign.parse_secret_key_text(text).encrypted
        raise _unrecognised_secret_key(text)

    @classmethod
    def needs_password(cls, path: str | os.PathLike[str]) -> bool:
        """Whether loading the key file needs a password (minisign ``-W`` keys do not)."""
        return cls.text_needs_password(read_small_file(path, "Secret key file", KeyFormatError))

    @classmethod
    def from_text(cls, text: str, password: str | None) -> SecretKey:
        """Any secret key file we read: minisign (encrypted or not), our ed25519 file, or an
        OpenSSH ``ssh-ed25519`` private key (``id_ed25519``, passphrase or not), which becomes
        an ed25519 key. ``password`` is ignored for a key that is not encrypted."""
        if _openssh.is_private_key_text(text):
            _, seed = _openssh.decrypt_private_key(text, password)
            return cls(ED25519, seed)
        if text.startswith(_ed25519.FILE_PREFIX):
            blob = _ed25519.parse_secret_key_text(text)
            if password is None:
                raise PasswordError("This secret key is encrypted: a password is required")
            return cls(ED25519, _ed25519.decrypt_secret_key(blob, password))
        if text.startswith(_minisign.UNTRUSTED_PREFIX):
            mblob = _minisign.parse_secret_key_text(text)
            keynum, sk = _minisign.decrypt_secret_key(mblob, password)
            key = cls(MINISIGN, sk[:32], keynum)
            if _ed25519.public_from_seed(key.seed) != sk[32:]:
                raise KeyFormatError("Minisign secret key is inconsistent with its public key")
            return key
        raise _unrecognised_secret_key(text)

    @classmethod
    def load(cls, path: str | os.PathLike[str], password: str | None) -> SecretKey:
        return cls.from_text(read_small_file(path, "Secret key file", KeyFormatError), password)

    def save(
        self,
        path: str | os.PathLike[str],
        password: str,
        *,
        kdf: _ed25519.Argon2Params | None = None,
    ) -> None:
        write_new_file(Path(path), self.to_text(password, kdf=kdf), mode=0o600)


def _unrecognised_secret_key(text: str) -> AsfaloadError:
    """The one-line refusal of a file that is not a secret key we read, naming what it is when
    it is a common mistake (a public key, another kind of private key)."""
    head = text.lstrip()
    if _openssh.looks_like_public_key_line(head):
        return KeyFormatError(
            "This is an OpenSSH public key: give the private key file (id_ed25519, not "
            "id_ed25519.pub)"
        )
    if head.startswith("untrusted comment:") or head.startswith(("minisign:", "ed25519:", "RW")):
        return KeyFormatError("This is a public key: give the secret key file")
    if head.startswith("-----BEGIN "):
        kind = head[len("-----BEGIN ") :].split("-----", 1)[0][:40]
        return UnsupportedAlgorithmError(
            f"Unsupported secret key format ({kind}): only minisign, asfaload ed25519 and "
            "OpenSSH ed25519 keys can sign"
        )
    return KeyFormatError(
        "Unrecognised secret key file (neither minisign, asfaload ed25519 nor OpenSSH ed25519)"
    )


def ensure_dir(path: str | os.PathLike[str]) -> None:
    """Create directory ``path`` (and its parents) if needed; a one-line error otherwise."""
    try:
        Path(path).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FormatError(f"Cannot create directory {os.fspath(path)}: {exc.strerror}") from exc


def write_new_file(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Create ``path`` exclusively: never overwrite, never leave a partial file behind."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        raise RefusingToOverwriteError(f"Refusing to overwrite existing file {path}") from exc
    except OSError as exc:
        raise FormatError(f"Cannot create {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def keypair_paths(name: str, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """(public, secret) paths of a key pair named ``name`` in ``out_dir``."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise FormatError(f"Invalid key name {name[:60]!r}: it must be a plain file name")
    sec = Path(out_dir) / name
    return sec.with_name(name + ".pub"), sec


def generate_keypair_files(
    name: str,
    out_dir: str | os.PathLike[str],
    algorithm: str,
    password: str,
    *,
    kdf: _ed25519.Argon2Params | None = None,
) -> tuple[Path, Path]:
    """Generate a key pair and write ``out_dir/name`` and ``out_dir/name.pub``.

    Refuses (and writes nothing) if either file exists. Returns (public path, secret path).
    """
    check_algorithm(algorithm)
    pub_path, sec_path = keypair_paths(name, out_dir)
    for p in (pub_path, sec_path):
        if p.exists() or p.is_symlink():
            raise RefusingToOverwriteError(f"Refusing to overwrite existing file {p}")
    key = SecretKey.generate(algorithm)
    secret_text = key.to_text(password, kdf=kdf)  # slow KDF before touching the disk
    ensure_dir(out_dir)
    write_new_file(sec_path, secret_text, mode=0o600)
    try:
        write_new_file(pub_path, key.public_key.file_text())
    except BaseException:
        sec_path.unlink(missing_ok=True)
        raise
    return pub_path, sec_path
