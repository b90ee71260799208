"""The writer's trees, edited as raw tree objects (:class:`TreeEditor`) and read back by the rules
through the same parsed trees (:class:`EditorTreeView`)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable

import pygit2

from ....errors import StoreError
from ....rules.tree import Change
from ..changes import Node, group, invalid_name

_TREE_MODE = b"40000"
_BLOB_MODE = b"100644"
_OBJ_TREE = int(pygit2.enums.ObjectType.TREE)
_OBJ_BLOB = int(pygit2.enums.ObjectType.BLOB)
# A parsed tree: sort keys (the name, plus "/" for a directory: git's order) and the raw entries
# ("mode name\0" + 20-byte id), in order.
_Parsed = tuple[list[bytes], list[bytes]]


class TreeEditor:
    """A change turned into new trees along its paths, on raw tree objects: the trees and the
    refusals of libgit2's TreeBuilder (a property test holds the two together), for less work.
    The fast store's (with a cache kept across batches) and :func:`apply_change`'s.

    libgit2's TreeBuilder loads, re-sorts and re-serialises a whole tree for each level of each
    change, and hands every object it writes to the writer's Python object backend through a
    callback. Here a tree is parsed once into its sorted raw entries (and kept by id: trees
    never change, and consecutive operations edit the same directories), an edit is a bisect and
    a list splice, and the new tree is the entries joined. ``read(id)`` returns ``(type, data)``
    of an existing object; ``write(type, data)`` stores a new one and returns its id.
    """

    def __init__(
        self,
        read: Callable[[pygit2.Oid], tuple[int, bytes]],
        write: Callable[[int, bytes], pygit2.Oid],
        *,
        cache_limit: int = 1 << 14,
        blob_cache_bytes: int = 16 << 20,
    ) -> None:
        self._read = read
        self._write = write
        self._cache: dict[bytes, _Parsed] = {}
        self._cache_limit = cache_limit
        # Blobs by id, those written and those read: the next operations read what the ones
        # before them wrote (a signatures file gaining its next signature) and the same few
        # files again (a project's signers file), and a read from the packs grows dearer as
        # they pile up between folds. Bounded in bytes, cleared when full, as trees.
        self._blobs: dict[bytes, bytes] = {}
        self._blob_bytes = 0
        self._blob_limit = blob_cache_bytes

    def view(self, tree: pygit2.Oid | None) -> EditorTreeView:
        """The rules' view of ``tree``, read through the parsed trees (no libgit2 objects)."""
        return EditorTreeView(self, tree)

    def read_blob(self, entry: bytes) -> bytes:
        raw = entry[-20:]
        hit = self._blobs.get(raw)
        if hit is not None:
            return hit
        kind, data = self._read(pygit2.Oid(raw=raw))
        if kind != _OBJ_BLOB:
            raise StoreError("A tree names a blob that is not one")
        self._keep_blob(raw, data)
        return data

    def _keep_blob(self, raw: bytes, data: bytes) -> None:
        if len(data) > self._blob_limit // 16:
            return
        if self._blob_bytes + len(data) > self._blob_limit:
            self._blobs.clear()
            self._blob_bytes = 0
        if raw not in self._blobs:
            self._blobs[raw] = data
            self._blob_bytes += len(data)

    def apply(self, tree: pygit2.Oid | None, change: Change) -> pygit2.Oid:
        new = self._rebuild(tree, group(change), "")
        return self._store([], []) if new is None else new

    def parsed(self, oid: pygit2.Oid) -> _Parsed:
        """Tree ``oid`` as its sort keys and raw entries (kept by id: trees never change)."""
        hit = self._cache.get(oid.raw)
        if hit is not None:
            return hit
        kind, raw = self._read(oid)
        if kind != _OBJ_TREE:
            raise StoreError(f"{oid} is not a tree")
        keys: list[bytes] = []
        entries: list[bytes] = []
        pos, end = 0, len(raw)
        while pos < end:
            nul = raw.index(b"\0", pos)
            mode, _, name = raw[pos:nul].partition(b" ")
            keys.append(name + b"/" if mode == _TREE_MODE else name)
            entries.append(raw[pos : nul + 21])
            pos = nul + 21
        self._remember(oid, (keys, entries))
        return keys, entries

    def holds_file(self, oid: pygit2.Oid) -> bool:
        """Whether any file lies beneath tree ``oid`` (:meth:`GitTreeView.is_dir`'s meaning)."""
        pending = [oid]
        while pending:
            _, entries = self.parsed(pending.pop())
            subtrees = []
            for entry in entries:
                if not entry.startswith(_TREE_MODE + b" "):
                    return True
                subtrees.append(pygit2.Oid(raw=entry[-20:]))
            pending.extend(reversed(subtrees))
        return False

    def _remember(self, oid: pygit2.Oid, parsed: _Parsed) -> None:
        if len(self._cache) >= self._cache_limit:
            self._cache.clear()
        self._cache[oid.raw] = parsed

    def _store(self, keys: list[bytes], entries: list[bytes]) -> pygit2.Oid:
        oid = self._write(_OBJ_TREE, b"".join(entries))
        self._remember(oid, (keys, entries))
        return oid

    def _rebuild(self, tree: pygit2.Oid | None, node: Node, prefix: str) -> pygit2.Oid | None:
        if tree is None:
            keys: list[bytes] = []
            entries: list[bytes] = []
        else:
            old_keys, old_entries = self.parsed(tree)
            keys, entries = list(old_keys), list(old_entries)
        for name, value in node.items():
            path = prefix + name
            if invalid_name(name):
                raise StoreError(f"Invalid path {path!r}")  # as libgit2's TreeBuilder refuses
            nb = name.encode()
            f = bisect_left(keys, nb)
            has_file = f < len(keys) and keys[f] == nb
            is_blob = has_file and entries[f].startswith(_BLOB_MODE + b" ")
            dk = nb + b"/"
            d = bisect_left(keys, dk)
            is_dir = d < len(keys) and keys[d] == dk
            if isinstance(value, dict):
                if has_file:
                    raise StoreError(f"Cannot create a directory over the file {path!r}")
                sub = pygit2.Oid(raw=entries[d][-20:]) if is_dir else None
                new = self._rebuild(sub, value, path + "/")
                if new is None:
                    if is_dir:
                        del keys[d], entries[d]
                    continue
                entry = _TREE_MODE + b" " + nb + b"\0" + new.raw
                if is_dir:
                    entries[d] = entry
                else:
                    keys.insert(d, dk)
                    entries.insert(d, entry)
            elif value is None:
                if not is_blob:
                    raise StoreError(f"Cannot delete {path!r}: no such file")
                del keys[f], entries[f]
            else:
                if is_dir and self.holds_file(pygit2.Oid(raw=entries[d][-20:])):
                    raise StoreError(f"Cannot write the file {path!r} over a directory")
                if has_file and not is_blob:
                    raise StoreError(f"Cannot write the file {path!r} over a directory")
                if is_dir:
                    # A directory with no file beneath it is nothing the rules see (see
                    # GitTreeView.is_dir): the file takes its place.
                    del keys[d], entries[d]
                    f = bisect_left(keys, nb)
                blob = self._write(_OBJ_BLOB, value).raw
                self._keep_blob(blob, value)
                entry = _BLOB_MODE + b" " + nb + b"\0" + blob
                if has_file:
                    entries[f] = entry
                else:
                    keys.insert(f, nb)
                    entries.insert(f, entry)
        if not entries:
            return None
        return self._store(keys, entries)


