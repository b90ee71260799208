"""Pure data and validation for every file asfaload stores or exchanges (no I/O).

Each class is a frozen dataclass that validates in its constructor, reads with ``from_dict`` (and
``from_bytes`` / ``parse`` where a file form exists), writes with ``to_dict`` / ``to_bytes``, and
keeps unknown JSON fields in ``unrecognized`` so re-emitting loses nothing. Signed files keep
their exact bytes in ``.raw``: sign and store ``raw``, never a re-serialisation. Parsers raise only
:class:`~asfaload.errors.AsfaloadError` subclasses (mostly ``FormatError``), never ``KeyError``,
``TypeError``, ``ValueError``, ``UnicodeDecodeError`` or ``RecursionError``.

Modules: ``signers`` (signers file and its derived groups), ``signatures`` (the signatures
envelope), ``timestamps`` (RFC 3339 parse/format).
"""

from __future__ import annotations

from .signatures import SignaturesFile
from .signers import GROUP_NAMES, SIGNERS_FILE_VERSION, SignerExtras, SignerGroup, SignersFile
from .timestamps import format_rfc3339, now_unix, parse_rfc3339, to_unix

__all__ = [
    "GROUP_NAMES",
    "SIGNERS_FILE_VERSION",
    "SignaturesFile",
    "SignerExtras",
    "SignerGroup",
    "SignersFile",
    "format_rfc3339",
    "now_unix",
    "parse_rfc3339",
    "to_unix",
]
