"""Git trees as the rules engine sees them: a read-only view, and a change turned into a new tree.

Both work by path lookup and touch only the trees along the paths involved, so their cost does
not grow with the size of the mirror.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pygit2
from pygit2.enums import FileMode

from ..errors import StoreError
from ..rules.tree import Change
from .objects.fast.trees import TreeEditor

MAIN = "refs/heads/main"

# The only entry kinds our mirror ever holds: plain files and directories (the pre-receive hook
# refuses symlinks, submodules and executables, and the writer only creates these two).
_BLOB = FileMode.BLOB
_TREE = FileMode.TREE
_TREE_MODE = b"40000"
_OBJ_TREE = int(pygit2.enums.ObjectType.TREE)


class GitTreeView:
    """A :class:`~asfaload.rules.tree.TreeView` over one git tree (or the empty tree).

    A git tree never changes, so reads are memoised for the life of the view: the rules engine
    reads the same few files (the subject, the project's history and signers files) several
    times per operation, and each uncached read walks the path from the root.
    """

    def __init__(self, repo: pygit2.Repository, tree: pygit2.Tree | None) -> None:
        self._repo = repo
        self._tree = tree
        self._reads: dict[str, bytes | None] = {}
        # Directories resolved so far: the rules read many files of the same few directories
        # (every ancestor of a subject, looking for its project), so each directory is walked
        # to once instead of once per file below it.
        self._dirs: dict[str, pygit2.Tree | None] = {"": tree}

    @property
    def tree_id(self) -> str | None:
        return None if self._tree is None else str(self._tree.id)

    def _dir(self, path: str) -> pygit2.Tree | None:
        try:
            return self._dirs[path]
        except KeyError:
            pass
        parent, _, name = path.rpartition("/")
        obj = self._entry(self._dir(parent), name)
        tree = obj if isinstance(obj, pygit2.Tree) else None
        self._dirs[path] = tree
        return tree

    @staticmethod
    def _entry(tree: pygit2.Tree | None, name: str) -> pygit2.Object | None:
        if tree is None or not name:
            return None
        try:
            return tree[name]
        except (KeyError, ValueError):
            return None

    def _lookup(self, path: str) -> pygit2.Object | None:
        if self._tree is None or not path:
            return None
        parent, _, name = path.rpartition("/")
        return self._entry(self._dir(parent), name)

    def read(self, path: str) -> bytes | None:
        try:
            return self._reads[path]
        except KeyError:
            pass
        obj = self._lookup(path)
        data = obj.data if isinstance(obj, pygit2.Blob) and obj.filemode == _BLOB else None
        self._reads[path] = data
        return data

    def is_dir(self, path: str) -> bool:
        """True when ``path`` is a directory holding at least one file beneath it.

        A tree with no file beneath it (which a push made before the mirror compared tree ids
        could plant) is no directory for the rules: it must not block a registration, an
        update or a revocation at its path.
        """
        if path == "":
            return True
        tree = self._dir(path)
        return tree is not None and tree_holds_file(
            tree, lambda oid: self._repo[oid].peel(pygit2.Tree)
        )

    def listdir(self, path: str) -> list[str]:
        tree = self._dir(path)
        if tree is None:
            return []
        return sorted(str(entry.name) for entry in tree)


def tree_holds_file(tree: pygit2.Tree, subtree: Callable[[pygit2.Oid], pygit2.Tree]) -> bool:
    """Whether any non-tree entry lies beneath ``tree`` (depth first, iterative: a hostile tree
    may be deep; it stops at the first file, so a real directory answers at once)."""
    pending = [tree]
    while pending:
        cur = pending.pop()
        subtrees = []
        for entry in cur:
            if entry.filemode != _TREE:
                return True
            subtrees.append(entry.id)
        pending.extend(subtree(oid) for oid in reversed(subtrees))
    return False


def empty_tree(repo: pygit2.Repository) -> pygit2.Oid:
    return repo.TreeBuilder().write()


def apply_change(repo: pygit2.Repository, tree: pygit2.Tree | None, change: Change) -> pygit2.Oid:
    """Write the objects of ``tree`` after ``change`` into ``repo`` and return the new root tree
    id: the fast object store's :class:`~.objects.fast.trees.TreeEditor` over the repository's
    object database.

    Only the trees along changed paths are rewritten; directories left empty by deletions are
    pruned (git cannot hold them anyway). A delete of a missing file, or a write that would turn a
    file into a directory or back, is an inexact change and raises StoreError.
    """
    odb = repo.odb

    def read(oid: pygit2.Oid) -> tuple[int, bytes]:
        kind, data = odb.read(oid)
        return int(kind), bytes(data)

    return TreeEditor(read, odb.write).apply(None if tree is None else tree.id, change)


@dataclass(frozen=True)
class PathChange:
    """One file changed between two trees: ``old``/``new`` are blob ids or None (absent);
    ``mode`` is the new entry's git file mode (0 when deleted), so the hook can refuse symlinks,
    submodules and executables."""

    path: str
    old: str | None
    new: str | None
    mode: int = 0


def diff_trees(
    repo: pygit2.Repository, old: pygit2.Tree | None, new: pygit2.Tree | None
) -> Iterator[PathChange]:
    """Files that differ between two trees, skipping equal subtrees by id.

    The one tree diff of the project (the pending index, the pre-receive hook, ``mirror
    verify`` and mirror sync all use it). It touches only the directories along changed paths,
    so a one-commit diff costs the same on a 1k- and a 100k-file mirror (libgit2's
    tree-to-tree diff walks every entry of both trees instead). Within a directory, the
    entries that differ are found by a set difference of its raw entries, and parsed trees are
    kept by id: consecutive commits share the directories they edit, so each is parsed once.
    No rename detection: a rename is a delete plus an add, as in a Change. ``mode`` is the new
    entry's git file mode (0 when deleted); a file replaced by a directory (or back) is a
    delete plus the added files. Order: directory by directory, names sorted (depth first).
    Iterative, so a maliciously deep pushed tree cannot exhaust Python's recursion limit.
    """
    odb = repo.odb
    stack = [_diff_frame(odb, None if old is None else old.id, None if new is None else new.id, "")]
    while stack:
        prefix, names, olds, news = stack[-1]
        if not names:
            stack.pop()
            continue
        name = names.pop()
        o, n = olds.get(name), news.get(name)
        path = prefix + name
        o_tree = o is not None and o[0] == _TREE_MODE
        n_tree = n is not None and n[0] == _TREE_MODE
        old_file = o[1].hex() if o is not None and not o_tree else None
        new_file = n[1].hex() if n is not None and not n_tree else None
        if old_file is not None or new_file is not None:
            mode = 0 if n is None or n_tree else int(n[0], 8)
            # A file beside a directory of the same name: the file entry first, then the
            # directory's files (both sort under ``path``).
            yield PathChange(path=path, old=old_file, new=new_file, mode=mode)
        if o_tree or n_tree:
            stack.append(
                _diff_frame(
                    odb,
                    pygit2.Oid(raw=o[1]) if o is not None and o_tree else None,
                    pygit2.Oid(raw=n[1]) if n is not None and n_tree else None,
                    path + "/",
                )
            )


class _RawTree:
    """A tree object as the diff reads it: its raw bytes and, per entry in order, where it
    starts, its name and its (mode, raw id)."""

    __slots__ = ("raw", "starts", "names", "values")

    def __init__(
        self,
        raw: bytes,
        starts: list[int],
        names: list[str],
        values: list[tuple[bytes, bytes]],
    ) -> None:
        self.raw, self.starts, self.names, self.values = raw, starts, names, values

    def end(self, i: int) -> int:
        return self.starts[i + 1] if i + 1 < len(self.starts) else len(self.raw)


def _parse_entries(
    raw: bytes, pos: int, stop: int
) -> tuple[list[int], list[str], list[tuple[bytes, bytes]], int]:
    starts: list[int] = []
    names: list[str] = []
    values: list[tuple[bytes, bytes]] = []
    while pos < stop:
        nul = raw.index(b"\0", pos)
        mode, _, name = raw[pos:nul].partition(b" ")
        starts.append(pos)
        names.append(name.decode("utf-8", "surrogateescape"))
        values.append((mode, raw[nul + 1 : nul + 21]))
        pos = nul + 21
    return starts, names, values, pos


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix of ``a`` and ``b`` (binary search over slice compares)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    lo, hi = 0, limit
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid :] == b[len(b) - mid :]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _middle(base: _RawTree, raw: bytes) -> tuple[int, int, int, int]:
    """Entries ``base[i:j]`` of the base tree and the byte range ``[pos, stop)`` of ``raw``
    outside of which both trees hold the same bytes at entry boundaries of ``base``."""
    old = base.raw
    p = _common_prefix(old, raw)
    q = _common_suffix(old, raw, min(len(old), len(raw)) - p)
    n = len(base.starts)
    lo, hi = 0, n  # first entry not wholly inside the common prefix
    while lo < hi:
        mid = (lo + hi) // 2
        if base.end(mid) <= p:
            lo = mid + 1
        else:
            hi = mid
    i = lo
    j = bisect_left(base.starts, len(old) - q, lo=i)
    pos = base.starts[i] if i < n else len(old)
    stop = (base.starts[j] if j < n else len(old)) + len(raw) - len(old)
    return i, j, pos, stop


class _TreeReader:
    """Parsed trees kept by id, each new version parsed against the one it is diffed with:
    consecutive versions of a directory share all but the entries a commit changed, so only
    the bytes between their common prefix and suffix are parsed (a directory of thousands of
    projects costs what its one changed entry costs)."""

    def __init__(self, limit: int = 1024) -> None:
        self._cache: dict[bytes, _RawTree] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def cached(self, oid: pygit2.Oid) -> _RawTree | None:
        return self._cache.get(oid.raw)

    def raw(self, odb: pygit2.Odb, oid: pygit2.Oid) -> bytes:
        kind, data = odb.read(oid)
        if kind != _OBJ_TREE:
            raise StoreError(f"{oid} is not a tree")
        return bytes(data)

    def read(self, odb: pygit2.Odb, oid: pygit2.Oid) -> _RawTree:
        hit = self._cache.get(oid.raw)
        if hit is not None:
            return hit
        raw = self.raw(odb, oid)
        starts, names, values, _ = _parse_entries(raw, 0, len(raw))
        return self.keep(oid, _RawTree(raw, starts, names, values))

    def keep(self, oid: pygit2.Oid, tree: _RawTree) -> _RawTree:
        with self._lock:
            if len(self._cache) >= self._limit:
                self._cache.clear()  # ids never change meaning: any subset stays true
            self._cache[oid.raw] = tree
        return tree


def _parse_against(
    base: _RawTree, raw: bytes, middle: tuple[int, int, int, int]
) -> _RawTree | None:
    """``raw`` parsed by reusing ``base``'s entries outside ``middle``; None when they do not
    line up (then it is parsed whole)."""
    i, j, pos, stop = middle
    if stop < pos:
        return None
    try:
        starts, names, values, end = _parse_entries(raw, pos, stop)
    except ValueError:
        return None
    if end != stop:
        return None
    delta = len(raw) - len(base.raw)
    return _RawTree(
        raw,
        base.starts[:i] + starts + [s + delta for s in base.starts[j:]],
        base.names[:i] + names + base.names[j:],
        base.values[:i] + values + base.values[j:],
    )


_trees = _TreeReader()
_Entries = dict[str, tuple[bytes, bytes]]


def _changed(
    old: _RawTree, new: _RawTree, middle: tuple[int, int, int, int]
) -> tuple[list[str], _Entries, _Entries]:
    """The names whose entries differ, and both sides' entries for them."""
    k, j, _, _ = middle
    # The same bytes outside the middle: there, the new tree's entries are the old ones.
    m = len(new.starts) - (len(old.starts) - j)
    if (
        m < k
        or new.names[:k] != old.names[:k]
        or new.values[:k] != old.values[:k]
        or new.names[m:] != old.names[j:]
        or new.values[m:] != old.values[j:]
    ):
        k, j, m = 0, len(old.starts), len(new.starts)  # not lined up: compare them whole
    olds = dict(zip(old.names[k:j], old.values[k:j], strict=True))
    news = dict(zip(new.names[k:m], new.values[k:m], strict=True))
    names = {name for name, _ in olds.items() ^ news.items()}
    return sorted(names, reverse=True), olds, news


def _diff_frame(
    odb: pygit2.Odb, old: pygit2.Oid | None, new: pygit2.Oid | None, prefix: str
) -> tuple[str, list[str], _Entries, _Entries]:
    old_tree = None if old is None else _trees.read(odb, old)
    if old_tree is None or new is None:
        side = old_tree if new is None else _trees.read(odb, new)
        entries = {} if side is None else dict(zip(side.names, side.values, strict=True))
        olds, news = (entries, {}) if new is None else ({}, entries)
        return prefix, sorted(entries, reverse=True), olds, news
    new_tree = _trees.cached(new)
    if new_tree is None:
        raw = _trees.raw(odb, new)
        middle = _middle(old_tree, raw)
        parsed = _parse_against(old_tree, raw, middle)
        if parsed is None:
            starts, names, values, _ = _parse_entries(raw, 0, len(raw))
            parsed = _RawTree(raw, starts, names, values)
        new_tree = _trees.keep(new, parsed)
    else:
        middle = _middle(old_tree, new_tree.raw)
    names, olds, news = _changed(old_tree, new_tree, middle)
    return prefix, names, olds, news
