"""Request bodies of the /v1 endpoints, parsed strictly from the raw JSON bytes.

Each parser raises FormatError (400, ``Invalid request body: …``) on anything but the documented
shape. Unknown fields are ignored, so older and newer clients keep working.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ..errors import FormatError
from ..model import parse_json

MAX_CSUM_FILES = 64
MAX_SIGNATURES = 16


def _invalid(message: str) -> FormatError:
    return FormatError(f"Invalid request body: {message}")


def parse_object(body: bytes) -> dict[str, Any]:
    # The strict reader: hostile nesting or integers are a 400 like any other bad JSON.
    data = parse_json(body, _invalid)
    if not isinstance(data, dict):
        raise _invalid("expected a JSON object")
    return data


def _string(data: Mapping[str, Any], name: str, *, allow_empty: bool = False) -> str:
    value = data.get(name)
    if value is None:
        raise _invalid(f"missing field {name}")
    if not isinstance(value, str):
        raise _invalid(f"field {name} must be a string")
    if not allow_empty and not value.strip():
        raise _invalid(f"field {name} cannot be empty")
    return value


def _file_path(data: Mapping[str, Any]) -> str:
    # Whitespace is a path's own business (checked with the path), unlike other string fields.
    file_path = data.get("file_path")
    if not isinstance(file_path, str):
        raise _invalid("missing field file_path")
    if not file_path:
        raise _invalid("File path cannot be empty")
    return file_path


@dataclass(frozen=True)
class SignersFileBody:
    """``POST /v1/register_repo`` and ``POST /v1/update_signers``."""

    signers_file_url: str
    public_key: str

    @classmethod
    def parse(cls, body: bytes) -> SignersFileBody:
        data = parse_object(body)
        return cls(_string(data, "signers_file_url"), _string(data, "public_key"))


@dataclass(frozen=True)
class SignaturesBody:
    """``POST /v1/signatures``: signatures keyed by mirror path (signers file + metadata)."""

    file_path: str
    public_key: str
    signatures: Mapping[str, str]

    @classmethod
    def parse(cls, body: bytes) -> SignaturesBody:
        data = parse_object(body)
        file_path = _file_path(data)
        public_key = _string(data, "public_key")
        sigs = data.get("signatures")
        if not isinstance(sigs, dict) or not sigs:
            raise _invalid("field signatures must be a non-empty object")
        if len(sigs) > MAX_SIGNATURES:
            raise _invalid("too many signatures")
        for path, sig in sigs.items():
            if not isinstance(sig, str) or not sig:
                raise _invalid(f"signature for {path!r} must be a non-empty string")
        if file_path not in sigs:
            raise _invalid(f"no signature provided for {file_path}")
        return cls(file_path, public_key, MappingProxyType(dict(sigs)))


@dataclass(frozen=True)
class RevokeBody:
    """``POST /v1/revoke``: the exact revocation document text and its signature."""

    file_path: str
    revocation_json: str
    signature: str
    public_key: str

    @classmethod
    def parse(cls, body: bytes) -> RevokeBody:
        data = parse_object(body)
        file_path = _file_path(data)
        return cls(
            file_path,
            _string(data, "revocation_json"),
            _string(data, "signature"),
            _string(data, "public_key"),
        )


@dataclass(frozen=True)
class AssetsBody:
    """``POST /v1/assets``: exactly one of the three sources."""

    github_release_url: str | None = None
    gitlab_release_url: str | None = None
    csum_files: tuple[str, ...] = ()

    @classmethod
    def parse(cls, body: bytes) -> AssetsBody:
        data = parse_object(body)
        present = [
            k
            for k in ("github_release_url", "csum_files", "gitlab_release_url")
            if data.get(k) is not None
        ]
        if len(present) != 1:
            if "gitlab_release_url" in present:
                raise _plain(
                    "github_release_url, gitlab_release_url and csum_files are mutually exclusive"
                )
            raise _plain("github_release_url and csum_files are mutually exclusive")
        if present == ["csum_files"]:
            files = data["csum_files"]
            if not isinstance(files, list) or not files:
                raise _invalid("field csum_files must be a non-empty list of URLs")
            if len(files) > MAX_CSUM_FILES:
                raise _invalid("too many checksum files")
            if not all(isinstance(f, str) and f for f in files):
                raise _invalid("field csum_files must be a non-empty list of URLs")
            return cls(csum_files=tuple(files))
        name = present[0]
        url = _string(data, name)
        if name == "github_release_url":
            return cls(github_release_url=url)
        return cls(gitlab_release_url=url)


def _plain(message: str) -> FormatError:
    return FormatError(message)
