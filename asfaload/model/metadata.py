"""Signers-file metadata ``asfaload.signers.json.metadata.json``: where the signers file came from.

It is signed together with the signers file, so parsed metadata keeps its exact bytes in
``raw``. Format (``Forge`` origin, the only one; there is no ``Cli`` variant)::

    {"data": {"Forge": {
        "kind": "Github" | "Gitlab" | "FileServer",
        "url": "<URL as the user gave it>",
        "verified_content": {"retrieval_url": "<URL actually fetched>",
                             "content_hash": "<lower-case hex SHA-512 of the fetched bytes>"},
        "retrieved_at": "<RFC 3339>"}}}

Public API
----------
- :class:`SignersMetadata` ``(kind, url, retrieval_url, content_hash, retrieved_at)``;
  ``SignersMetadata.create(kind, url, retrieval_url, content=<bytes> | content_hash=<hex>,
  retrieved_at=<Unix seconds or RFC 3339>)``; ``from_bytes`` (keeps ``raw``) / ``to_bytes``
  (pretty, trailing newline) / ``from_dict`` / ``to_dict``; ``retrieved_at_dt``.
- ``matches(content)`` tells whether ``content`` hashes to ``content_hash``.
- :data:`FORGE_KINDS` = ``("Github", "Gitlab", "FileServer")``.

Errors are :class:`~asfaload.errors.FormatError` (``Invalid signers metadata: …``).
"""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import AsfaloadError, FormatError
from . import _json
from .timestamps import format_rfc3339, parse_rfc3339

FORGE_KINDS = ("Github", "Gitlab", "FileServer")
_TOP_FIELDS = ("data",)
_DATA_FIELDS = ("Forge",)
_FORGE_FIELDS = ("kind", "url", "verified_content", "retrieved_at")
_VERIFIED_FIELDS = ("retrieval_url", "content_hash")


def _err(message: str) -> FormatError:
    return FormatError(f"Invalid signers metadata: {message}")


@dataclass(frozen=True)
class SignersMetadata:
    kind: str
    url: str
    retrieval_url: str
    content_hash: str
    retrieved_at: str
    raw: bytes = b""
    # Unknown fields at each level: the top object, "data", "Forge", "verified_content".
    unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)
    data_unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)
    forge_unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)
    verified_unrecognized: Mapping[str, Any] = field(
        default_factory=_json.empty_mapping, hash=False
    )
    retrieved_at_dt: datetime = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("kind", "url", "retrieval_url", "content_hash", "retrieved_at"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise _err(f"{name} must be a string, got {_json.type_name(value)}")
        if self.kind not in FORGE_KINDS:
            raise _err(f"unknown forge kind {self.kind[:40]!r} (expected {', '.join(FORGE_KINDS)})")
        if not self.url:
            raise _err("url must not be empty")
        if not self.retrieval_url:
            raise _err("retrieval_url must not be empty")
        h = self.content_hash
        if len(h) != 128 or any(c not in string.hexdigits for c in h) or h != h.lower():
            raise _err("content_hash must be 128 lower-case hex digits (SHA-512)")
        try:
            when = parse_rfc3339(self.retrieved_at)
        except AsfaloadError as exc:
            raise _err(f"retrieved_at: {exc}") from None
        object.__setattr__(self, "retrieved_at_dt", when)
        for attr, known, where in (
            ("unrecognized", _TOP_FIELDS, "metadata"),
            ("data_unrecognized", _DATA_FIELDS, "data"),
            ("forge_unrecognized", _FORGE_FIELDS, "Forge"),
            ("verified_unrecognized", _VERIFIED_FIELDS, "verified_content"),
        ):
            frozen = _json.freeze_unrecognized(getattr(self, attr), known, _err, where)
            object.__setattr__(self, attr, frozen)
        if not isinstance(self.raw, bytes):
            raise _err("raw must be bytes")
        if not self.raw:
            object.__setattr__(self, "raw", self.to_bytes())

    def matches(self, content: bytes) -> bool:
        return hmac.compare_digest(hashlib.sha512(content).hexdigest(), self.content_hash)

    @classmethod
    def create(
        cls,
        kind: str,
        url: str,
        retrieval_url: str,
        *,
        retrieved_at: int | str,
        content: bytes | None = None,
        content_hash: str | None = None,
    ) -> SignersMetadata:
        """New metadata; give exactly one of ``content`` (hashed here) or ``content_hash``."""
        if (content is None) == (content_hash is None):
            raise _err("give exactly one of content or content_hash")
        if content is not None:
            content_hash = hashlib.sha512(content).hexdigest()
        assert content_hash is not None
        when = retrieved_at if isinstance(retrieved_at, str) else format_rfc3339(retrieved_at)
        return cls(kind, url, retrieval_url, content_hash, when)

    @classmethod
    def from_bytes(cls, raw: bytes) -> SignersMetadata:
        return cls._from_obj(_json.loads(raw, _err), bytes(raw))

    @classmethod
    def from_dict(cls, obj: object) -> SignersMetadata:
        _json.check_value(obj, _err)
        return cls._from_obj(obj, b"")

    @classmethod
    def _from_obj(cls, obj: object, raw: bytes) -> SignersMetadata:
        top = _json.as_object(obj, _err, "the document")
        data = _json.as_object(_json.require(top, "data", _err, "the document"), _err, "data")
        if "Forge" not in data:
            raise _err("data must hold a 'Forge' origin")
        forge = _json.as_object(data["Forge"], _err, "data.Forge")
        where = "data.Forge"

        def text(obj: Mapping[str, Any], key: str, at: str) -> str:
            return _json.as_str(_json.require(obj, key, _err, at), _err, f"{at}.{key}")

        verified = _json.as_object(
            _json.require(forge, "verified_content", _err, where),
            _err,
            f"{where}.verified_content",
        )
        vwhere = f"{where}.verified_content"
        return cls(
            kind=text(forge, "kind", where),
            url=text(forge, "url", where),
            retrieval_url=text(verified, "retrieval_url", vwhere),
            content_hash=text(verified, "content_hash", vwhere),
            retrieved_at=text(forge, "retrieved_at", where),
            raw=raw,
            unrecognized=_json.unrecognized(top, _TOP_FIELDS),
            data_unrecognized=_json.unrecognized(data, _DATA_FIELDS),
            forge_unrecognized=_json.unrecognized(forge, _FORGE_FIELDS),
            verified_unrecognized=_json.unrecognized(verified, _VERIFIED_FIELDS),
        )

    def to_dict(self) -> dict[str, Any]:
        verified: dict[str, Any] = {
            "retrieval_url": self.retrieval_url,
            "content_hash": self.content_hash,
        }
        verified.update(self.verified_unrecognized)
        forge: dict[str, Any] = {
            "kind": self.kind,
            "url": self.url,
            "verified_content": verified,
            "retrieved_at": self.retrieved_at,
        }
        forge.update(self.forge_unrecognized)
        data: dict[str, Any] = {"Forge": forge}
        data.update(self.data_unrecognized)
        out: dict[str, Any] = {"data": data}
        out.update(self.unrecognized)
        return out

    def to_bytes(self) -> bytes:
        """Canonical bytes; for parsed metadata sign and store ``raw`` instead."""
        return _json.dumps_pretty(self.to_dict())
