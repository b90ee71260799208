"""The server's online keys: ed25519 keys for the timestamp, snapshot and targets roles.

Private halves live in ``<data-dir>/private/tuf/online-keys/<keyid>`` (PKCS8 PEM, 0600, one
file per key, named by keyid as FaynoSync does) and never enter the mirror. The
current set is ``online-keys.json`` (role -> keyid). A new set can be made for a rotation that
replaces the online keys; older keys stay so that apps whose root still names them keep working.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key

from ..errors import FormatError, StoreError
from ._api import CryptoSigner, Signer, SSlibKey
from .documents import ONLINE_ROLES
from .files import private_file, tuf_private_dir, write_private

_KEYID_RE = re.compile(r"^[0-9a-f]{64}$")


class OnlineKeyring:
    """The online keys kept under ``<private>/tuf``."""

    def __init__(self, private_dir: Path) -> None:
        self._base = tuf_private_dir(private_dir)
        self._keys_dir = self._base / "online-keys"
        self._current = self._base / "online-keys.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Several workers or a CLI may create the keys at once; only one must win.
        self._keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with os.fdopen(private_file(self._base / "online-keys.lock"), "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def current(self) -> dict[str, SSlibKey] | None:
        """role -> public key of the current set, or None before the first creation."""
        try:
            mapping = json.loads(self._current.read_text())
        except FileNotFoundError:
            return None
        except ValueError:
            raise StoreError("online key index is corrupt") from None
        return {role: self._load(mapping[role]).public_key for role in ONLINE_ROLES}

    def ensure(self) -> dict[str, SSlibKey]:
        """The current set, created on first use."""
        existing = self.current()
        if existing is not None:
            return existing
        with self._locked():
            existing = self.current()
            if existing is not None:
                return existing
            return self._create_set()

    def rotate(self) -> dict[str, SSlibKey]:
        """Make a fresh current set; old keys stay available for roots that still name them."""
        with self._locked():
            return self._create_set()

    def signers(self) -> dict[str, Signer]:
        """keyid -> signer for every online key this server holds."""
        out: dict[str, Signer] = {}
        if not self._keys_dir.is_dir():
            return out
        for entry in sorted(self._keys_dir.iterdir()):
            if _KEYID_RE.match(entry.name) and not entry.is_symlink():
                out[entry.name] = self._load(entry.name)
        return out

    def _create_set(self) -> dict[str, SSlibKey]:
        mapping: dict[str, str] = {}
        for role in ONLINE_ROLES:
            signer = CryptoSigner.generate_ed25519()
            keyid = signer.public_key.keyid
            write_private(self._keys_dir / keyid, signer.private_bytes, replace=False)
            mapping[role] = keyid
        write_private(self._current, json.dumps(mapping, indent=2).encode() + b"\n")
        return {role: self._load(k).public_key for role, k in mapping.items()}

    def _load(self, keyid: str) -> CryptoSigner:
        if not _KEYID_RE.match(keyid):
            raise FormatError(f"Invalid online keyid {keyid!r}")
        path = self._keys_dir / keyid
        if path.is_symlink():
            raise StoreError("online key files must not be symlinks")
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"online key {keyid} is missing") from None
        private = load_pem_private_key(pem, password=None)
        public = SSlibKey.from_crypto(private.public_key())
        if public.keyid != keyid:
            raise StoreError(f"online key file {keyid} holds key {public.keyid}")
        return CryptoSigner(private, public)


def key_json(key: SSlibKey) -> dict[str, Any]:
    """A TUF key dict plus its keyid, as ``tuf online-keys`` prints it."""
    return {**key.to_dict(), "keyid": key.keyid}


def keys_json(keys: Mapping[str, SSlibKey]) -> dict[str, dict[str, Any]]:
    return {role: key_json(keys[role]) for role in ("timestamp", "snapshot", "targets")}
