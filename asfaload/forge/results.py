"""What the forges hand to the service layer: plain frozen, validated values.

URLs here are always the *original* (identity) URLs: rewrites only ever change where a socket
connects, never what we store.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from ..errors import ForgeError
from ..model.index import PublishedFile
from ..model.timestamps import parse_rfc3339

KINDS = ("github", "gitlab", "fileserver")
# The metadata file spells forge kinds in PascalCase (``Github``, ``Gitlab``, ``FileServer``), as upstream writes them.
METADATA_KINDS = {"github": "Github", "gitlab": "Gitlab", "fileserver": "FileServer"}
RELEASE_MODES = ("github", "gitlab", "checksums")
HASH_LENGTHS = {"Sha256": 64, "Sha512": 128}
_HEX = frozenset(string.hexdigits.lower())


def check_file_name(name: object, where: str) -> str:
    """A release file name must be one plain path segment: clients map a download URL's last
    segment to an index entry, and checksum mode builds the source URL from it."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > 255
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
    ):
        shown = name[:100] if isinstance(name, str) else type(name).__name__
        raise ForgeError(f"Invalid file name in {where}: {shown!r}")
    return name


@dataclass(frozen=True)
class FetchedFile:
    """A signers file as fetched from its forge, byte for byte."""

    raw: bytes
    url: str  # as the user gave it
    retrieval_url: str  # the raw-content URL it was read from (original, not rewritten, form)
    kind: str  # "github" | "gitlab" | "fileserver"

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown forge kind {self.kind!r}")

    @property
    def metadata_kind(self) -> str:
        return METADATA_KINDS[self.kind]


@dataclass(frozen=True)
class Asset:
    file_name: str
    algo: str  # "Sha256" | "Sha512", as in the release index
    hash_hex: str  # lowercase
    source_url: str

    def __post_init__(self) -> None:
        check_file_name(self.file_name, "release")
        want = HASH_LENGTHS.get(self.algo)
        if want is None:
            raise ForgeError(f"Unsupported hash algorithm for {self.file_name}: {self.algo}")
        if len(self.hash_hex) != want or not set(self.hash_hex) <= _HEX:
            raise ForgeError(f"Invalid {self.algo} hash for {self.file_name}")

    def to_published_file(self) -> PublishedFile:
        return PublishedFile(self.file_name, self.algo, self.source_url, self.hash_hex)


@dataclass(frozen=True)
class ReleaseAssets:
    """The files of a release (GitHub, GitLab) or of a set of checksum files."""

    mode: str  # "github" | "gitlab" | "checksums"
    url: str  # the release page URL, or the checksum files' parent directory URL
    tag: str | None
    published_on: str | None  # RFC 3339 from the forge; None in checksum mode
    files: tuple[Asset, ...]

    def __post_init__(self) -> None:
        if self.mode not in RELEASE_MODES:
            raise ValueError(f"unknown release mode {self.mode!r}")
        object.__setattr__(self, "files", tuple(self.files))
        names = [f.file_name for f in self.files]
        if len(set(names)) != len(names):
            raise ForgeError(f"Duplicate file name in release {self.url}")
        if not self.files:
            raise ForgeError(f"Release has no files: {self.url}")
        if self.published_on is not None:
            try:
                parse_rfc3339(self.published_on)
            except Exception:
                raise ForgeError(
                    f"Invalid release date from forge: {self.published_on!r}"
                ) from None

    def published_files(self) -> tuple[PublishedFile, ...]:
        return tuple(f.to_published_file() for f in self.files)
