"""The release index ``asfaload.index.json``: what a release publishes and the digest of each file.

Format (camelCase keys)::

    {
      "mirroredOn": "2026-02-01T10:00:00Z",
      "publishedOn": "2024-01-01T00:00:00Z",
      "version": 1,
      "publishedFiles": [
        {"fileName": "tool.tar.gz", "algo": "Sha256",
         "source": "https://github.com/o/r/releases/download/v1/tool.tar.gz", "hash": "<hex>"}
      ]
    }

Public API
----------
- :class:`PublishedFile` ``(file_name, algo, source, hash)``: ``algo`` is one of :data:`ALGOS`
  (``Sha256``, ``Sha512``, ``Sha1``, ``Md5``); ``hash`` is hex of the matching length (stored
  lower-case); ``digest`` gives the raw bytes. Only ``Sha256``/``Sha512`` are
  :data:`ACCEPTED_DOWNLOAD_ALGOS` for verifying a download.
- :class:`ReleaseIndex` ``(mirrored_on, published_on, published_files, version=1)``: the two dates
  are RFC 3339 strings (validated, kept verbatim); file names are unique. ``from_bytes`` keeps
  ``raw`` (the signed bytes); ``create(...)`` builds a new index whose ``raw`` is ``to_bytes()``
  (pretty JSON, 2-space indent, trailing newline, the field order above). ``find(file_name)``.

Errors are :class:`~asfaload.errors.FormatError` (``Invalid release index: …``).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import AsfaloadError, FormatError
from . import _json
from .timestamps import format_rfc3339, parse_rfc3339

ALGOS: Mapping[str, int] = {"Sha256": 64, "Sha512": 128, "Sha1": 40, "Md5": 32}
ACCEPTED_DOWNLOAD_ALGOS = ("Sha256", "Sha512")
INDEX_VERSION = 1
_FILE_FIELDS = ("mirroredOn", "publishedOn", "version", "publishedFiles")
_ENTRY_FIELDS = ("fileName", "algo", "source", "hash")


def _err(message: str) -> FormatError:
    return FormatError(f"Invalid release index: {message}")


@dataclass(frozen=True)
class PublishedFile:
    file_name: str
    algo: str
    source: str
    hash: str
    unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)

    def __post_init__(self) -> None:
        for name in ("file_name", "algo", "source", "hash"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise _err(f"{name} must be a string, got {_json.type_name(value)}")
        if not self.file_name or any(ord(c) < 0x20 or c == "\x7f" for c in self.file_name):
            raise _err(f"invalid file name {self.file_name[:80]!r}")
        if self.algo not in ALGOS:
            raise _err(f"unsupported algo {self.algo[:40]!r} (expected one of {', '.join(ALGOS)})")
        want = ALGOS[self.algo]
        if len(self.hash) != want or any(c not in string.hexdigits for c in self.hash):
            raise _err(f"{self.file_name[:80]}: {self.algo} hash must be {want} hex digits")
        object.__setattr__(self, "hash", self.hash.lower())
        if not self.source:
            raise _err(f"{self.file_name[:80]}: source must not be empty")
        object.__setattr__(
            self,
            "unrecognized",
            _json.freeze_unrecognized(self.unrecognized, _ENTRY_FIELDS, _err, "published file"),
        )

    @property
    def digest(self) -> bytes:
        return bytes.fromhex(self.hash)

    @classmethod
    def from_dict(cls, obj: object, where: str = "published file") -> PublishedFile:
        d = _json.as_object(obj, _err, where)
        name, algo, source, digest = (
            _json.as_str(_json.require(d, k, _err, where), _err, f"{where}.{k}")
            for k in _ENTRY_FIELDS
        )
        return cls(name, algo, source, digest, _json.unrecognized(d, _ENTRY_FIELDS))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "fileName": self.file_name,
            "algo": self.algo,
            "source": self.source,
            "hash": self.hash,
        }
        out.update(self.unrecognized)
        return out


@dataclass(frozen=True)
class ReleaseIndex:
    mirrored_on: str
    published_on: str
    published_files: tuple[PublishedFile, ...]
    version: int = INDEX_VERSION
    raw: bytes = b""
    unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)

    def __post_init__(self) -> None:
        v = self.version
        if isinstance(v, bool) or not isinstance(v, int):
            raise _err(f"version must be an integer, got {_json.type_name(v)}")
        if v != INDEX_VERSION:
            raise _err(f"unsupported version {v} (expected {INDEX_VERSION})")
        for name, label in (("mirrored_on", "mirroredOn"), ("published_on", "publishedOn")):
            try:
                parse_rfc3339(getattr(self, name))
            except AsfaloadError as exc:
                raise _err(f"{label}: {exc}") from None
        if not isinstance(self.published_files, list | tuple):
            raise _err("publishedFiles must be a sequence")
        files = tuple(self.published_files)
        seen: set[str] = set()
        for f in files:
            if not isinstance(f, PublishedFile):
                raise _err(f"publishedFiles must hold PublishedFile values, not {type(f).__name__}")
            if f.file_name in seen:
                raise _err(f"file {f.file_name[:80]!r} is listed twice")
            seen.add(f.file_name)
        object.__setattr__(self, "published_files", files)
        if not isinstance(self.raw, bytes):
            raise _err("raw must be bytes")
        object.__setattr__(
            self,
            "unrecognized",
            _json.freeze_unrecognized(self.unrecognized, _FILE_FIELDS, _err, "release index"),
        )
        if not self.raw:
            object.__setattr__(self, "raw", self.to_bytes())

    def find(self, file_name: str) -> PublishedFile | None:
        return next((f for f in self.published_files if f.file_name == file_name), None)

    @classmethod
    def create(
        cls,
        files: Iterable[PublishedFile],
        mirrored_on: int | str,
        published_on: int | str | None = None,
    ) -> ReleaseIndex:
        """A new index; times are Unix seconds or RFC 3339 strings (``published_on`` defaults to
        ``mirrored_on``, as for GitLab and checksum files)."""

        def ts(t: int | str) -> str:
            return t if isinstance(t, str) else format_rfc3339(t)

        mirrored = ts(mirrored_on)
        published = mirrored if published_on is None else ts(published_on)
        return cls(mirrored, published, tuple(files))

    @classmethod
    def from_bytes(cls, raw: bytes) -> ReleaseIndex:
        return cls._from_obj(_json.loads(raw, _err), bytes(raw))

    @classmethod
    def from_dict(cls, obj: object) -> ReleaseIndex:
        _json.check_value(obj, _err)
        return cls._from_obj(obj, b"")

    @classmethod
    def _from_obj(cls, obj: object, raw: bytes) -> ReleaseIndex:
        where = "the document"
        d = _json.as_object(obj, _err, where)
        mirrored = _json.as_str(_json.require(d, "mirroredOn", _err, where), _err, "mirroredOn")
        published = _json.as_str(_json.require(d, "publishedOn", _err, where), _err, "publishedOn")
        version = _json.as_int(_json.require(d, "version", _err, where), _err, "version")
        items = _json.as_list(
            _json.require(d, "publishedFiles", _err, where), _err, "publishedFiles"
        )
        files = tuple(
            PublishedFile.from_dict(item, f"publishedFiles[{i}]") for i, item in enumerate(items)
        )
        return cls(mirrored, published, files, version, raw, _json.unrecognized(d, _FILE_FIELDS))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mirroredOn": self.mirrored_on,
            "publishedOn": self.published_on,
            "version": self.version,
            "publishedFiles": [f.to_dict() for f in self.published_files],
        }
        out.update(self.unrecognized)
        return out

    def to_bytes(self) -> bytes:
        """Canonical bytes; for a parsed index sign and store ``raw`` instead."""
        return _json.dumps_pretty(self.to_dict())
