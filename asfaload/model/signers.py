"""The signers file: who may sign what, and how many signatures each group needs.

Schema (``docs/formats.md``)::

    {
      "version": 1,
      "timestamp": "2025-06-01T10:11:12Z",
      "artifact_signers": [GROUP, ...],          # required, non-empty
      "admin_keys":      [GROUP, ...],          # optional
      "master_keys":     [GROUP, ...],          # optional
      "revocation_keys": [GROUP, ...]           # optional
    }
    GROUP  = {"signers": [SIGNER, ...], "threshold": <int, 1..len(signers)>}
    SIGNER = {"kind": "key", "data": {"pubkey": "<key string>"}}   # "format" accepted in data

Public API
----------
- :class:`SignerGroup` ``(signers: tuple[PublicKey, ...], threshold: int)``: one group; keys are
  distinct by decoded bytes. ``group.keys`` is the same tuple as a frozenset.
- :class:`SignersFile`: ``SignersFile.parse(raw: bytes)`` validates and keeps ``raw``, the exact
  bytes that are signed and stored (never re-serialise a parsed file to sign it).
  ``SignersFile.create(artifact_signers=[...], admin_keys=None, ..., timestamp=None)`` builds a new
  file (``raw`` = :meth:`SignersFile.to_bytes`). ``to_dict()`` / ``from_dict()`` for embedding.
- Derived groups (revocation keys are part of ``all_signer_keys()``, so they must sign too):

  ============================  ===========================================================
  ``admin_groups()``            ``admin_keys`` if non-empty, else ``artifact_signers``
  ``master_groups()``           ``master_keys`` or ``()`` — no fallback
  ``revocation_groups()``       ``revocation_keys`` if non-empty, else ``admin_groups()``
                                (and so artifact signers); masters never revoke
  ``artifact_groups()``         ``artifact_signers``
  ``all_signer_keys()``         frozenset of every key in artifact, admin (derived), master
                                and revocation groups: the keys that must sign a new file
  ============================  ===========================================================

- ``signers_file.algorithm``: the single key algorithm of the file (``"minisign"|"ed25519"``).

Validation (:class:`~asfaload.errors.SignersFileError`, one-line messages naming the place):
version must be the integer 1; timestamp RFC 3339; ``artifact_signers`` non-empty; each group
non-empty, threshold an integer (``true`` is not) between 1 and the group size; no key twice in one
group (it would count twice towards the threshold); one algorithm for the whole file; a master key
must not appear in any other group. Unknown fields are kept in ``unrecognized`` at every level and
re-emitted by ``to_dict``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..crypto import PublicKey
from ..errors import AsfaloadError, SignersFileError
from . import _json
from .timestamps import format_rfc3339, now_unix, parse_rfc3339

_ERR = SignersFileError
GROUP_NAMES = ("artifact_signers", "admin_keys", "master_keys", "revocation_keys")
_FILE_FIELDS = ("version", "timestamp", *GROUP_NAMES)
_GROUP_FIELDS = ("signers", "threshold")
_SIGNER_FIELDS = ("kind", "data")
_DATA_FIELDS = ("format", "pubkey")
SIGNERS_FILE_VERSION = 1


def _err(message: str) -> SignersFileError:
    return SignersFileError(f"Invalid signers file: {message}")


@dataclass(frozen=True)
class SignerExtras:
    """What a parsed signer entry carried besides its key, kept so to_dict loses nothing."""

    format: str | None = None
    data_unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)
    unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)


_NO_EXTRAS = SignerExtras()


@dataclass(frozen=True)
class SignerGroup:
    """One group of signers and how many of them must sign (``1 <= threshold <= len(signers)``).

    ``extras`` is either empty or aligned with ``signers`` (one :class:`SignerExtras` per key);
    only the parser needs it.
    """

    signers: tuple[PublicKey, ...]
    threshold: int
    unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)
    extras: tuple[SignerExtras, ...] = field(default=(), hash=False)

    def __post_init__(self) -> None:
        signers = tuple(self.signers) if isinstance(self.signers, list | tuple) else None
        if signers is None:
            raise _err("group signers must be a sequence of public keys")
        object.__setattr__(self, "signers", signers)
        for pk in signers:
            if not isinstance(pk, PublicKey):
                raise _err(f"group signer must be a PublicKey, got {type(pk).__name__}")
        if not signers:
            raise _err("Group size must be at least 1")
        t = self.threshold
        if isinstance(t, bool) or not isinstance(t, int):
            raise _err(f"threshold must be an integer, got {_json.type_name(t)}")
        if t <= 0:
            raise _err(f"Threshold ({t}) must be strictly greater than 0")
        if t > len(signers):
            raise _err(
                f"Threshold ({t}) cannot be greater than the number of signers ({len(signers)})"
            )
        seen: set[PublicKey] = set()
        for pk in signers:
            if pk in seen:
                raise _err(f"duplicate key in group: {pk}")
            seen.add(pk)
        extras = tuple(self.extras)
        if extras and len(extras) != len(signers):
            raise _err("group extras must be empty or one per signer")
        object.__setattr__(self, "extras", extras)
        object.__setattr__(
            self,
            "unrecognized",
            _json.freeze_unrecognized(self.unrecognized, _GROUP_FIELDS, _err, "group"),
        )

    @property
    def keys(self) -> frozenset[PublicKey]:
        return frozenset(self.signers)

    @property
    def size(self) -> int:
        return len(self.signers)

    # --- serialisation -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, obj: object, where: str = "group") -> SignerGroup:
        d = _json.as_object(obj, _err, where)
        raw_signers = _json.as_list(
            _json.require(d, "signers", _err, where), _err, f"{where}.signers"
        )
        if "threshold" not in d:
            raise _err(f"{where} is missing the field 'threshold'")
        threshold = _json.as_int(d["threshold"], _err, f"{where}.threshold")
        keys: list[PublicKey] = []
        extras: list[SignerExtras] = []
        for i, entry in enumerate(raw_signers):
            pk, extra = _parse_signer(entry, f"{where}.signers[{i}]")
            keys.append(pk)
            extras.append(extra)
        try:
            return cls(
                tuple(keys),
                threshold,
                _json.unrecognized(d, _GROUP_FIELDS),
                tuple(extras) if any(e != _NO_EXTRAS for e in extras) else (),
            )
        except SignersFileError as exc:
            raise _err(f"{where}: {_strip(exc)}") from None

    def to_dict(self) -> dict[str, Any]:
        entries = []
        for i, pk in enumerate(self.signers):
            ex = self.extras[i] if self.extras else _NO_EXTRAS
            data: dict[str, Any] = {}
            if ex.format is not None:
                data["format"] = ex.format
            data["pubkey"] = str(pk)
            data.update(ex.data_unrecognized)
            entry: dict[str, Any] = {"kind": "key", "data": data}
            entry.update(ex.unrecognized)
            entries.append(entry)
        out: dict[str, Any] = {"signers": entries, "threshold": self.threshold}
        out.update(self.unrecognized)
        return out


def _strip(exc: AsfaloadError) -> str:
    msg = str(exc)
    prefix = "Invalid signers file: "
    return msg[len(prefix) :] if msg.startswith(prefix) else msg


def _parse_signer(entry: object, where: str) -> tuple[PublicKey, SignerExtras]:
    d = _json.as_object(entry, _err, where)
    kind = _json.as_str(_json.require(d, "kind", _err, where), _err, f"{where}.kind")
    if kind != "key":
        raise _err(f'{where}.kind must be "key", got {kind[:40]!r}')
    data = _json.as_object(_json.require(d, "data", _err, where), _err, f"{where}.data")
    text = _json.as_str(
        _json.require(data, "pubkey", _err, f"{where}.data"), _err, f"{where}.data.pubkey"
    )
    try:
        pk = PublicKey.parse(text)
    except AsfaloadError as exc:
        raise _err(f"{where}.data.pubkey: {exc}") from None
    fmt: str | None = None
    if "format" in data:
        fmt = _json.as_str(data["format"], _err, f"{where}.data.format")
        if fmt != pk.algorithm:
            raise _err(
                f"{where}.data.format {fmt[:40]!r} does not match the key's algorithm "
                f"{pk.algorithm!r}"
            )
    extras = SignerExtras(
        fmt, _json.unrecognized(data, _DATA_FIELDS), _json.unrecognized(d, _SIGNER_FIELDS)
    )
    return pk, extras


Groups = tuple[SignerGroup, ...]


def _groups(value: Iterable[SignerGroup] | None, name: str, *, optional: bool) -> Groups | None:
    if value is None:
        if optional:
            return None
        raise _err(f"{name} is required")
    if not isinstance(value, list | tuple):
        raise _err(f"{name} must be a sequence of groups")
    groups = tuple(value)
    for g in groups:
        if not isinstance(g, SignerGroup):
            raise _err(f"{name} must contain SignerGroup values, got {type(g).__name__}")
    return groups


@dataclass(frozen=True)
class SignersFile:
    """A validated signers file. Construct with :meth:`parse` (from bytes) or :meth:`create`.

    ``raw`` is the exact file content; when the constructor is called with ``raw=b""`` it is
    filled with :meth:`to_bytes`. ``timestamp`` is the original string and ``timestamp_dt`` its
    parsed UTC value.
    """

    version: int
    timestamp: str
    artifact_signers: Groups
    admin_keys: Groups | None = None
    master_keys: Groups | None = None
    revocation_keys: Groups | None = None
    raw: bytes = b""
    unrecognized: Mapping[str, Any] = field(default_factory=_json.empty_mapping, hash=False)
    timestamp_dt: datetime = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        v = self.version
        if isinstance(v, bool) or not isinstance(v, int):
            raise _err(f"version must be an integer, got {_json.type_name(v)}")
        if v != SIGNERS_FILE_VERSION:
            raise _err(f"unsupported version {v} (expected {SIGNERS_FILE_VERSION})")
        if not isinstance(self.timestamp, str):
            raise _err(f"timestamp must be a string, got {_json.type_name(self.timestamp)}")
        try:
            ts = parse_rfc3339(self.timestamp)
        except AsfaloadError as exc:
            raise _err(f"timestamp: {exc}") from None
        object.__setattr__(self, "timestamp_dt", ts)

        artifact = _groups(self.artifact_signers, "artifact_signers", optional=False)
        assert artifact is not None
        if not artifact:
            raise _err("artifact_signers must contain at least one group")
        object.__setattr__(self, "artifact_signers", artifact)
        for name in GROUP_NAMES[1:]:
            object.__setattr__(self, name, _groups(getattr(self, name), name, optional=True))

        algorithms = {pk.algorithm for _, g in self._named_groups() for pk in g.signers}
        if len(algorithms) > 1:
            raise _err("all keys must use one algorithm, found " + " and ".join(sorted(algorithms)))
        masters = {pk for g in self.master_keys or () for pk in g.signers}
        for name, g in self._named_groups():
            if name == "master_keys":
                continue
            for pk in g.signers:
                if pk in masters:
                    raise _err(f"master key {pk} must not also appear in {name}")

        if not isinstance(self.raw, bytes):
            raise _err("raw must be bytes")
        object.__setattr__(
            self,
            "unrecognized",
            _json.freeze_unrecognized(self.unrecognized, _FILE_FIELDS, _err, "signers file"),
        )
        if not self.raw:
            object.__setattr__(self, "raw", self.to_bytes())

    def _named_groups(self) -> list[tuple[str, SignerGroup]]:
        return [(name, g) for name in GROUP_NAMES for g in (getattr(self, name) or ())]

    # --- construction --------------------------------------------------------------------------
    @classmethod
    def parse(cls, raw: bytes) -> SignersFile:
        """Parse and validate the exact bytes of a signers file; ``.raw`` keeps them."""
        value = _json.loads(raw, _err)
        return cls._from_obj(value, bytes(raw))

    from_bytes = parse

    @classmethod
    def from_dict(cls, obj: object) -> SignersFile:
        """Build from a parsed JSON object (``raw`` becomes the canonical :meth:`to_bytes`)."""
        _json.check_value(obj, _err)
        return cls._from_obj(obj, b"")

    @classmethod
    def _from_obj(cls, obj: object, raw: bytes) -> SignersFile:
        d = _json.as_object(obj, _err, "the document")
        version = _json.as_int(_json.require(d, "version", _err, "the document"), _err, "version")
        timestamp = _json.as_str(
            _json.require(d, "timestamp", _err, "the document"), _err, "timestamp"
        )
        groups: dict[str, Groups | None] = {}
        for name in GROUP_NAMES:
            if name == "artifact_signers" and name not in d:
                raise _err("the document is missing the field 'artifact_signers'")
            if name != "artifact_signers" and d.get(name) is None:
                # Absent and null both mean "no such group" (as upstream's serde Option).
                groups[name] = None
                continue
            items = _json.as_list(d[name], _err, name)
            groups[name] = tuple(
                SignerGroup.from_dict(g, f"{name}[{i}]") for i, g in enumerate(items)
            )
        artifact = groups["artifact_signers"]
        assert artifact is not None
        return cls(
            version=version,
            timestamp=timestamp,
            artifact_signers=artifact,
            admin_keys=groups["admin_keys"],
            master_keys=groups["master_keys"],
            revocation_keys=groups["revocation_keys"],
            raw=raw,
            unrecognized=_json.unrecognized(d, _FILE_FIELDS),
        )

    @classmethod
    def create(
        cls,
        artifact_signers: Iterable[SignerGroup],
        admin_keys: Iterable[SignerGroup] | None = None,
        master_keys: Iterable[SignerGroup] | None = None,
        revocation_keys: Iterable[SignerGroup] | None = None,
        timestamp: int | str | None = None,
    ) -> SignersFile:
        """A new version-1 file; ``timestamp`` is Unix seconds, an RFC 3339 string, or now.

        Pass ``None`` (not ``[]``) for an absent optional group, so it is omitted from the file.
        """
        if timestamp is None:
            timestamp = now_unix()
        ts = timestamp if isinstance(timestamp, str) else format_rfc3339(timestamp)

        def opt(v: Iterable[SignerGroup] | None) -> Groups | None:
            return None if v is None else tuple(v)

        return cls(
            version=SIGNERS_FILE_VERSION,
            timestamp=ts,
            artifact_signers=tuple(artifact_signers),
            admin_keys=opt(admin_keys),
            master_keys=opt(master_keys),
            revocation_keys=opt(revocation_keys),
        )

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version, "timestamp": self.timestamp}
        for name in GROUP_NAMES:
            groups = getattr(self, name)
            if groups is not None:
                out[name] = [g.to_dict() for g in groups]
        out.update(self.unrecognized)
        return out

    def to_bytes(self) -> bytes:
        """Canonical form: pretty JSON, 2-space indent, trailing newline, the schema's field order.

        For a parsed file this may differ from ``raw``; sign and store ``raw``.
        """
        return _json.dumps_pretty(self.to_dict())

    # --- derived groups --------------------------------------------------------------------------
    @property
    def algorithm(self) -> str:
        return self.artifact_signers[0].signers[0].algorithm

    def artifact_groups(self) -> Groups:
        return self.artifact_signers

    def admin_groups(self) -> Groups:
        return self.admin_keys if self.admin_keys else self.artifact_signers

    def master_groups(self) -> Groups:
        return self.master_keys or ()

    def revocation_groups(self) -> Groups:
        return self.revocation_keys if self.revocation_keys else self.admin_groups()

    def all_signer_keys(self) -> frozenset[PublicKey]:
        """Every key that must sign a new signers file (revocation keys included: each one
        proves it holds its key before the file becomes active)."""
        groups = (
            *self.artifact_signers,
            *self.admin_groups(),
            *self.master_groups(),
            *self.revocation_groups(),
        )
        return frozenset(pk for g in groups for pk in g.signers)
