"""The public reads of a mirror tree, shared by the REST backend and the client's git source.

``GET /v1/files/...`` and ``GET /v1/get_signers_chain/...`` answer from the tree at the tip of
``main``; a client verifying against a git mirror (``download --mirror``) reads the same facts
from the same tree with these same functions, so the two sources cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from .. import layout
from ..errors import FormatError, NotFoundError, StoreError
from ..model import SignaturesFile, SignersFile
from ..model.history import CurrentSignersInfo, SignersChain, SignersHistory
from ..model.metadata import SignersMetadata
from ..rules import queries
from ..rules.tree import TreeView

__all__ = ["clean_path", "current_info", "read_file", "signers_chain"]


def clean_path(path: str) -> str:
    """A request path as a clean mirror path, or 400 ``Invalid file path: …``."""
    if not path:
        raise FormatError("Invalid file path: File path cannot be empty")
    try:
        return layout.check_path(path)
    except FormatError:
        raise FormatError(f"Invalid file path: {path!r}") from None


def current_info(view: TreeView, project: str) -> CurrentSignersInfo | None:
    """The project's active signers file, its metadata and both signatures files."""
    signers = view.read(layout.signers_file_path(project))
    metadata = view.read(layout.metadata_path(project))
    if signers is None or metadata is None:
        return None

    def sigs(path: str) -> SignaturesFile:
        raw = view.read(layout.signatures_path(path))
        return SignaturesFile.empty() if raw is None else SignaturesFile.from_bytes(raw)

    return CurrentSignersInfo(
        signers_file=SignersFile.parse(signers),
        signatures=sigs(layout.signers_file_path(project)),
        metadata=SignersMetadata.from_bytes(metadata),
        metadata_signatures=sigs(layout.metadata_path(project)),
    )


def read_file(view: TreeView, path: str) -> bytes:
    """The bytes of the file at ``path``; NotFoundError, or FormatError for a directory."""
    p = clean_path(path)
    data = view.read(p)
    if data is None:
        if view.is_dir(p):
            raise FormatError(f"Invalid file path: Path is not a file: {p}")
        raise NotFoundError(f"File not found: {p}")
    return data


def signers_chain(view: TreeView, path: str) -> dict[str, Any]:
    """The signers history up to the signers file that governed ``path``.

    For a completed artifact that is its local signers copy (``X.signers.json``); otherwise
    the active signers file of its project. Returned twice: ``chain`` in the upstream
    client's shape (``history_entries`` + ``current_signers_info``) and ``history`` in the manual's
    shape (``{"entries": [...]}``, oldest first, ending with the governing file).
    """
    p = clean_path(path)
    project = queries.find_project(view, p)
    if project is None:
        raise FormatError(f"Invalid artifact path: no registered project for {p}")
    history = SignersHistory.from_bytes(view.read(layout.history_path(project)) or b"")
    current = current_info(view, project)
    local = None
    if not layout.in_signers_dir(p) and view.read(p) is not None:
        local = view.read(layout.local_signers_path(p))
    entries = list(history.entries)
    if local is not None and (current is None or current.signers_file.raw != local):
        # Signed under an older signers file: stop the chain at that file.
        cut = next((i for i, e in enumerate(entries) if e.signers_file.raw == local), None)
        if cut is None:
            raise StoreError(f"Signers copy of {p} is not in the project's history")
        governing: CurrentSignersInfo | None = entries[cut].info
        entries = entries[:cut]
    else:
        governing = current
    chain = SignersChain.build(entries, governing)
    manual = [e.to_dict() for e in entries]
    if governing is not None:
        manual.append(dict(governing.to_dict(), obsoleted_at=None))
    return {"chain": chain.to_dict(), "history": {"entries": manual}}
