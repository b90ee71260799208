"""Each batch of the writer lands on disk as one pack file, not as loose objects.

libgit2 writes every new object as its own loose file (a temp file, a write, a rename into a
fan-out directory), and one signature's commit holds a dozen new objects (the blob, the trees
along its path, the commit). The writer instead builds them itself (:class:`.trees.TreeEditor`,
:func:`.commits.commit_bytes`) into :class:`BatchObjects`, an in-memory object-database backend
that libgit2 also reads through, and :func:`write_pack` then stores the whole batch as one pack
with its index before the ref moves: a few file operations per batch instead of per object.

One pack per batch means many small packs; :class:`Consolidator` folds them in the background
(:func:`choose_fold`, :func:`fold_packs`), so object lookups stay fast and dumb-HTTP clients
fetch a bounded number of packs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import mmap
import os
import signal
import struct
import subprocess
import sys
import threading
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import pygit2

from ....errors import StoreError
from ...durable import lock_path_for, sync_filesystem
from .info import pack_names, refresh_pack_list
from .trees import TreeEditor

log = logging.getLogger(__name__)

_MAX_STORED_BLOCK = 0xFFFF
_OFS_DELTA = 6
_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, no dictionary, fastest (RFC 1950)
_BLOCK = struct.Struct("<BHH")  # a stored block's header: final flag, length, its complement
_ADLER = struct.Struct(">I")
_TYPE_NAMES = {
    int(pygit2.enums.ObjectType.COMMIT): "commit",
    int(pygit2.enums.ObjectType.TREE): "tree",
    int(pygit2.enums.ObjectType.BLOB): "blob",
    int(pygit2.enums.ObjectType.TAG): "tag",
}


class BatchObjects(pygit2.OdbBackend):
    """The writer's object database: the batch being built, in memory, over the mirror's packs
    and loose objects on disk.

    New objects arrive through :meth:`write_raw`, built by the writer: libgit2's own write path
    would probe the disk for each object first. Reads fall through to the disk
    backends, rescanning the pack list once when an object that must exist is missing (another
    process's pack, a push).
    """

    def __init__(self, objects_dir: str) -> None:
        super().__init__()
        self._new: dict[pygit2.Oid, tuple[int, bytes]] = {}
        self._recent: dict[pygit2.Oid, tuple[int, bytes]] = {}
        self._packs = pygit2.OdbBackendPack(objects_dir)
        self._disk = (self._packs, pygit2.OdbBackendLoose(objects_dir, 1, False))

    def take(self) -> dict[pygit2.Oid, tuple[int, bytes]]:
        """The objects written since the last call; they are no longer readable from here."""
        new, self._new = self._new, {}
        return new

    def packed(self, objects: dict[pygit2.Oid, tuple[int, bytes]]) -> None:
        """``objects`` are now in a pack: keep them readable from memory until the next pack.

        The next batch starts by reading the tip commit, and its operations the trees and
        files the last one wrote; from the new pack, each read would first miss in every pack
        libgit2 knows and then rescan the pack directory.
        """
        self._recent = objects

    def _read_disk(self, oid: pygit2.Oid) -> tuple[int, bytes]:
        for rescanned in (False, True):
            if rescanned:
                self._packs.refresh()
            for backend in self._disk:
                try:
                    kind, data = backend.read(oid)
                except KeyError:
                    continue
                return int(kind), data
        raise KeyError(oid)

    # --- the libgit2 backend interface (a KeyError is "not found") ----------------------------
    def read_cb(self, oid: pygit2.Oid) -> tuple[int, bytes]:
        hit = self._new.get(oid) or self._recent.get(oid)
        return hit if hit is not None else self._read_disk(oid)

    def read_prefix_cb(self, oid: pygit2.Oid) -> tuple[int, bytes, pygit2.Oid]:
        # The writer never looks objects up by an abbreviated id: libgit2 passes full ids here.
        kind, data = self.read_cb(oid)
        return kind, data, oid

    def read_header_cb(self, oid: pygit2.Oid) -> tuple[int, int]:
        kind, data = self.read_cb(oid)
        return kind, len(data)

    def write_raw(self, kind: int, data: bytes) -> pygit2.Oid:
        """Store a new object built outside libgit2 (:class:`.trees.TreeEditor`); its id."""
        header = f"{_TYPE_NAMES[kind]} {len(data)}\0".encode()
        oid = pygit2.Oid(raw=hashlib.sha1(header + data).digest())
        self._new[oid] = (kind, data)
        return oid

    def exists_cb(self, oid: pygit2.Oid) -> bool:
        return oid in self._new or oid in self._recent or any(b.exists(oid) for b in self._disk)

    def exists_prefix_cb(self, oid: pygit2.Oid) -> pygit2.Oid:
        if self.exists_cb(oid):
            return oid
        raise KeyError(oid)

    def refresh_cb(self) -> None:
        return None

    def __iter__(self) -> Iterator[pygit2.Oid]:
        return iter(list(self._new))


class WriterObjects:
    """A repository whose new objects go to memory until :meth:`flush` packs them."""

    def __init__(self, repo_path: str) -> None:
        self.repo = pygit2.Repository(repo_path)
        self.pack_dir = os.path.join(repo_path, "objects", "pack")
        self._objects = BatchObjects(os.path.join(repo_path, "objects"))
        odb = pygit2.Odb()
        odb.add_backend(self._objects, 1)
        self.repo.set_odb(odb)
        self.trees = TreeEditor(self._objects.read_cb, self._objects.write_raw)

    def write(self, kind: int, data: bytes) -> pygit2.Oid:
        """Add an object built outside libgit2 to the batch; its id."""
        return self._objects.write_raw(kind, data)

    def discard(self) -> None:
        self._objects.take()

    def flush(self) -> str | None:
        """Write the objects created since the last flush as one pack; its name, or None when
        there were none. Not durable by itself: the caller's barrier covers it."""
        objects = self._objects.take()
        if not objects:
            return None
        name = write_pack(objects, self.pack_dir)
        self._objects.packed(objects)
        return name


def _entry_header(kind: int, size: int) -> bytes:
    """The pack entry header: type and size, 4 bits then 7 bits per byte, little end first."""
    out = bytearray()
    byte = (kind << 4) | (size & 0x0F)
    size >>= 4
    while size:
        out.append(byte | 0x80)
        byte = size & 0x7F
        size >>= 7
    out.append(byte)
    return bytes(out)


def _stored_zlib(data: bytes) -> bytes:
    """``data`` as a zlib stream of stored (uncompressed) deflate blocks.

    Not ``zlib.compress``: compressing is the dearer part of a call, and the mirror's
    signatures and digests hardly compress. Folds copy these entries as they are; only an
    operator's offline ``git repack -A -d -F`` deltifies and compresses them.
    """
    n = len(data)
    if n <= _MAX_STORED_BLOCK:  # nearly every object: one final block
        return b"".join(
            (_ZLIB_HEADER, _BLOCK.pack(1, n, n ^ 0xFFFF), data, _ADLER.pack(zlib.adler32(data)))
        )
    out = [_ZLIB_HEADER]
    pos = 0
    while True:
        block = data[pos : pos + _MAX_STORED_BLOCK]
        pos += _MAX_STORED_BLOCK
        final = pos >= n
        size = len(block)
        out.append(_BLOCK.pack(1 if final else 0, size, size ^ 0xFFFF))
        out.append(block)
        if final:
            break
    out.append(_ADLER.pack(zlib.adler32(data)))
    return b"".join(out)


def write_pack(objects: dict[pygit2.Oid, tuple[int, bytes]], pack_dir: str) -> str:
    """Write ``objects`` as a version-2 pack (no deltas) and its version-2 index; the pack name.

    Written here rather than by pygit2's PackBuilder, which re-reads every object through the
    object database and runs libgit2's indexer over the result, for packs that live only until
    the next fold: the objects and their ids are in hand already. The format is git's
    (Documentation/gitformat-pack.txt); ``git verify-pack`` and ``git fsck`` check it in the
    tests. The index is renamed into place last: readers find packs by their index.
    """
    entries: list[tuple[bytes, int, int]] = []  # (raw id, offset, crc32)
    chunks = [struct.pack(">4sII", b"PACK", 2, len(objects))]
    offset = 12
    for oid, (kind, data) in objects.items():
        entry = _entry_header(kind, len(data)) + _stored_zlib(data)
        entries.append((oid.raw, offset, zlib.crc32(entry)))
        chunks.append(entry)
        offset += len(entry)
    body = b"".join(chunks)
    checksum = hashlib.sha1(body).digest()
    entries.sort()
    raws, offsets, crcs = zip(*entries, strict=True) if entries else ((), (), ())
    name = "pack-" + checksum.hex()
    token = f"{os.getpid()}_{threading.get_ident()}"
    # git's own temporary names in objects/pack, which its gc knows to clean after a crash.
    tmp = os.path.join(pack_dir, "tmp_pack_" + token)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
    with os.fdopen(fd, "wb") as f:
        f.write(body + checksum)
    os.replace(tmp, os.path.join(pack_dir, name + ".pack"))
    _install_index(pack_dir, name, _index_bytes(raws, offsets, crcs, checksum))
    return name


def _index_bytes(
    raws: Sequence[bytes], offsets: Sequence[int], crcs: Sequence[int], checksum: bytes
) -> bytes:
    """A version-2 pack index: ``raws`` sorted, with each one's offset and crc32."""
    n = len(raws)
    # Where each leading byte's ids end, by bisection of the sorted ids: 256 C-level searches
    # instead of a Python step per object.
    fanout = [bisect_left(raws, bytes((i,))) for i in range(1, 256)] + [n]
    small = list(offsets)
    large: list[int] = []
    if max(offsets, default=0) >= 0x80000000:
        for i, off in enumerate(offsets):
            if off >= 0x80000000:
                small[i] = 0x80000000 | len(large)
                large.append(off)
    index = b"".join(
        [
            b"\377tOc",
            struct.pack(">I", 2),
            struct.pack(">256I", *fanout),
            b"".join(raws),
            struct.pack(f">{n}I", *crcs),
            struct.pack(f">{n}I", *small),
            struct.pack(f">{len(large)}Q", *large),
            checksum,
        ]
    )
    return index + hashlib.sha1(index).digest()


def _install_index(pack_dir: str, name: str, index: bytes) -> None:
    """Rename the index of pack ``name`` into place: the pack becomes visible to readers."""
    tmp = os.path.join(pack_dir, f"tmp_idx_{os.getpid()}_{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
    with os.fdopen(fd, "wb") as f:
        f.write(index)
    os.replace(tmp, os.path.join(pack_dir, name + ".idx"))


@dataclass(frozen=True)
class _PackIndex:
    """A version-2 index read back: ids in index order (sorted), each one's offset and crc32."""

    raws: list[bytes]
    offsets: list[int]
    crcs: tuple[int, ...]


def _read_index(path: str) -> _PackIndex | None:
    """The entries of a version-2 index; None for any other."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8 + 1024 or data[:8] != b"\377tOc\0\0\0\2":
        return None
    n = struct.unpack_from(">I", data, 8 + 255 * 4)[0]
    ids = 8 + 1024
    crcs = ids + 20 * n
    offs = crcs + 4 * n
    large = offs + 4 * n
    if len(data) < large + 40:
        return None
    off = list(struct.unpack_from(f">{n}I", data, offs))
    if off and max(off) >= 0x80000000:
        for i, o in enumerate(off):
            if o & 0x80000000:
                off[i] = struct.unpack_from(">Q", data, large + 8 * (o & 0x7FFFFFFF))[0]
    return _PackIndex(
        [data[i : i + 20] for i in range(ids, crcs, 20)],
        off,
        struct.unpack_from(f">{n}I", data, crcs),
    )


def fold_packs(pack_dir: str, names: list[str]) -> str | None:
    """Copy the objects of packs ``names`` into one new pack with its index; its name
    (``pack-<sha>``), or None when an index is not version 2 (left to git).

    Entries are copied byte for byte, in order; an object already copied (the writer does not
    look for an object on disk before writing it again, and thin pushes bring bases along) is
    skipped, and an offset delta gets its base's new distance (the base precedes it, so its
    new offset is known) and a new CRC. Not ``git pack-objects``, which re-reads and
    re-indexes every object it is given and, with ``--stdin-packs``, also walks the trees of
    every commit it packs: the packs' entries need only be copied.

    The packs the writer folds hold no deltas and few repeats, so each is copied in a few
    pieces and its index entries are moved as whole lists, never a Python object per entry:
    what is left is mostly hashing and copying bytes.
    """
    sources: list[tuple[str, _PackIndex]] = []
    for name in names:
        index = _read_index(pack_file(pack_dir, name, ".idx"))
        if index is None:
            return None
        sources.append((os.path.join(pack_dir, name), index))
    count = len(set().union(*(index.raws for _, index in sources)))
    taken: dict[bytes, int] = {}  # raw id -> offset in the new pack
    crcs: dict[bytes, int] = {}
    tmp = os.path.join(pack_dir, f"tmp_pack_{os.getpid()}_{threading.get_ident()}")
    digest = hashlib.sha1()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
    try:
        with os.fdopen(fd, "wb") as out:
            header = struct.pack(">4sII", b"PACK", 2, count)
            digest.update(header)
            out.write(header)
            pos = 12
            for path, index in sources:
                with (
                    open(path, "rb") as f,
                    mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data,
                ):
                    if data[:4] != b"PACK" or len(data) < 32:
                        raise StoreError(f"{os.path.basename(path)} is not a pack")
                    copy = _PackCopy(data, index, out, digest, taken, crcs)
                    pos = copy.run(pos)
            checksum = digest.digest()
            out.write(checksum)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    name = "pack-" + checksum.hex()
    os.replace(tmp, os.path.join(pack_dir, name + ".pack"))
    raws = sorted(taken)
    index_bytes = _index_bytes(
        raws, list(map(taken.__getitem__, raws)), list(map(crcs.__getitem__, raws)), checksum
    )
    _install_index(pack_dir, name, index_bytes)
    return name


# The first byte of an entry, mapped to 1 for an offset delta (type bits 4-6) and 0 otherwise.
_IS_OFS_DELTA = bytes(int((b >> 4) & 7 == _OFS_DELTA) for b in range(256))


class _PackCopy:
    """Appends one source pack's entries that are not ``taken`` yet to the new pack."""

    def __init__(
        self,
        data: mmap.mmap,
        index: _PackIndex,
        out: BinaryIO,
        digest: hashlib._Hash,
        taken: dict[bytes, int],
        crcs: dict[bytes, int],
    ) -> None:
        self.data = data
        self.index = index
        self.out = out
        self.digest = digest
        self.taken = taken
        self.crcs = crcs
        self.end = len(data) - 20

    def run(self, pos: int) -> int:
        """Copy at ``pos`` of the new pack; the new end."""
        index = self.index
        if struct.unpack_from(">I", self.data, 8)[0] != len(index.raws):
            raise StoreError("A pack and its index disagree on its number of objects")
        kinds = bytes(map(self.data.__getitem__, index.offsets))
        if 1 in kinds.translate(_IS_OFS_DELTA):
            return self._entry_by_entry(pos)
        return self._pieces(pos, self._repeated_raws())

    def _repeated_raws(self) -> list[bytes]:
        """The ids of this pack already taken from an earlier one."""
        if self.taken.keys().isdisjoint(self.index.raws):
            return []
        return [raw for raw in self.index.raws if raw in self.taken]

    def _offset_of(self, raw: bytes) -> int:
        return self.index.offsets[bisect_left(self.index.raws, raw)]

    def _write(self, start: int, stop: int) -> None:
        with memoryview(self.data) as view, view[start:stop] as piece:
            self.digest.update(piece)
            self.out.write(piece)

    def _pieces(self, pos: int, repeats: list[bytes]) -> int:
        """No deltas: all but the entries of ``repeats``, in whole pieces."""
        index = self.index
        if not repeats:  # nearly every fold: the whole pack, every entry moved alike
            self._write(12, self.end)
            shift = pos - 12
            moved = [off + shift for off in index.offsets]
            self.taken.update(zip(index.raws, moved, strict=True))
            self.crcs.update(zip(index.raws, index.crcs, strict=True))
            return pos + self.end - 12
        repeated = sorted(map(self._offset_of, repeats))
        starts = sorted(index.offsets)
        piece_starts: list[int] = []  # where each piece copied starts in the source ...
        shifts: list[int] = []  # ... and how far its entries move
        start = 12
        for off in [*repeated, self.end]:
            if start < off:
                self._write(start, off)
                piece_starts.append(start)
                shifts.append(pos - start)
                pos += off - start
            k = bisect_right(starts, off)  # a repeated entry ends where the next one starts
            start = starts[k] if k < len(starts) else self.end
        skip = set(repeated)
        # Every entry moved by its piece's shift in one pass; then the repeated ones get back
        # the places (and crcs) of the copies taken before.
        earlier = [(raw, self.taken[raw], self.crcs[raw]) for raw in repeats]
        moved = [
            off if off in skip else off + shifts[bisect_right(piece_starts, off) - 1]
            for off in index.offsets
        ]
        self.taken.update(zip(index.raws, moved, strict=True))
        self.crcs.update(zip(index.raws, index.crcs, strict=True))
        self.taken.update((raw, off) for raw, off, _ in earlier)
        self.crcs.update((raw, crc) for raw, _, crc in earlier)
        return pos

    def _entry_by_entry(self, pos: int) -> int:
        """A pack with offset deltas: each entry on its own, deltas pointed at their bases' new
        places (a base precedes its delta, so its new offset is known)."""
        index = self.index
        entries = sorted(zip(index.offsets, index.raws, index.crcs, strict=True))
        ends = [off for off, _, _ in entries[1:]] + [self.end]
        offsets: dict[int, int] = {}  # offset in this pack -> offset in the new one
        for (off, raw, crc), stop in zip(entries, ends, strict=True):
            if raw in self.taken:
                offsets[off] = self.taken[raw]
                continue
            entry = self.data[off:stop]
            if (entry[0] >> 4) & 7 == _OFS_DELTA:
                entry = _moved_delta(entry, off, pos, offsets)
                crc = zlib.crc32(entry)
            self.digest.update(entry)
            self.out.write(entry)
            offsets[off] = self.taken[raw] = pos
            self.crcs[raw] = crc
            pos += len(entry)
        return pos


def _moved_delta(entry: bytes, off: int, pos: int, moved: dict[int, int]) -> bytes:
    """An offset-delta entry read at ``off``, rewritten for offset ``pos`` of the new pack."""
    i = 0
    while entry[i] & 0x80:  # the type-and-size header
        i += 1
    i += 1
    start = i
    c = entry[i]
    i += 1
    distance = c & 0x7F
    while c & 0x80:  # git's offset encoding: base-128, each continuation adds one
        c = entry[i]
        i += 1
        distance = ((distance + 1) << 7) | (c & 0x7F)
    try:
        base = moved[off - distance]
    except KeyError:
        raise StoreError("A pack holds a delta whose base is not in it") from None
    n = pos - base
    encoded = [n & 0x7F]
    n >>= 7
    while n:
        n -= 1
        encoded.append(0x80 | (n & 0x7F))
        n >>= 7
    return entry[:start] + bytes(reversed(encoded)) + entry[i:]


def pack_file(pack_dir: str, pack: str, ext: str) -> str:
    """The ``ext`` file (``.idx``, ``.keep`` ...) of pack ``pack`` (``pack-<sha>.pack``)."""
    return os.path.join(pack_dir, pack[: -len(".pack")] + ext)


# git's fold, for when pushes left loose objects: no delta search and no recompression, so it
# copies like fold_packs does (signatures and digests hardly compress, and git's defaults would
# spend the writer's CPU on them at every fold).
_ROLLUP = (
    *("-c", "pack.window=0", "-c", "pack.compression=0", "pack-objects"),
    *("--stdin-packs", "--unpacked", "--delta-base-offset", "--non-empty", "--quiet"),
)
# A pack's files; the index goes first, so readers stop seeing the pack before it goes.
_PACK_FILES = (".idx", ".pack", ".rev", ".bitmap", ".mtimes", ".promisor")


def pack_objects(pack_dir: str, name: str) -> int:
    """The number of objects in pack ``name``, from its header (0 if unreadable)."""
    try:
        with open(os.path.join(pack_dir, name), "rb") as f:
            header = f.read(12)
    except OSError:
        return 0
    if len(header) < 12 or header[:4] != b"PACK":
        return 0
    return int(struct.unpack(">I", header[8:12])[0])


def choose_fold(sizes: dict[str, int], fan_in: int) -> list[str]:
    """The packs to fold into one: every pack of the lowest level holding ``fan_in`` packs, and
    the smaller ones; none when no level is full.

    A pack's level is ``floor(log(objects, fan_in))``: a size-tiered merge, so an object is
    copied about once per level, log(N, fan_in) times, and at most ``fan_in - 1`` packs wait
    per level. A geometric progression (``git repack --geometric=2``, the libgit2 store's fold)
    rolls the small packs into those of similar size again and again, like a binary counter, so
    each object is copied more often for a similar pack count.
    """
    levels: dict[int, list[str]] = {}
    for name, n in sizes.items():
        level = 0
        while n >= fan_in:
            n //= fan_in
            level += 1
        levels.setdefault(level, []).append(name)
    for level in sorted(levels):
        if len(levels[level]) >= fan_in:
            return sorted(n for lv, names in levels.items() if lv <= level for n in names)
    return []


class Consolidator:
    """Folds the writer's small packs, checking every ``fan_in`` packs written.

    A fold copies the packs :func:`choose_fold` picks into one (:func:`fold_packs`; git's
    ``pack-objects`` when pushes left loose objects, which it packs too); the new pack is made
    durable, then the folded packs are removed, index first. It takes every object of the packs
    it folds, referenced or not, so a batch whose ref update is still in flight keeps its
    objects. Nothing is deltified or recompressed; ``git repack -A -d -F`` compacts a mirror's
    storage offline (docs/architecture.md). A crash between the new pack and the removals
    leaves objects twice, which the next fold drops.

    It runs in a background thread, outside the writer lock (writers keep going), one at a time
    across processes (a try-lock beside the repository, which git holds too while it writes).
    ``refresh_info`` is then called to rewrite the dumb-HTTP pack list.
    """

    def __init__(
        self,
        repo_path: str,
        refresh_info: Callable[[], None],
        *,
        fan_in: int = 16,
        child: FoldChild | None = None,
    ) -> None:
        if fan_in < 2:
            raise ValueError("fan_in must be at least 2")
        self._repo_path = repo_path
        self._pack_dir = os.path.join(repo_path, "objects", "pack")
        self._refresh_info = refresh_info
        self._fan_in = fan_in
        self._since = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._child = child

    def packed(self) -> None:
        """Called by the writer after each pack it writes."""
        with self._lock:
            self._since += 1
            if self._since < self._fan_in:
                return
            if self._child is not None:
                self._since = 0
                self._child.poke()
                return
            if self._thread and self._thread.is_alive():
                return
            self._since = 0
            self._thread = threading.Thread(
                target=self.run, name="asfaload-mirror-repack", daemon=True
            )
            self._thread.start()

    def wait(self) -> None:
        """Until the fold under way (if any) has finished; with a child, it is stopped."""
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()
        if self._child is not None:
            self._child.close()

    def run(self) -> bool:
        """Fold while some level is full, unless another process is at it; True when a fold
        ran."""
        fd = os.open(lock_path_for(self._repo_path, "repack"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            folded = False
            try:
                while self._fold_once(fd):
                    folded = True
            except Exception:  # a pack it cannot read, a full disk: the packs stay as they are
                log.exception("folding the mirror's packs failed")
            if folded:
                try:
                    self._refresh_info()
                except Exception:
                    log.exception("rewriting the pack list after a repack failed")
            return folded
        finally:
            os.close(fd)

    def _fold_once(self, lock_fd: int) -> bool:
        names = pack_names(self._repo_path)
        kept = {n for n in names if os.path.exists(pack_file(self._pack_dir, n, ".keep"))}
        sizes = {n: pack_objects(self._pack_dir, n) for n in names if n not in kept}
        fold = choose_fold(sizes, self._fan_in)
        if not fold:
            return False
        loose = _has_loose(self._repo_path)
        new = None if loose else fold_packs(self._pack_dir, fold)
        if new is None:
            new = self._git_fold(fold, names, lock_fd)
            if new is None:
                return False
        # The new pack and its name must be durable before the old ones' removal can be.
        sync_filesystem(self._pack_dir)
        for name in fold:
            if name == new + ".pack":
                continue
            for ext in _PACK_FILES:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(pack_file(self._pack_dir, name, ext))
        if loose:
            subprocess.run(["git", "prune-packed", "-q"], cwd=self._repo_path, check=False)
        return True

    def _git_fold(self, fold: list[str], names: list[str], lock_fd: int) -> str | None:
        """git's fold of ``fold`` and the loose objects, less what the other packs hold."""
        listed = fold + ["^" + n for n in names if n not in fold]
        res = subprocess.run(
            ["git", *_ROLLUP, os.path.join(self._pack_dir, "pack")],
            cwd=self._repo_path,
            input="".join(n + "\n" for n in listed).encode(),
            # git holds the lock too: if this process dies, the fold runs on to its end (the
            # old packs then stay beside the new one) and the lock covers it until then.
            pass_fds=(lock_fd,),
            capture_output=True,
            check=False,
        )
        if res.returncode != 0:
            log.warning("git pack-objects failed: %s", res.stderr.decode(errors="replace").strip())
            return None
        return "pack-" + res.stdout.decode().strip()


def _has_loose(repo_path: str) -> bool:
    objects = os.path.join(repo_path, "objects")
    for name in os.listdir(objects):
        if (
            len(name) == 2
            and os.path.isdir(os.path.join(objects, name))
            and os.listdir(os.path.join(objects, name))
        ):
            return True
    return False


class FoldChild:
    """Folds for a writer, in a child process (``python -m asfaload.store.objects.fast.packs``).

    A fold is pure Python, and in a thread of the writer process it would hold the GIL against
    the writer's one thread, delaying every batch written while it runs. The child
    is started on the first poke, folds (the same :meth:`Consolidator.run`, under the same
    cross-process lock) each time it is poked, and ends at end of file on its stdin: when the
    writer closes it, or dies.
    """

    def __init__(self, repo_path: str, fan_in: int, *, server_info: bool) -> None:
        self._args = [repo_path, str(fan_in), "1" if server_info else "0"]
        self._proc: subprocess.Popen[bytes] | None = None

    def poke(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            if proc is not None:
                log.warning("the fold process ended (status %s); starting another", proc.returncode)
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "asfaload.store.objects.fast.packs", *self._args],
                    stdin=subprocess.PIPE,
                )
            except OSError:
                log.exception("cannot start the fold process; the packs wait for the next poke")
                return
            assert proc.stdin is not None
            os.set_blocking(proc.stdin.fileno(), False)
            self._proc = proc
        assert proc.stdin is not None
        # A poke already waiting in the pipe covers this one.
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(proc.stdin.fileno(), b"f")

    def close(self, timeout: float = 120.0) -> None:
        """End of file for the child; wait for it to finish the fold under way."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _fold_main(argv: list[str]) -> int:
    """The child of :class:`FoldChild`: fold on each poke until end of file on stdin."""
    repo_path, fan_in, server_info = argv[0], int(argv[1]), argv[2] == "1"
    logging.basicConfig(level=logging.INFO, format="%(asctime)s fold %(levelname)s %(message)s")
    # Ctrl-C reaches the whole foreground group: the writer closes us when it is done.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def refresh_info() -> None:
        if server_info:
            refresh_pack_list(repo_path)

    consolidator = Consolidator(repo_path, refresh_info, fan_in=fan_in)
    stdin = sys.stdin.fileno()
    while os.read(stdin, 4096):  # every poke waiting: one round of folds
        consolidator.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(_fold_main(sys.argv[1:]))
