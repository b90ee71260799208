"""Each batch of the writer lands on disk as one pack file, not as loose objects.

libgit2 writes every new object as its own loose file (a temp file, a write, a rename into a
fan-out directory): 0.15-0.3 ms per object on the disks measured, and one signature's commit
holds ~11 new objects (the blob, the trees along its path, the commit). The writer instead
builds them itself (:class:`.gittree.TreeEditor`, :func:`.writer.commit_bytes`) into
:class:`BatchObjects`, an in-memory object-database backend that libgit2 also reads through,
and :func:`write_pack` then stores the whole batch as one pack with its index before the ref
moves (BENCHMARKS.md, bench_store/bench_server).

One pack per batch means many small packs; :class:`Consolidator` folds them in the background
with ``git repack --geometric`` (which also packs objects that pushes left loose), so object
lookups stay fast and dumb-HTTP clients fetch a handful of packs.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import struct
import subprocess
import threading
import zlib
from collections.abc import Callable, Iterator

import pygit2

from .durable import lock_path_for
from .gittree import TreeEditor

log = logging.getLogger(__name__)

_MAX_STORED_BLOCK = 0xFFFF
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

    New objects arrive through :meth:`write_raw` (built by the writer, not by libgit2, which
    used to probe the disk before writing each object). Reads fall through to the disk
    backends, rescanning the pack list once when an object that must exist is missing (another
    process's pack, a push).
    """

    def __init__(self, objects_dir: str) -> None:
        super().__init__()
        self._new: dict[pygit2.Oid, tuple[int, bytes]] = {}
        self._packs = pygit2.OdbBackendPack(objects_dir)
        self._disk = (self._packs, pygit2.OdbBackendLoose(objects_dir, 1, False))

    def take(self) -> dict[pygit2.Oid, tuple[int, bytes]]:
        """The objects written since the last call; they are no longer readable from here."""
        new, self._new = self._new, {}
        return new

    def rescan(self) -> None:
        self._packs.refresh()

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
        try:
            return self._new[oid]
        except KeyError:
            return self._read_disk(oid)

    def read_prefix_cb(self, oid: pygit2.Oid) -> tuple[int, bytes, pygit2.Oid]:
        # The writer never looks objects up by an abbreviated id: libgit2 passes full ids here.
        kind, data = self.read_cb(oid)
        return kind, data, oid

    def read_header_cb(self, oid: pygit2.Oid) -> tuple[int, int]:
        kind, data = self.read_cb(oid)
        return kind, len(data)

    def write_raw(self, kind: int, data: bytes) -> pygit2.Oid:
        """Store a new object built outside libgit2 (:class:`.gittree.TreeEditor`); its id."""
        header = f"{_TYPE_NAMES[kind]} {len(data)}\0".encode()
        oid = pygit2.Oid(raw=hashlib.sha1(header + data).digest())
        self._new[oid] = (kind, data)
        return oid

    def write_cb(self, oid: pygit2.Oid, data: bytes, kind: int) -> None:
        self._new[oid] = (kind, bytes(data))

    def exists_cb(self, oid: pygit2.Oid) -> bool:
        return oid in self._new or any(backend.exists(oid) for backend in self._disk)

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
        self._objects.rescan()
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

    Not ``zlib.compress``: each call costs ~150 µs on the 2-core VMs this runs on (against ~4 µs
    here), a third of a signature's budget. Rollups copy these entries as they are; the
    compaction that eventually folds them deltifies and compresses.
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
    object database and runs libgit2's indexer over the result: ~50 µs per object measured,
    against ~10 here, for packs that live only until the next repack. The format is git's
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
    counts = [0] * 256
    for raw, _, _ in entries:
        counts[raw[0]] += 1
    fanout = []
    total = 0
    for c in counts:
        total += c
        fanout.append(total)
    small: list[int] = []
    large: list[int] = []
    for _, off, _ in entries:
        if off < 0x80000000:
            small.append(off)
        else:
            small.append(0x80000000 | len(large))
            large.append(off)
    n = len(entries)
    index = b"".join(
        [
            b"\377tOc",
            struct.pack(">I", 2),
            struct.pack(">256I", *fanout),
            b"".join(raw for raw, _, _ in entries),
            struct.pack(f">{n}I", *(crc for _, _, crc in entries)),
            struct.pack(f">{n}I", *small),
            struct.pack(f">{len(large)}Q", *large),
            checksum,
        ]
    )
    index += hashlib.sha1(index).digest()
    name = "pack-" + checksum.hex()
    token = f"{os.getpid()}_{threading.get_ident()}"
    # git's own temporary names in objects/pack, which its gc knows to clean after a crash.
    for ext, prefix, data in ((".pack", "tmp_pack_", body + checksum), (".idx", "tmp_idx_", index)):
        tmp = os.path.join(pack_dir, prefix + token)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o444)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(pack_dir, name + ext))
    return name


