"""Signers history ``P/asfaload.signers.history.json`` and the signers chain served to clients.

The old signers file and its metadata are stored as base64 of their **raw bytes**, with their
signature envelopes, so anyone can re-verify every past signers file exactly as it was signed::

    {"entries": [HISTORY_ENTRY, ...]}
    HISTORY_ENTRY = {"obsoleted_at": "<RFC 3339>",
                     "signers_file": "<base64 of the raw signers file>",
                     "signatures": {"entries": {...}},           # envelope of the signers file
                     "metadata": "<base64 of the raw metadata file>",
                     "metadata_signatures": {"entries": {...}}}  # envelope of the metadata
    CURRENT_SIGNERS_INFO = HISTORY_ENTRY without "obsoleted_at"
    SIGNERS_CHAIN = {"history_entries": [HISTORY_ENTRY, ...],
                     "current_signers_info": CURRENT_SIGNERS_INFO | null}

Public API
----------
- :class:`CurrentSignersInfo` ``(signers_file: SignersFile, signatures: SignaturesFile,
  metadata: SignersMetadata, metadata_signatures: SignaturesFile)``.
- :class:`HistoryEntry`: the same four plus ``obsoleted_at`` (string, ``obsoleted_at_dt``);
  ``HistoryEntry.of(info, obsoleted_at)`` turns the active set into a history entry.
- :class:`SignersHistory` ``(entries: tuple[HistoryEntry, ...])``: ``from_bytes`` (empty or
  whitespace-only bytes read as no entries), ``to_bytes`` (pretty, trailing newline; the
  empty history is ``{"entries": []}``), ``with_entry(entry)`` appends.
- :class:`SignersChain` ``(history_entries, current_signers_info)`` with from/to dict and bytes.

The embedded files are fully parsed and validated (a history holding a malformed signers file
is itself malformed). Errors are :class:`~asfaload.errors.FormatError` with the location.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..errors import AsfaloadError, FormatError
from . import _json
from .metadata import SignersMetadata
from .signatures import SignaturesFile
from .signers import SignersFile
from .timestamps import format_rfc3339, parse_rfc3339

_INFO_FIELDS = ("signers_file", "signatures", "metadata", "metadata_signatures")
_ENTRY_FIELDS = ("obsoleted_at", *_INFO_FIELDS)
_HISTORY_FIELDS = ("entries",)
_CHAIN_FIELDS = ("history_entries", "current_signers_info")


def _history_err(message: str) -> FormatError:
    return FormatError(f"Invalid signers history: {message}")


def _chain_err(message: str) -> FormatError:
    return FormatError(f"Invalid signers chain: {message}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: object, err: _json.ErrorFactory, where: str) -> bytes:
    text = _json.as_str(value, err, where)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise err(f"{where} is not valid base64") from None


def _parse_info(
    d: Mapping[str, Any], err: _json.ErrorFactory, where: str
) -> tuple[SignersFile, SignaturesFile, SignersMetadata, SignaturesFile]:
    try:
        signers_raw = _unb64(
            _json.require(d, "signers_file", err, where), err, f"{where}.signers_file"
        )
        signers = SignersFile.parse(signers_raw)
        sigs = SignaturesFile.from_dict(_json.require(d, "signatures", err, where))
        meta_raw = _unb64(_json.require(d, "metadata", err, where), err, f"{where}.metadata")
        meta = SignersMetadata.from_bytes(meta_raw)
        meta_sigs = SignaturesFile.from_dict(_json.require(d, "metadata_signatures", err, where))
    except AsfaloadError as exc:
        if str(exc).startswith(str(err(""))):
            raise
        raise err(f"{where}: {exc}") from None
    return signers, sigs, meta, meta_sigs


def _check_info(obj: Any, err: _json.ErrorFactory) -> None:
    if not isinstance(obj.signers_file, SignersFile):
        raise err("signers_file must be a SignersFile")
    if not isinstance(obj.metadata, SignersMetadata):
        raise err("metadata must be a SignersMetadata")
    if not isinstance(obj.signatures, SignaturesFile) or not isinstance(
        obj.metadata_signatures, SignaturesFile
    ):
        raise err("signatures and metadata_signatures must be SignaturesFile values")


def _info_dict(obj: Any) -> dict[str, Any]:
    return {
        "signers_file": _b64(obj.signers_file.raw),
        "signatures": obj.signatures.to_dict(),
        "metadata": _b64(obj.metadata.raw),
        "metadata_signatures": obj.metadata_signatures.to_dict(),
    }


@dataclass(frozen=True)
class CurrentSignersInfo:
    """The active signers file, its metadata and both signature envelopes."""

    signers_file: SignersFile
    signatures: SignaturesFile
    metadata: SignersMetadata
    metadata_signatures: SignaturesFile
    unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)

    def __post_init__(self) -> None:
        _check_info(self, _chain_err)
        object.__setattr__(
            self,
            "unrecognized",
            _json.freeze_unrecognized(self.unrecognized, _INFO_FIELDS, _chain_err, "signers info"),
        )

    @classmethod
    def from_dict(cls, obj: object, where: str = "current_signers_info") -> CurrentSignersInfo:
        _json.check_value(obj, _chain_err)
        d = _json.as_object(obj, _chain_err, where)
        parts = _parse_info(d, _chain_err, where)
        return cls(*parts, unrecognized=_json.unrecognized(d, _INFO_FIELDS))

    def to_dict(self) -> dict[str, Any]:
        out = _info_dict(self)
        out.update(self.unrecognized)
        return out


@dataclass(frozen=True)
class HistoryEntry:
    """A signers file that was replaced at ``obsoleted_at``, with everything to re-verify it."""

    obsoleted_at: str
    signers_file: SignersFile
    signatures: SignaturesFile
    metadata: SignersMetadata
    metadata_signatures: SignaturesFile
    unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)
    obsoleted_at_dt: datetime = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        try:
            when = parse_rfc3339(self.obsoleted_at)
        except AsfaloadError as exc:
            raise _history_err(f"obsoleted_at: {exc}") from None
        object.__setattr__(self, "obsoleted_at_dt", when)
        _check_info(self, _history_err)
        object.__setattr__(
            self,
            "unrecognized",
            _json.freeze_unrecognized(
                self.unrecognized, _ENTRY_FIELDS, _history_err, "history entry"
            ),
        )

    @classmethod
    def of(cls, info: CurrentSignersInfo, obsoleted_at: int | str) -> HistoryEntry:
        """The history entry for ``info`` replaced at ``obsoleted_at`` (Unix seconds or RFC 3339)."""
        when = obsoleted_at if isinstance(obsoleted_at, str) else format_rfc3339(obsoleted_at)
        return cls(
            when, info.signers_file, info.signatures, info.metadata, info.metadata_signatures
        )

    @property
    def info(self) -> CurrentSignersInfo:
        return CurrentSignersInfo(
            self.signers_file, self.signatures, self.metadata, self.metadata_signatures
        )

    @classmethod
    def from_dict(
        cls, obj: object, where: str = "history entry", err: _json.ErrorFactory = _history_err
    ) -> HistoryEntry:
        _json.check_value(obj, err)
        d = _json.as_object(obj, err, where)
        when = _json.as_str(
            _json.require(d, "obsoleted_at", err, where), err, f"{where}.obsoleted_at"
        )
        parts = _parse_info(d, err, where)
        try:
            return cls(when, *parts, unrecognized=_json.unrecognized(d, _ENTRY_FIELDS))
        except AsfaloadError as exc:
            raise err(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"obsoleted_at": self.obsoleted_at, **_info_dict(self)}
        out.update(self.unrecognized)
        return out


def _entries(value: object, err: _json.ErrorFactory, name: str) -> tuple[HistoryEntry, ...]:
    if not isinstance(value, list | tuple):
        raise err(f"{name} must be a sequence of HistoryEntry values")
    entries = tuple(value)
    for e in entries:
        if not isinstance(e, HistoryEntry):
            raise err(f"{name} must hold HistoryEntry values, not {type(e).__name__}")
    return entries


@dataclass(frozen=True)
class SignersHistory:
    entries: tuple[HistoryEntry, ...] = ()
    unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", _entries(self.entries, _history_err, "entries"))
        object.__setattr__(
            self,
            "unrecognized",
            _json.freeze_unrecognized(
                self.unrecognized, _HISTORY_FIELDS, _history_err, "signers history"
            ),
        )

    def with_entry(self, entry: HistoryEntry) -> SignersHistory:
        return SignersHistory((*self.entries, entry), self.unrecognized)

    @classmethod
    def from_bytes(cls, raw: bytes) -> SignersHistory:
        if isinstance(raw, bytes | bytearray | memoryview) and _json.is_blank(bytes(raw)):
            return cls()
        return cls._from_obj(_json.loads(raw, _history_err))

    @classmethod
    def from_dict(cls, obj: object) -> SignersHistory:
        _json.check_value(obj, _history_err)
        return cls._from_obj(obj)

    @classmethod
    def _from_obj(cls, obj: object) -> SignersHistory:
        d = _json.as_object(obj, _history_err, "the document")
        items = _json.as_list(
            _json.require(d, "entries", _history_err, "the document"), _history_err, "entries"
        )
        entries = tuple(HistoryEntry.from_dict(e, f"entries[{i}]") for i, e in enumerate(items))
        return cls(entries, _json.unrecognized(d, _HISTORY_FIELDS))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"entries": [e.to_dict() for e in self.entries]}
        out.update(self.unrecognized)
        return out

    def to_bytes(self) -> bytes:
        return _json.dumps_pretty(self.to_dict())


@dataclass(frozen=True)
class SignersChain:
    """Every replaced signers set (oldest first) and the one in force, for client verification."""

    history_entries: tuple[HistoryEntry, ...] = ()
    current_signers_info: CurrentSignersInfo | None = None
    unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)

    def __post_init__(self) -> None:
        entries = _entries(self.history_entries, _chain_err, "history_entries")
        object.__setattr__(self, "history_entries", entries)
        info = self.current_signers_info
        if info is not None and not isinstance(info, CurrentSignersInfo):
            raise _chain_err("current_signers_info must be a CurrentSignersInfo or None")
        object.__setattr__(
            self,
            "unrecognized",
            _json.freeze_unrecognized(self.unrecognized, _CHAIN_FIELDS, _chain_err, "chain"),
        )

    @classmethod
    def build(
        cls, history: SignersHistory | Iterable[HistoryEntry], current: CurrentSignersInfo | None
    ) -> SignersChain:
        entries = history.entries if isinstance(history, SignersHistory) else tuple(history)
        return cls(entries, current)

    @classmethod
    def from_bytes(cls, raw: bytes) -> SignersChain:
        return cls._from_obj(_json.loads(raw, _chain_err))

    @classmethod
    def from_dict(cls, obj: object) -> SignersChain:
        _json.check_value(obj, _chain_err)
        return cls._from_obj(obj)

    @classmethod
    def _from_obj(cls, obj: object) -> SignersChain:
        where = "the document"
        d = _json.as_object(obj, _chain_err, where)
        items = _json.as_list(
            _json.require(d, "history_entries", _chain_err, where), _chain_err, "history_entries"
        )
        entries = tuple(
            HistoryEntry.from_dict(e, f"history_entries[{i}]", _chain_err)
            for i, e in enumerate(items)
        )
        raw_info = _json.require(d, "current_signers_info", _chain_err, where)
        info = None if raw_info is None else CurrentSignersInfo.from_dict(raw_info)
        return cls(entries, info, _json.unrecognized(d, _CHAIN_FIELDS))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "history_entries": [e.to_dict() for e in self.history_entries],
            "current_signers_info": (
                None if self.current_signers_info is None else self.current_signers_info.to_dict()
            ),
        }
        out.update(self.unrecognized)
        return out

    def to_bytes(self) -> bytes:
        return _json.dumps_pretty(self.to_dict())
