"""Parsing and checking TUF documents with python-tuf, plus the names and settings around them.

Everything python-tuf's client would refuse is refused here, at the door, so that no root that a
client cannot follow is ever published: fractional-second ``expires``, a
spec_version other than 1.x, missing or extra roles, keyids that do not match their keys,
role keyids without a key, thresholds no set of keys can reach, and ``consistent_snapshot``
other than true (we only publish versioned file names).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_pem_public_key,
)
from securesystemslib.signer._utils import compute_default_keyid
from tuf.api.serialization import DeserializationError

from .. import layout
from ..errors import FormatError, TufError, one_line
from ._api import Key, Metadata, Root, Signed, Targets

APP_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9-]*$")
# Admin names become a mirror path segment and a private directory name.
USERNAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$")
ONLINE_ROLES = ("targets", "snapshot", "timestamp")
_HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2})+$")


def validate_app_name(app: str) -> str:
    if not app or len(app) > 128 or not APP_NAME_RE.match(app):
        raise TufError(
            f'appName "{app}" is invalid: only alphanumeric characters and hyphens are allowed,'
            " and it must start with an alphanumeric character"
        )
    return app


def validate_username(username: str) -> str:
    if not USERNAME_RE.match(username) or ".." in username:
        raise FormatError(
            f"Invalid username {username!r}: use letters, digits, '_', '-' or '.',"
            " starting with a letter or digit (at most 64 characters)"
        )
    return username


@dataclass(frozen=True)
class AppRef:
    """One TUF repository: its admin (the JWT username) and its application name."""

    admin: str
    app: str

    def __post_init__(self) -> None:
        validate_username(self.admin)
        validate_app_name(self.app)

    @property
    def dir(self) -> str:
        return layout.tuf_dir(self.admin, self.app)

    def versioned(self, role: str, version: int) -> str:
        return layout.tuf_versioned_path(self.admin, self.app, role, version)

    @property
    def timestamp(self) -> str:
        return layout.tuf_timestamp_path(self.admin, self.app)

    @property
    def pending_root(self) -> str:
        return layout.tuf_pending_root_path(self.admin, self.app)


# --- time ----------------------------------------------------------------------------------------
def utc(now: int) -> datetime:
    return datetime.fromtimestamp(now, UTC)


def expires_in(now: int, days: int) -> datetime:
    # Whole seconds: python-tuf's format has no fractions.
    return utc(now) + timedelta(days=days)


def tuf_time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- expiration settings -------------------------------------------------------------------------
_BOUNDS = {"root": 365, "targets": 180, "snapshot": 30, "timestamp": 7}
_DEFAULTS = {"root": 365, "targets": 90, "snapshot": 7, "timestamp": 1}


@dataclass(frozen=True)
class Expirations:
    """Days each online role's metadata stays valid (the bootstrap request's ``settings``)."""

    root: int = _DEFAULTS["root"]
    targets: int = _DEFAULTS["targets"]
    snapshot: int = _DEFAULTS["snapshot"]
    timestamp: int = _DEFAULTS["timestamp"]

    def __post_init__(self) -> None:
        for role, bound in _BOUNDS.items():
            value = getattr(self, role)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TufError(f'expiration for role "{role}" must be an integer')
            if value < 1:
                raise TufError(f'expiration for role "{role}" must be >= 1 day(s), got {value}')
            if value > bound:
                raise TufError(f'expiration for role "{role}" must be <= {bound} days, got {value}')

    @classmethod
    def from_settings(cls, settings: Any) -> Expirations:
        """From the bootstrap body's ``settings`` (``{"roles": {role: {"expiration": days}}}``)."""
        roles = settings.get("roles") if isinstance(settings, dict) else None
        if not isinstance(roles, dict):
            raise TufError("Missing required field: settings.roles.root.expiration")
        values: dict[str, Any] = {}
        for role in _BOUNDS:
            entry = roles.get(role)
            value = entry.get("expiration") if isinstance(entry, dict) else None
            if role == "root" and not value:
                raise TufError("Missing required field: settings.roles.root.expiration")
            values[role] = _DEFAULTS[role] if value is None else value
        return cls(**values)

    def to_dict(self) -> dict[str, int]:
        return {r: getattr(self, r) for r in _BOUNDS}

    @classmethod
    def from_dict(cls, d: Any) -> Expirations:
        if not isinstance(d, dict):
            return cls()
        return cls(**{r: d.get(r, _DEFAULTS[r]) for r in _BOUNDS})

    def days(self, role: str) -> int:
        return int(getattr(self, role))


# --- serialisation -------------------------------------------------------------------------------
def dump_json(doc: Any) -> bytes:
    """The file form of a JSON document: key order and every field kept as given.

    Signatures cover the canonical JSON of ``signed``, so layout does not matter, but every
    field does: a submitted root is never normalised.
    """
    return json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"


def load_json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise FormatError(f"{what} is not valid JSON") from None
    except RecursionError:  # the decoder's own limit on nesting
        raise FormatError(f"{what} is nested too deeply") from None


