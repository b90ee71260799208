"""The two types every writer of the mirror shares: a read-only view of a tree and a change.

The rules engine is pure: it reads a :class:`TreeView` of the mirror *before* an operation and
returns a :class:`Change` (the exact writes and deletes), or raises a
:class:`~asfaload.errors.RuleViolation`. The store turns a change into one git commit; the
pre-receive hook compares a pushed commit with the change the rules derive. Git has no renames,
so a rename is a delete plus a write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

# check_path lives in layout (below rules) so layout can use it without an import cycle.
from ..layout import check_path

__all__ = ["Change", "DictTree", "Operation", "OverlayTree", "TreeView", "check_path"]


class TreeView(Protocol):
    """Read-only view of a mirror tree. Paths are relative, '/'-separated."""

    def read(self, path: str) -> bytes | None:
        """Content of the file at ``path``, or None when there is no file there."""
        ...

    def is_dir(self, path: str) -> bool:
        """True when ``path`` names a directory ('' is the root)."""
        ...

    def listdir(self, path: str) -> list[str]:
        """Sorted entry names of directory ``path`` ('' is the root); [] when absent."""
        ...


@dataclass(frozen=True)
class Change:
    """The exact effect of one operation: one commit's worth of writes and deletes."""

    message: str
    writes: Mapping[str, bytes] = field(default_factory=dict)
    deletes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for p in self.writes:
            check_path(p)
        for p in self.deletes:
            check_path(p)
        overlap = set(self.writes) & self.deletes
        if overlap:
            raise ValueError(f"paths both written and deleted: {sorted(overlap)}")
        object.__setattr__(self, "writes", MappingProxyType(dict(self.writes)))

    def __reduce__(self) -> tuple[type[Change], tuple[str, dict[str, bytes], frozenset[str]]]:
        # Through the constructor (a mappingproxy does not pickle): results cross from the
        # writer process to the server's workers.
        return (Change, (self.message, dict(self.writes), self.deletes))

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(self.writes) | self.deletes

    def then(self, other: Change, message: str | None = None) -> Change:
        """Compose: apply ``self`` then ``other`` (later writes/deletes win)."""
        writes = {k: v for k, v in self.writes.items() if k not in other.deletes}
        writes.update(other.writes)
        deletes = (self.deletes - set(other.writes)) | other.deletes
        return Change(message or self.message, writes, frozenset(deletes))


class DictTree:
    """An in-memory tree: the reference TreeView for pure tests and overlays."""

    def __init__(self, files: Mapping[str, bytes] | None = None) -> None:
        self._files: dict[str, bytes] = dict(files or {})

    def read(self, path: str) -> bytes | None:
        return self._files.get(path)

    def is_dir(self, path: str) -> bool:
        if path == "":
            return True
        prefix = path + "/"
        return any(p.startswith(prefix) for p in self._files)

    def listdir(self, path: str) -> list[str]:
        prefix = "" if path == "" else path + "/"
        names = {p[len(prefix) :].split("/", 1)[0] for p in self._files if p.startswith(prefix)}
        return sorted(names)

    def files(self) -> dict[str, bytes]:
        return dict(self._files)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._files))


class OverlayTree:
    """The view of ``base`` after ``change`` — lets a batch of operations see earlier ones."""

    def __init__(self, base: TreeView, change: Change) -> None:
        self._base = base
        self._change = change

    def read(self, path: str) -> bytes | None:
        if path in self._change.writes:
            return self._change.writes[path]
        if path in self._change.deletes:
            return None
        return self._base.read(path)

    def is_dir(self, path: str) -> bool:
        return bool(self.listdir(path)) or path == ""

    def listdir(self, path: str) -> list[str]:
        prefix = "" if path == "" else path + "/"
        names = set()
        for name in self._base.listdir(path):
            full = prefix + name
            if full in self._change.deletes:
                continue
            if self._base.read(full) is None and not self._has_live_under(full):
                continue
            names.add(name)
        for p in self._change.writes:
            if p.startswith(prefix):
                names.add(p[len(prefix) :].split("/", 1)[0])
        return sorted(names)

    def _has_live_under(self, d: str) -> bool:
        # A directory stays visible unless every file beneath it was deleted.
        stack = [d]
        while stack:
            cur = stack.pop()
            for name in self._base.listdir(cur):
                full = cur + "/" + name
                if self._base.read(full) is not None:
                    if full not in self._change.deletes:
                        return True
                else:
                    stack.append(full)
        return any(p.startswith(d + "/") for p in self._change.writes)


# An operation: given the tree before and the commit time (Unix seconds, the committer time of
# the commit it becomes), return the change or raise an AsfaloadError. Must be deterministic.
Operation = Callable[[TreeView, int], Change]