def pack_names(repo_path: str) -> list[str]:
    """The packs a reader can use (those with an index), sorted."""
    pack_dir = os.path.join(repo_path, "objects", "pack")
    try:
        names = os.listdir(pack_dir)
    except FileNotFoundError:
        return []
    return sorted(
        n[: -len(".idx")] + ".pack"
        for n in names
        if n.startswith("pack-") and n.endswith(".idx") and n[: -len(".idx")] + ".pack" in names
    )


def write_info_packs(repo_path: str) -> None:
    """Rewrite ``objects/info/packs`` (the dumb-HTTP pack list) as ``git update-server-info``
    would, without a subprocess."""
    info = os.path.join(repo_path, "objects", "info")
    os.makedirs(info, exist_ok=True)
    text = "".join(f"P {name}\n" for name in pack_names(repo_path)) + "\n"
    tmp = os.path.join(info, f".packs-{os.getpid()}-{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, os.path.join(info, "packs"))


# Rollups without delta search or recompression: folding packs costs little more than copying
# them. With git's defaults the rollups were the largest single cost of a signature in
# bench_server (0.4-0.6 ms of CPU each, in the background but on the same cores), for ~30% less
# disk: the signatures and digests that make up most of the mirror do not compress.
_ROLLUP = ("-c", "pack.window=0", "-c", "pack.compression=0", "repack", "-d", "-q", "-n")


class Consolidator:
    """Folds the writer's small packs every ``every`` packs.

    ``git repack --geometric=2`` rolls up only the packs that break a doubling progression, so
    its cost is amortised over the packs written and the pack count stays logarithmic in the
    number of objects (what lookups need). It takes every object of the packs it folds,
    referenced or not, so a batch whose ref update is still in flight keeps its objects. No
    delta search and no recompression (see ``_ROLLUP``); ``git repack -A -d -F`` compacts a
    mirror's storage offline (docs/architecture.md).

    It runs in a background thread, outside the writer lock (writers keep going), one at a time
    across processes (a try-lock beside the repository). ``refresh_info`` is then called to
    rewrite the dumb-HTTP pack list.
    """

    def __init__(
        self, repo_path: str, refresh_info: Callable[[], None], *, every: int = 32
    ) -> None:
        self._repo_path = repo_path
        self._refresh_info = refresh_info
        self._every = every
        self._since = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def packed(self) -> None:
        """Called by the writer after each pack it writes."""
        with self._lock:
            self._since += 1
            if self._since < self._every or (self._thread and self._thread.is_alive()):
                return
            self._since = 0
            self._thread = threading.Thread(
                target=self.run, name="asfaload-mirror-repack", daemon=True
            )
            self._thread.start()

    def wait(self) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()

    def run(self) -> bool:
        """Fold now, unless another process is at it; True when a repack ran."""
        fd = os.open(lock_path_for(self._repo_path, "repack"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            # -n: not `update-server-info`, whose info/refs could name an older tip than a
            # writer just published; the pack list is rewritten under the writer lock instead.
            res = subprocess.run(
                ["git", *_ROLLUP, "--geometric=2"],
                cwd=self._repo_path,
                # git holds the lock too: if this process dies, the repack runs on to its end
                # (git is crash-safe either way) and the lock covers it until then.
                pass_fds=(fd,),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=False,
            )
            if res.returncode != 0:
                log.warning("git repack failed: %s", res.stderr.decode(errors="replace").strip())
            try:
                self._refresh_info()
            except Exception:
                log.exception("rewriting the pack list after a repack failed")
            return res.returncode == 0
        finally:
            os.close(fd)