# --- roots ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParsedRoot:
    """A root document as submitted (``doc``) and python-tuf's reading of it (``md``)."""

    doc: dict[str, Any]
    md: Metadata[Root]

    @property
    def root(self) -> Root:
        return self.md.signed

    @property
    def version(self) -> int:
        return self.md.signed.version

    def with_signature(self, keyid: str, sig: str) -> ParsedRoot:
        doc = copy.deepcopy(self.doc)
        sigs = doc.get("signatures") or []
        doc["signatures"] = [*sigs, {"keyid": keyid, "sig": sig}]
        return parse_root(doc)

    def to_bytes(self) -> bytes:
        return dump_json(self.doc)


def parse_root(doc: Any) -> ParsedRoot:
    """Read a submitted root with python-tuf and the checks its client makes; FormatError if not."""
    if not isinstance(doc, dict):
        raise FormatError("root metadata must be a JSON object")
    signed = doc.get("signed")
    if not isinstance(signed, dict):
        raise FormatError("missing 'signed' object")
    if signed.get("_type") != "root":
        raise FormatError(f"expected 'root', got '{signed.get('_type')}'")
    doc = copy.deepcopy(doc)
    if doc.get("signatures") is None:
        doc["signatures"] = []
    sigs = doc["signatures"]
    if not isinstance(sigs, list):
        raise FormatError("'signatures' must be a list")
    for s in sigs:
        if not isinstance(s, dict) or not isinstance(s.get("keyid"), str):
            raise FormatError("invalid signature keyid")
        if not isinstance(s.get("sig"), str) or not _HEX_RE.match(s["sig"]):
            raise FormatError(f"invalid signature hex for keyid {s['keyid']}")
    version = signed.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise FormatError("'version' must be an integer")
    if not isinstance(signed.get("expires"), str):
        raise FormatError("'expires' must be a string")
    try:
        md = Metadata[Root].from_dict(copy.deepcopy(doc))
    except (ValueError, KeyError, TypeError, AttributeError, DeserializationError) as exc:
        raise FormatError(_one_line(exc)) from None
    root = md.signed
    if root.consistent_snapshot is not True:
        raise FormatError("consistent_snapshot must be true")
    for keyid, key in root.keys.items():
        computed = compute_default_keyid(key.keytype, key.scheme, key.keyval)
        if keyid != computed:
            raise FormatError(f"keyid mismatch: provided {keyid}, computed {computed}")
    for name, role in root.roles.items():
        for keyid in role.keyids:
            if keyid not in root.keys:
                raise FormatError(f"key {keyid} referenced by role {name} not found")
        if role.threshold > len(role.keyids):
            raise FormatError(
                f"role {name} has threshold {role.threshold} but only {len(role.keyids)} keys"
            )
    return ParsedRoot(doc, md)


def key_material(key: Key) -> bytes:
    """The public key ``key`` verifies with, in one spelling per key.

    A keyid hashes the key dict as written, so one key can appear under several keyids: hex in
    another case or with spaces, a PEM with other line breaks, a raw ed25519 key and its PEM,
    another scheme, or an extra ``keyval`` field. Verifiers read the key the same way each time,
    so the comparison is on what they read: the DER SubjectPublicKeyInfo when ``cryptography``
    can load it, else the decoded hex, else the text without whitespace.
    """
    public = key.keyval.get("public")
    if not isinstance(public, str):
        return b"keyval:" + json.dumps(key.keyval, sort_keys=True).encode("utf-8")
    try:
        raw = bytes.fromhex(public)
    except ValueError:
        raw = None
    try:
        if raw is not None and len(raw) == 32:  # an ed25519 key, whatever keytype it claims
            loaded: Any = Ed25519PublicKey.from_public_bytes(raw)
        elif raw is None:
            loaded = load_pem_public_key(public.strip().encode("utf-8"))
        else:
            return b"hex:" + raw
        spki: bytes = loaded.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return b"spki:" + spki
    except (ValueError, TypeError):
        if raw is not None:
            return b"hex:" + raw
        return b"text:" + "".join(public.split()).encode("utf-8")


def check_distinct_keys(root: Root) -> None:
    """Refuse a root that lists one public key under two keyids; FormatError if it does.

    python-tuf counts signatures per keyid, so a key listed twice lets its one holder meet a
    threshold of two. Every root the service accepts (bootstrap, rotation, a draft collecting
    signatures) must pass this; a published root is read without it so that a repository
    holding such a root can still rotate away from it.
    """
    seen: dict[bytes, str] = {}
    for keyid in sorted(root.keys):
        material = key_material(root.keys[keyid])
        first = seen.setdefault(material, keyid)
        if first != keyid:
            raise FormatError(
                f"keys {first} and {keyid} are the same public key: list each key once"
            )


def parse_root_bytes(raw: bytes) -> ParsedRoot:
    return parse_root(load_json(raw, "root metadata"))


def is_expired(signed: Signed, now: int) -> bool:
    return signed.is_expired(utc(now))


def parse_targets_bytes(raw: bytes) -> Metadata[Targets]:
    return Metadata[Targets].from_bytes(raw)


def _one_line(exc: BaseException) -> str:
    text = one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, KeyError):
        text = f"missing field {text}"
    return text
