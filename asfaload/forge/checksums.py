"""Checksum-files mode: a strict parser (one
``<hex digest> <name>`` per line, as sha256sum/sha512sum write them) and the URL rules.

Accepted lines are exactly what ``sha256sum``/``sha512sum`` print: ``<hex><sep><name>`` with
``sep`` two spaces (text mode) or space + ``*`` (binary mode). Comments, BSD-style lines and
single-space separators are errors, not silently skipped lines: a checksum file that does not
mean what we think must not be signed.

All checksum files of one registration share origin and parent directory; the index ``source`` of
each file is that parent directory + its name (the artifact sits beside its checksum file).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from ..errors import FormatError
from .http import HttpClient, check_url, origin
from .results import Asset, ReleaseAssets, check_file_name

_HEX = frozenset(string.hexdigits)
_ALGOS = {64: "Sha256", 128: "Sha512"}
_STRENGTH = {"Sha256": 1, "Sha512": 2}
MAX_CHECKSUM_FILES = 32
_SHOWN = 200


@dataclass(frozen=True)
class ChecksumEntry:
    file_name: str
    algo: str  # "Sha256" | "Sha512"
    hash_hex: str  # lowercase


def _shown(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


def _split(line: str) -> tuple[str, str] | None:
    found = [i for i in (line.find("  "), line.find(" *")) if i >= 0]
    if not found:
        return None
    i = min(found)
    hash_part, name = line[:i], line[i + 2 :]
    if not hash_part or not name:
        return None
    return hash_part, name


def parse_checksums(content: bytes | str) -> tuple[ChecksumEntry, ...]:
    """Parse a checksum file strictly; raise FormatError naming the line at fault."""
    if isinstance(content, bytes):
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("Invalid encoding: checksums file is not UTF-8") from None
    else:
        text = content
    entries: list[ChecksumEntry] = []
    for raw_line in text.split("\n"):
        line = raw_line[:-1] if raw_line.endswith("\r") else raw_line
        if line == "":
            continue
        parts = _split(line)
        if parts is None:
            raise FormatError(f"Invalid line format: {_shown(line)}")
        hash_part, name = parts
        if not all(c in _HEX for c in hash_part):
            raise FormatError(f"Invalid hex characters in hash: {_shown(hash_part)}")
        algo = _ALGOS.get(len(hash_part))
        if algo is None:
            raise FormatError(f"Unsupported hash length: {len(hash_part)} hex characters")
        entries.append(ChecksumEntry(name, algo, hash_part.lower()))
    if not entries:
        raise FormatError("Empty content: no checksums found")
    return tuple(entries)


def checksum_base_url(urls: Sequence[str]) -> str:
    """The common parent directory URL (ending in '/') of the checksum file URLs.

    Every URL must be http(s), name a file, carry no query or fragment, and share origin and
    parent directory with the others."""
    if not urls:
        raise FormatError("At least one checksums file URL is required")
    if len(urls) > MAX_CHECKSUM_FILES:
        raise FormatError(f"Too many checksums files (at most {MAX_CHECKSUM_FILES})")
    if len(set(urls)) != len(urls):
        raise FormatError("Duplicate checksums file URL")
    bases: set[tuple[tuple[str, str, int], str]] = set()
    first_base = ""
    for url in urls:
        parts = check_url(url)
        if parts.query or parts.fragment or url.endswith(("?", "#")):
            raise FormatError(f"Checksums file URL must not have a query or fragment: {url}")
        parent, _, name = parts.path.rpartition("/")
        if not name:
            raise FormatError(f"Checksums file URL has no file name: {url}")
        bases.add((origin(url), parent))
        if not first_base:
            first_base = f"{parts.scheme}://{parts.netloc}{parent}/"
    if len(bases) != 1:
        raise FormatError("All checksums files must share the same origin and parent directory")
    return first_base


def merge_entries(per_file: Sequence[Sequence[ChecksumEntry]]) -> list[ChecksumEntry]:
    """One entry per file name, keeping the strongest algorithm; the index lists a name once.
    Two different hashes of the same algorithm for one name are a contradiction."""
    chosen: dict[str, ChecksumEntry] = {}
    for entries in per_file:
        for e in entries:
            prev = chosen.get(e.file_name)
            if prev is None or _STRENGTH[e.algo] > _STRENGTH[prev.algo]:
                chosen[e.file_name] = e
            elif prev.algo == e.algo and prev.hash_hex != e.hash_hex:
                raise FormatError(f"Conflicting checksums for {_shown(e.file_name)}")
    return list(chosen.values())


def fetch_checksum_files(http: HttpClient, urls: Sequence[str]) -> ReleaseAssets:
    base = checksum_base_url(urls)
    parsed = []
    for url in urls:
        content = http.get(url, max_bytes=http.config.checksums_max_bytes).content
        parsed.append(parse_checksums(content))
    files = []
    for e in merge_entries(parsed):
        name = check_file_name(e.file_name, "checksums file")
        source = base + quote(name, safe="")
        files.append(Asset(name, e.algo, e.hash_hex, source))
    return ReleaseAssets("checksums", base, None, None, tuple(files))
