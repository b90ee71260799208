"""Request authentication, shared by the HTTP client (signing) and the server (verifying).

Every authenticated request carries four headers. The signature covers SHA-512 of the canonical
string ``"{timestamp}##{nonce}##{METHOD}##{target}##{body}"`` — method and request target are
signed so that a body valid for one endpoint cannot be replayed on another (upstream signs
only the body). The server accepts exactly one spelling of each value, so the bytes it verifies are the
bytes it stores: a nonce re-spelt in upper case, with braces or as ``urn:uuid:`` is refused rather
than normalised into a fresh replay.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol

from .crypto import PublicKey, SecretKey, Signature, sha512
from .errors import AsfaloadError, AuthenticationError

REPLAY_MESSAGE = "Replay attack detected: nonce already used"


def _new_owner() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class NonceClaim:
    """A verified request's nonce, to be recorded until ``expires_at`` (checked at ``now``).

    ``owner`` tells this request's row from a row left by an earlier request with the same
    nonce (a replay): random, so a replayed request never has its original's.
    """

    nonce: str
    expires_at: int
    now: int
    owner: str = field(default_factory=_new_owner)


def replay_error() -> AuthenticationError:
    return AuthenticationError(REPLAY_MESSAGE)


HEADER_TIMESTAMP = "X-asfld-timestamp"
HEADER_NONCE = "X-asfld-nonce"
HEADER_PK = "X-asfld-pk"
HEADER_SIG = "X-asfld-sig"
HEADERS = (HEADER_TIMESTAMP, HEADER_NONCE, HEADER_PK, HEADER_SIG)

MAX_AGE_SECONDS = 300  # a request may be at most 5 minutes old ...
MAX_AHEAD_SECONDS = 10  # ... and at most 10 s in the future (client clock skew)

# Lowercase, hyphenated, version 4, RFC 4122 variant: the only form uuid.uuid4() prints.
_NONCE_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
# Plain decimal seconds, no sign, no leading zero: one spelling per instant.
_TIMESTAMP_RE = re.compile(r"0|[1-9][0-9]{0,11}")
# Visible ASCII only; headers are never folded or trimmed by us.
_HEADER_VALUE_RE = re.compile(r"[\x21-\x7e]{1,1024}")


class NonceStore(Protocol):
    """Remembers nonces until they expire; shared by every worker of a server."""

    def remember(self, nonce: str, expires_at: int, now: int) -> bool:
        """Record ``nonce`` until ``expires_at``; False when it is already recorded."""
        ...


@dataclass(frozen=True)
class AuthenticatedRequest:
    """What verification proves: this key signed this exact request at ``timestamp``
    (verified at ``checked_at``)."""

    public_key: PublicKey
    timestamp: int
    nonce: str
    checked_at: int

    @cached_property
    def nonce_claim(self) -> NonceClaim:
        """The nonce to record: kept one second past the last instant its timestamp is
        accepted. One claim per request (it names the request as the nonce's owner)."""
        return NonceClaim(self.nonce, self.timestamp + MAX_AGE_SECONDS + 1, self.checked_at)


def canonical_bytes(timestamp: str, nonce: str, method: str, target: str, body: bytes) -> bytes:
    """The exact bytes whose SHA-512 digest is signed."""
    head = f"{timestamp}##{nonce}##{method.upper()}##{target}##"
    return head.encode("utf-8") + body


def request_digest(timestamp: str, nonce: str, method: str, target: str, body: bytes) -> bytes:
    return sha512(canonical_bytes(timestamp, nonce, method, target, body))


def new_nonce() -> str:
    return str(uuid.uuid4())


def sign_request(
    secret_key: SecretKey,
    method: str,
    target: str,
    body: bytes = b"",
    now: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers authenticating one request. ``target`` is the path (+ ``?query``) as sent."""
    ts = str(int(time.time()) if now is None else int(now))
    n = new_nonce() if nonce is None else nonce
    sig = secret_key.sign(request_digest(ts, n, method, target, body))
    return {
        HEADER_TIMESTAMP: ts,
        HEADER_NONCE: n,
        HEADER_PK: str(secret_key.public_key),
        HEADER_SIG: sig.to_wire(),
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise AuthenticationError("Missing authentication headers")
    if not _HEADER_VALUE_RE.fullmatch(value):
        raise AuthenticationError("Invalid authentication headers")
    return value


def parse_timestamp(value: str) -> int:
    if not _TIMESTAMP_RE.fullmatch(value):
        raise AuthenticationError("Authentication failed: Invalid timestamp format")
    return int(value)


def check_nonce(value: str) -> str:
    if not _NONCE_RE.fullmatch(value):
        raise AuthenticationError(
            "Authentication failed: Invalid nonce format (expected a lowercase hyphenated UUID v4)"
        )
    return value


def verify_request(
    headers: Mapping[str, str],
    method: str,
    target: str,
    body: bytes,
    nonces: NonceStore,
    now: int | None = None,
) -> AuthenticatedRequest:
    """Verify the signed headers of a request and record its nonce; raise AuthenticationError
    (401) otherwise.

    ``headers`` must look names up case-insensitively, or be keyed by the exact ``HEADER_*``
    names. The nonce is recorded only after the signature verifies, so nobody can burn another
    client's nonces.
    """
    auth = verify_request_signature(headers, method, target, body, now)
    claim = auth.nonce_claim
    if not nonces.remember(claim.nonce, claim.expires_at, claim.now):
        raise replay_error()
    return auth


def verify_request_signature(
    headers: Mapping[str, str],
    method: str,
    target: str,
    body: bytes,
    now: int | None = None,
) -> AuthenticatedRequest:
    """:func:`verify_request` without recording the nonce: the caller must record
    ``nonce_claim`` before acting on the request (the server's writer process does, for a
    write, in the transaction of its batch)."""
    ts_raw = _header(headers, HEADER_TIMESTAMP)
    nonce = _header(headers, HEADER_NONCE)
    pk_raw = _header(headers, HEADER_PK)
    sig_raw = _header(headers, HEADER_SIG)

    t_now = int(time.time()) if now is None else int(now)
    ts = parse_timestamp(ts_raw)
    if ts < t_now - MAX_AGE_SECONDS or ts > t_now + MAX_AHEAD_SECONDS:
        raise AuthenticationError(
            f"Timestamp validation failed: {ts} is outside the accepted window "
            f"({MAX_AGE_SECONDS} s old, {MAX_AHEAD_SECONDS} s ahead)"
        )
    check_nonce(nonce)
    try:
        public_key = PublicKey.parse(pk_raw)
    except AsfaloadError as exc:
        raise AuthenticationError("Authentication failed: Key error") from exc
    try:
        signature = Signature.from_wire(sig_raw, public_key.algorithm)
    except AsfaloadError as exc:
        raise AuthenticationError("Authentication failed: Signature error") from exc
    try:
        public_key.verify(request_digest(ts_raw, nonce, method, target, body), signature)
    except AsfaloadError as exc:
        raise AuthenticationError("Authentication failed: Signature verification failed") from exc
    return AuthenticatedRequest(public_key=public_key, timestamp=ts, nonce=nonce, checked_at=t_now)
