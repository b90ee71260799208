"""Pure data and validation for every file asfaload stores or exchanges (no I/O).

Each class is a frozen dataclass that validates in its constructor, reads with ``from_dict`` (and
``from_bytes`` / ``parse`` where a file form exists), writes with ``to_dict`` / ``to_bytes``, and
keeps unknown JSON fields in ``unrecognized`` so re-emitting loses nothing. Signed files keep
their exact bytes in ``.raw``: sign and store ``raw``, never a re-serialisation. Parsers raise only
:class:`~asfaload.errors.AsfaloadError` subclasses (mostly ``FormatError``), never ``KeyError``,
``TypeError``, ``ValueError``, ``UnicodeDecodeError`` or ``RecursionError``.

Modules (each documents its JSON format and API in its docstring):

- ``signers``: :class:`SignersFile`, :class:`SignerGroup` and the derived groups
  (``admin_groups()``, ``master_groups()``, ``revocation_groups()``, ``all_signer_keys()``).
- ``signatures``: :class:`SignaturesFile`, the ``{"entries": {...}}`` envelope.
- ``index``: :class:`ReleaseIndex`, :class:`PublishedFile` (``asfaload.index.json``).
- ``metadata``: :class:`SignersMetadata` (``Forge`` origin, signed with the signers file).
- ``revocation``: :class:`RevocationDocument`.
- ``history``: :class:`HistoryEntry`, :class:`SignersHistory`, :class:`CurrentSignersInfo`,
  :class:`SignersChain` (raw bytes in base64).
- ``timestamps``: RFC 3339 ``parse_rfc3339`` / ``format_rfc3339`` for the whole project.
"""

from __future__ import annotations

from ._json import loads as parse_json
from .history import CurrentSignersInfo, HistoryEntry, SignersChain, SignersHistory
from .index import ACCEPTED_DOWNLOAD_ALGOS, ALGOS, PublishedFile, ReleaseIndex
from .metadata import FORGE_KINDS, SignersMetadata
from .revocation import RevocationDocument
from .signatures import SignaturesFile
from .signers import GROUP_NAMES, SIGNERS_FILE_VERSION, SignerExtras, SignerGroup, SignersFile
from .timestamps import format_rfc3339, now_unix, parse_rfc3339, to_unix

__all__ = [
    "ACCEPTED_DOWNLOAD_ALGOS",
    "ALGOS",
    "FORGE_KINDS",
    "CurrentSignersInfo",
    "HistoryEntry",
    "PublishedFile",
    "ReleaseIndex",
    "RevocationDocument",
    "SignersChain",
    "SignersHistory",
    "SignersMetadata",
    "GROUP_NAMES",
    "SIGNERS_FILE_VERSION",
    "SignaturesFile",
    "SignerExtras",
    "SignerGroup",
    "SignersFile",
    "format_rfc3339",
    "parse_json",
    "now_unix",
    "parse_rfc3339",
    "to_unix",
]
