"""A :class:`~asfaload.rules.tree.Change` grouped by directory: what both object stores edit."""

from __future__ import annotations

from ...errors import StoreError
from ...rules.tree import Change

# A node of the change, grouped by directory: bytes = write, None = delete, dict = subdirectory.
Node = dict[str, "bytes | None | Node"]


def group(change: Change) -> Node:
    """The change as nested directories; a path written both as a file and as a directory, or
    touched twice, is refused (StoreError)."""
    root: Node = {}
    items: list[tuple[str, bytes | None]] = [(p, d) for p, d in change.writes.items()]
    items += [(p, None) for p in change.deletes]
    for path, data in items:
        *dirs, name = path.split("/")
        node = root
        for d in dirs:
            sub = node.setdefault(d, {})
            if not isinstance(sub, dict):
                raise StoreError(f"Change writes both a file and a directory at {d!r}")
            node = sub
        if name in node:
            raise StoreError(f"Change touches {path!r} twice")
        node[name] = data
    return root


def invalid_name(name: str) -> bool:
    """A tree entry name libgit2's TreeBuilder refuses, so both stores refuse it alike."""
    return name in ("", ".", "..") or "\0" in name or name.lower() == ".git"
