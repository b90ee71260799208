"""TUF admin users, their password hashes and their JWTs (FaynoSync's login model), kept under ``private/``.

Users live in ``<private>/tuf/users.json`` as Argon2id hashes (libsodium's encoded form, which
carries its own cost parameters, so cheap test hashes and production hashes verify alike). The
HS256 secret is generated on first use into ``<private>/tuf/jwt.secret``. Nothing here enters
the mirror.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import nacl.exceptions
import nacl.pwhash

from ..errors import AuthenticationError, ConflictError, NotAuthorizedError, PasswordError
from .documents import validate_username
from .files import private_file, tuf_private_dir, write_private

TOKEN_LIFETIME = 24 * 3600
ROLES = ("admin", "team")
# libsodium's "interactive" Argon2id costs: 2 passes over 64 MiB.
OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE


@dataclass(frozen=True)
class User:
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class Accounts:
    """Users and tokens of one data dir."""

    def __init__(self, private_dir: Path) -> None:
        self._base = tuf_private_dir(private_dir)
        self._users = self._base / "users.json"
        self._secret = self._base / "jwt.secret"
        self._dummy_hash: bytes | None = None

    # --- users ---------------------------------------------------------------------------------
    def add_user(
        self,
        username: str,
        password: str,
        *,
        role: str = "admin",
        opslimit: int = OPSLIMIT,
        memlimit: int = MEMLIMIT,
    ) -> User:
        validate_username(username)
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        if len(password) < 8:
            raise PasswordError("The password must have at least 8 characters")
        digest = nacl.pwhash.argon2id.str(password.encode(), opslimit=opslimit, memlimit=memlimit)
        self._base.mkdir(parents=True, exist_ok=True, mode=0o700)
        with os.fdopen(private_file(self._base / "users.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            users = self._load()
            if username in users:
                raise ConflictError(f"user already exists: {username}")
            users[username] = {"hash": digest.decode("ascii"), "role": role}
            write_private(self._users, json.dumps(users, indent=2).encode() + b"\n")
        return User(username, role)

    def user(self, username: str) -> User | None:
        entry = self._load().get(username)
        if not isinstance(entry, dict):
            return None
        return User(username, str(entry.get("role", "team")))

    def check_password(self, username: str, password: str) -> User:
        """The user if the password is right; one message for unknown users and bad passwords."""
        entry = self._load().get(username)
        stored = entry.get("hash") if isinstance(entry, dict) else None
        if not isinstance(stored, str):
            # Spend the same effort as for a real user, so timing does not reveal usernames.
            _verify(self._dummy(), password)
            raise AuthenticationError("invalid username or password")
        if not _verify(stored.encode("ascii"), password):
            raise AuthenticationError("invalid username or password")
        return User(username, str(entry.get("role", "team")))  # type: ignore[union-attr]

    def _dummy(self) -> bytes:
        if self._dummy_hash is None:
            self._dummy_hash = nacl.pwhash.argon2id.str(
                secrets.token_bytes(16), opslimit=OPSLIMIT, memlimit=MEMLIMIT
            )
        return self._dummy_hash

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self._users.read_text())
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    # --- tokens --------------------------------------------------------------------------------
    def secret(self) -> bytes:
        """The HS256 key, created on first use (first writer wins)."""
        try:
            return bytes.fromhex(self._secret.read_text().strip())
        except FileNotFoundError:
            pass
        self._base.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(self._secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self.secret()
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        return self.secret()

    def issue_token(self, user: User, now: int | None = None) -> str:
        issued = int(time.time()) if now is None else now
        claims = {"username": user.username, "exp": issued + TOKEN_LIFETIME}
        return jwt.encode(claims, self.secret(), algorithm="HS256")

    def authenticate(self, authorization: str | None) -> User:
        """The admin behind ``Authorization: Bearer <jwt>``, with FaynoSync's 401/403 messages."""
        if not authorization:
            raise AuthenticationError("missing authorization header")
        parts = authorization.split()
        if len(parts) != 2 or parts[0] != "Bearer":
            raise AuthenticationError("invalid token format")
        try:
            claims = jwt.decode(
                parts[1],
                self.secret(),
                algorithms=["HS256", "HS384", "HS512"],
                options={"require": ["exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthenticationError("token expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthenticationError("token not active yet") from None
        except jwt.InvalidSignatureError:
            raise AuthenticationError("invalid token signature") from None
        except jwt.MissingRequiredClaimError:
            raise AuthenticationError("invalid claims") from None
        except jwt.DecodeError:
            raise AuthenticationError("malformed token") from None
        except jwt.InvalidTokenError:
            raise AuthenticationError("invalid or expired token") from None
        username = claims.get("username")
        if not isinstance(username, str) or not username:
            raise AuthenticationError("username not found in claims")
        user = self.user(username)
        if user is None or not user.is_admin:
            raise NotAuthorizedError("Admin access required")
        return user


def _verify(stored: bytes, password: str) -> bool:
    try:
        return bool(nacl.pwhash.verify(stored, password.encode()))
    except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError):
        return False