def _find(parsed: _Parsed, name: str, directory: bool) -> bytes | None:
    """The raw entry ``name`` (a directory, or not) of a parsed tree, or None."""
    keys, entries = parsed
    key = name.encode() + (b"/" if directory else b"")
    i = bisect_left(keys, key)
    return entries[i] if i < len(keys) and keys[i] == key else None


class EditorTreeView:
    """:class:`GitTreeView`'s answers, from :class:`TreeEditor`'s parsed trees: the writer's
    view of each operation's tree. The directories an operation reads are the ones the one
    before it edited, so they are parsed already; and no libgit2 object is made per lookup.
    """

    def __init__(self, editor: TreeEditor, tree: pygit2.Oid | None) -> None:
        self._editor = editor
        self._reads: dict[str, bytes | None] = {}
        self._dirs: dict[str, _Parsed | None] = {"": None if tree is None else editor.parsed(tree)}

    def _dir(self, path: str) -> _Parsed | None:
        try:
            return self._dirs[path]
        except KeyError:
            pass
        parent, _, name = path.rpartition("/")
        up = self._dir(parent)
        entry = None if up is None or not name else _find(up, name, True)
        parsed = None if entry is None else self._editor.parsed(pygit2.Oid(raw=entry[-20:]))
        self._dirs[path] = parsed
        return parsed

    def read(self, path: str) -> bytes | None:
        try:
            return self._reads[path]
        except KeyError:
            pass
        parent, _, name = path.rpartition("/")
        up = self._dir(parent) if path else None
        entry = None if up is None or not name else _find(up, name, False)
        data = None
        if entry is not None and entry.startswith(_BLOB_MODE + b" "):
            data = self._editor.read_blob(entry)
        self._reads[path] = data
        return data

    def is_dir(self, path: str) -> bool:
        if path == "":
            return True
        if self._dir(path) is None:
            return False
        parent, _, name = path.rpartition("/")
        up = self._dir(parent)
        entry = None if up is None else _find(up, name, True)
        return entry is not None and self._editor.holds_file(pygit2.Oid(raw=entry[-20:]))

    def listdir(self, path: str) -> list[str]:
        parsed = self._dir(path)
        if parsed is None:
            return []
        return sorted(k.rstrip(b"/").decode() for k in parsed[0])
