"""The signatures envelope: ``X.signatures.json`` and ``X.signatures.json.pending``.

Format (see docs/formats.md)::

    {"entries": {"<key string>": {"format": "minisign|ed25519", "signature": "<wire>"}}}

Public API
----------
- :class:`SignaturesFile` ``(entries: Mapping[PublicKey, Signature])``, immutable.
  ``SignaturesFile.from_bytes(raw)``: empty or whitespace-only bytes, and the literal ``{}`` the
  reference writes for a fresh release, read as an empty envelope. Every key
  and signature must parse, ``format`` must be the key's algorithm, and two spellings of the same
  key (``RW…`` and ``minisign:RW…``) are refused as a duplicate.
- ``sigs.with_entry(pk, sig)`` returns a new envelope; a key that already signed raises
  :class:`~asfaload.errors.ConflictError` (409).
- ``to_bytes()`` is deterministic (sorted keys, 2-space indent, trailing newline), so every
  writer — server, hook, replay — derives the same bytes. ``to_dict()`` / ``from_dict()`` for the
  envelope embedded in history entries.
- Read helpers: ``pk in sigs``, ``sigs[pk]``, ``len(sigs)``, ``sigs.keys()`` (frozenset),
  ``sigs.signers_sorted()``.

Parse errors are :class:`~asfaload.errors.FormatError` (``Invalid signatures file: …``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..crypto import PublicKey, Signature
from ..errors import AsfaloadError, ConflictError, FormatError, SignatureFormatError
from . import _json

_ENTRY_FIELDS = ("format", "signature")
_FILE_FIELDS = ("entries",)


def _err(message: str) -> FormatError:
    return FormatError(f"Invalid signatures file: {message}")


@dataclass(frozen=True)
class SignaturesFile:
    """An immutable map from public key to signature, with preserved unknown fields."""

    entries: Mapping[PublicKey, Signature] = field(default_factory=dict, hash=False)
    unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)
    # Unknown fields inside individual entries, by key (only the parser fills this).
    entry_unrecognized: Mapping[PublicKey, Mapping[str, Any]] = field(
        default_factory=dict, hash=False, compare=False
    )

    def __post_init__(self) -> None:
        if not isinstance(self.entries, Mapping):
            raise _err("entries must be a mapping of PublicKey to Signature")
        entries = dict(self.entries)
        for pk, sig in entries.items():
            _check_pair(pk, sig)
        object.__setattr__(self, "entries", MappingProxyType(entries))
        object.__setattr__(
            self,
            "unrecognized",
            _json.freeze_unrecognized(self.unrecognized, _FILE_FIELDS, _err, "signatures file"),
        )
        extra = {
            pk: _json.freeze_unrecognized(v, _ENTRY_FIELDS, _err, "signature entry")
            for pk, v in dict(self.entry_unrecognized).items()
            if pk in entries and v
        }
        object.__setattr__(self, "entry_unrecognized", MappingProxyType(extra))

    # --- reading ---------------------------------------------------------------------------------
    def __contains__(self, pk: object) -> bool:
        return pk in self.entries

    def __getitem__(self, pk: PublicKey) -> Signature:
        return self.entries[pk]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[PublicKey]:
        return iter(self.signers_sorted())

    def keys(self) -> frozenset[PublicKey]:
        return frozenset(self.entries)

    def signers_sorted(self) -> list[PublicKey]:
        return sorted(self.entries, key=str)

    def is_empty(self) -> bool:
        return not self.entries

    # --- writing ---------------------------------------------------------------------------------
    def with_entry(self, pk: PublicKey, sig: Signature) -> SignaturesFile:
        """A copy with one more signature; ConflictError if ``pk`` already signed."""
        _check_pair(pk, sig)
        if pk in self.entries:
            raise ConflictError(f"Signature already collected for key {pk}")
        entries = dict(self.entries)
        entries[pk] = sig
        return SignaturesFile(entries, self.unrecognized, self.entry_unrecognized)

    # --- serialisation ---------------------------------------------------------------------------
    @classmethod
    def empty(cls) -> SignaturesFile:
        return cls({})

    @classmethod
    def from_bytes(cls, raw: bytes) -> SignaturesFile:
        if isinstance(raw, bytes | bytearray | memoryview) and _json.is_blank(bytes(raw)):
            return cls({})
        return cls._from_obj(_json.loads(raw, _err))

    @classmethod
    def from_dict(cls, obj: object) -> SignaturesFile:
        _json.check_value(obj, _err)
        return cls._from_obj(obj)

    @classmethod
    def _from_obj(cls, obj: object) -> SignaturesFile:
        d = _json.as_object(obj, _err, "the document")
        if "entries" not in d:
            if not d:  # the reference's literal "{}" for a fresh release
                return cls({})
            raise _err("the document is missing the field 'entries'")
        raw_entries = _json.as_object(d["entries"], _err, "entries")
        entries: dict[PublicKey, Signature] = {}
        extra: dict[PublicKey, Mapping[str, Any]] = {}
        for key_text, value in raw_entries.items():
            where = f"entry {key_text[:80]!r}"
            try:
                pk = PublicKey.parse(key_text)
            except AsfaloadError as exc:
                raise _err(f"{where}: {exc}") from None
            if pk in entries:
                raise _err(f"{where}: key {pk} appears twice")
            e = _json.as_object(value, _err, where)
            fmt = _json.as_str(_json.require(e, "format", _err, where), _err, f"{where}.format")
            wire = _json.as_str(
                _json.require(e, "signature", _err, where), _err, f"{where}.signature"
            )
            if fmt != pk.algorithm:
                raise _err(
                    f"{where}: format {fmt[:40]!r} does not match the key's algorithm "
                    f"{pk.algorithm!r}"
                )
            try:
                sig = Signature.from_wire(wire, pk.algorithm)
            except AsfaloadError as exc:
                raise _err(f"{where}: {exc}") from None
            entries[pk] = sig
            extra[pk] = _json.unrecognized(e, _ENTRY_FIELDS)
        return cls(entries, _json.unrecognized(d, _FILE_FIELDS), extra)

    def to_dict(self) -> dict[str, Any]:
        entries: dict[str, Any] = {}
        for pk in self.signers_sorted():
            sig = self.entries[pk]
            entry: dict[str, Any] = {"format": pk.algorithm, "signature": sig.to_wire()}
            entry.update(self.entry_unrecognized.get(pk, _json.EMPTY))
            entries[str(pk)] = entry
        out: dict[str, Any] = {"entries": entries}
        out.update(self.unrecognized)
        return out

    def to_bytes(self) -> bytes:
        return _json.dumps_pretty(self.to_dict(), sort_keys=True)


def _check_pair(pk: object, sig: object) -> None:
    if not isinstance(pk, PublicKey):
        raise _err(f"entry key must be a PublicKey, got {type(pk).__name__}")
    if not isinstance(sig, Signature):
        raise _err(f"entry value must be a Signature, got {type(sig).__name__}")
    if sig.algorithm != pk.algorithm:
        raise SignatureFormatError(
            f"A {sig.algorithm} signature cannot belong to the {pk.algorithm} key {pk}"
        )
