"""The revocation document ``X.revocation.json[.pending]``: the exact text a revoker signs.

Format (the CLI writes it pretty-printed)::

    {"timestamp": "<RFC 3339>", "subject_digest": "sha512:<hex of SHA-512(X)>",
     "initiator": "<key string>"}

plus an optional free-text ``"reason"``. ``timestamp`` may also be an integer of Unix seconds
(the REST manual's example ``{"reason": "compromised", "timestamp": 1712860800}``); other
unknown fields are tolerated and preserved. ``subject_digest`` and ``initiator`` are
*required*: a revocation that does not name the digest it revokes could be replayed against
another file, and the rules bind ``initiator`` to the submitting key.

Public API
----------
- :class:`RevocationDocument` ``(timestamp, subject_digest: bytes, initiator: PublicKey,
  reason=None)``; ``timestamp_dt`` (UTC datetime), ``subject_digest_string``
  (``sha512:<hex>``); ``from_bytes`` keeps ``raw`` — the signed bytes, to store as is;
  ``create(subject_digest, initiator, timestamp, reason=None)`` builds a new document whose
  ``raw`` is ``to_bytes()`` (pretty, trailing newline; ``timestamp`` as ``YYYY-MM-DDTHH:MM:SSZ``
  when given as Unix seconds).

Errors are :class:`~asfaload.errors.FormatError` (``Invalid revocation document: …``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..crypto import PublicKey, digest_string, parse_digest_string
from ..errors import AsfaloadError, FormatError
from . import _json
from .timestamps import format_rfc3339, parse_rfc3339

_FIELDS = ("timestamp", "subject_digest", "initiator", "reason")
MAX_REASON_LENGTH = 4096


def _err(message: str) -> FormatError:
    return FormatError(f"Invalid revocation document: {message}")


@dataclass(frozen=True)
class RevocationDocument:
    timestamp: str | int
    subject_digest: bytes
    initiator: PublicKey
    reason: str | None = None
    raw: bytes = b""
    unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)
    timestamp_dt: datetime = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        t = self.timestamp
        if isinstance(t, bool) or not isinstance(t, int | str):
            raise _err(f"timestamp must be a string or an integer, got {_json.type_name(t)}")
        try:
            when = parse_rfc3339(t) if isinstance(t, str) else parse_rfc3339(format_rfc3339(t))
        except AsfaloadError as exc:
            raise _err(f"timestamp: {exc}") from None
        object.__setattr__(self, "timestamp_dt", when.astimezone(UTC))
        if not isinstance(self.subject_digest, bytes) or len(self.subject_digest) != 64:
            raise _err("subject_digest must be the 64 bytes of a SHA-512 digest")
        if not isinstance(self.initiator, PublicKey):
            raise _err("initiator must be a public key")
        if self.reason is not None:
            if not isinstance(self.reason, str):
                raise _err(f"reason must be a string, got {_json.type_name(self.reason)}")
            if len(self.reason) > MAX_REASON_LENGTH:
                raise _err(f"reason is longer than {MAX_REASON_LENGTH} characters")
        if not isinstance(self.raw, bytes):
            raise _err("raw must be bytes")
        object.__setattr__(
            self,
            "unrecognized",
            _json.freeze_unrecognized(self.unrecognized, _FIELDS, _err, "revocation document"),
        )
        if not self.raw:
            object.__setattr__(self, "raw", self.to_bytes())

    @property
    def subject_digest_string(self) -> str:
        return digest_string(self.subject_digest)

    @classmethod
    def create(
        cls,
        subject_digest: bytes,
        initiator: PublicKey,
        timestamp: int | str,
        reason: str | None = None,
    ) -> RevocationDocument:
        """A new document; an integer ``timestamp`` (Unix seconds) is written as RFC 3339."""
        ts = timestamp if isinstance(timestamp, str) else format_rfc3339(timestamp)
        return cls(ts, subject_digest, initiator, reason)

    @classmethod
    def from_bytes(cls, raw: bytes) -> RevocationDocument:
        return cls._from_obj(_json.loads(raw, _err), bytes(raw))

    @classmethod
    def from_dict(cls, obj: object) -> RevocationDocument:
        _json.check_value(obj, _err)
        return cls._from_obj(obj, b"")

    @classmethod
    def _from_obj(cls, obj: object, raw: bytes) -> RevocationDocument:
        where = "the document"
        d = _json.as_object(obj, _err, where)
        ts = _json.require(d, "timestamp", _err, where)
        if isinstance(ts, bool) or not isinstance(ts, int | str):
            raise _err(f"timestamp must be a string or an integer, got {_json.type_name(ts)}")
        digest_text = _json.as_str(
            _json.require(d, "subject_digest", _err, where), _err, "subject_digest"
        )
        try:
            digest = parse_digest_string(digest_text)
        except AsfaloadError as exc:
            raise _err(f"subject_digest: {exc}") from None
        key_text = _json.as_str(_json.require(d, "initiator", _err, where), _err, "initiator")
        try:
            initiator = PublicKey.parse(key_text)
        except AsfaloadError as exc:
            raise _err(f"initiator: {exc}") from None
        reason = None
        if "reason" in d and d["reason"] is not None:
            reason = _json.as_str(d["reason"], _err, "reason")
        return cls(ts, digest, initiator, reason, raw, _json.unrecognized(d, _FIELDS))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "timestamp": self.timestamp,
            "subject_digest": self.subject_digest_string,
            "initiator": str(self.initiator),
        }
        if self.reason is not None:
            out["reason"] = self.reason
        out.update(self.unrecognized)
        return out

    def to_bytes(self) -> bytes:
        """Canonical bytes; for a parsed document sign and store ``raw`` instead."""
        return _json.dumps_pretty(self.to_dict())
