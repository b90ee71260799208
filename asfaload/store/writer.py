"""The single writer of a mirror: a queue, one thread, group commit.

Operations submitted concurrently are applied one after the other, each on the tree the previous
one produced, and each becomes its own commit. The batch's objects are written as one pack
(:mod:`.packs`), made durable with one barrier and published with one compare-and-swap of
``refs/heads/main``. Objects are always
written before the ref moves, and the ref update is atomic (lock file + rename), so a crash
leaves either the old or the new state. Across processes the writers serialise on a lock file;
a concurrent ``git push`` is caught by the compare-and-swap, and the batch is re-run on the new
tip.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import pygit2

from ..errors import ConcurrentUpdateError, DiskFullError, StoreError
from ..rules.tree import Change, Operation
from .durable import (
    WriterLock,
    fsync_path,
    is_disk_full,
    lock_path_for,
    no_space_left,
    sync_filesystem,
)
from .gittree import MAIN
from .packs import Consolidator, FoldChild, WriterObjects, refresh_pack_list, write_info_packs

AUTHOR_NAME = "asfaload"
AUTHOR_EMAIL = "asfaload@localhost"
_MAX_ATTEMPTS = 50
_COMMIT = int(pygit2.enums.ObjectType.COMMIT)

log = logging.getLogger(__name__)


def committer(when: int) -> pygit2.Signature:
    return pygit2.Signature(AUTHOR_NAME, AUTHOR_EMAIL, when, 0)


def commit_bytes(tree: pygit2.Oid, parent: pygit2.Oid, when: int, message: str) -> bytes:
    """The writer's commit object, byte for byte as libgit2's ``create_commit`` writes it with
    :func:`committer` (a test compares the two): a string format here, where libgit2 cost a
    call, a parse of its arguments and a callback into the writer's object backend."""
    if "\0" in message:
        raise StoreError("A commit message cannot hold a NUL byte")
    ident = f"{AUTHOR_NAME} <{AUTHOR_EMAIL}> {int(when)} +0000"
    return f"tree {tree}\nparent {parent}\nauthor {ident}\ncommitter {ident}\n\n{message}".encode()


def system_clock() -> int:
    return int(time.time())


def update_server_info(repo_path: str) -> None:
    """Refresh info/refs and objects/info/packs so dumb-HTTP clones see the new tip."""
    subprocess.run(
        ["git", "update-server-info"],
        cwd=repo_path,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def write_info_refs(repo: pygit2.Repository, repo_path: str) -> bool:
    """Rewrite ``info/refs`` (the dumb-HTTP ref list) as ``git update-server-info`` would, without
    a subprocess; False (nothing written) when a ref needs git's own handling (a symbolic ref,
    or one naming something other than a commit, e.g. an annotated tag to peel).

    The other file git refreshes, ``objects/info/packs``, is :func:`.packs.write_info_packs`.
    """
    lines = []
    for name in sorted(repo.references):
        if not name.startswith("refs/"):
            continue
        ref = repo.references[name]
        if ref.type != pygit2.enums.ReferenceType.DIRECT:
            return False
        if repo[ref.target].type != pygit2.enums.ObjectType.COMMIT:
            return False
        lines.append(f"{ref.target}\t{name}\n")
    info = os.path.join(repo_path, "info")
    os.makedirs(info, exist_ok=True)
    tmp = os.path.join(info, f".refs-{os.getpid()}-{threading.get_ident()}")
    # Readable by the web server like git's own file; atomic replace, so readers never see half.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(lines))
    os.replace(tmp, os.path.join(info, "refs"))
    return True


@dataclass(frozen=True)
class CommitResult:
    """An acknowledged operation: the commit that holds it (published on main) and its change."""

    commit_id: str
    change: Change


@dataclass
class _Job:
    op: Operation
    future: Future[CommitResult]


_STOP = object()


class BatchWriter:
    """Owns the writer thread of one repository within this process."""

    def __init__(
        self,
        repo_path: str,
        lock_path: str,
        *,
        clock: Callable[[], int] = system_clock,
        durable: bool = True,
        server_info: bool = True,
        max_batch: int = 256,
        stale_lock_seconds: float = 10.0,
        on_publish: Callable[[str], None] | None = None,
        repack_fan_in: int = 16,
        fold_in_child: bool = False,
    ) -> None:
        self._repo_path = repo_path
        self._clock = clock
        self._durable = durable
        self._server_info = server_info
        self._max_batch = max_batch
        self._stale_lock_seconds = stale_lock_seconds
        self._on_publish = on_publish
        self._queue: queue.Queue[_Job | object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._stop_seen = False  # writer thread only
        self._info_lock_path = lock_path_for(repo_path, "info")
        # Taken once per batch by whichever thread writes (never two at once): kept open.
        self._lock = WriterLock(lock_path, keep_open=True)
        self._info_lock = WriterLock(self._info_lock_path, keep_open=True)
        self._info_pending = False  # write_batch published; its dumb-HTTP files wait
        # fold_in_child: for a process whose one thread writes (asfaload.store.writer_process).
        child = (
            FoldChild(repo_path, repack_fan_in, server_info=server_info) if fold_in_child else None
        )
        self._consolidator = Consolidator(
            repo_path, self._refresh_pack_list, fan_in=repack_fan_in, child=child
        )
        self._caller_objects: WriterObjects | None = None  # write_batch's, made in its thread

    def submit(self, op: Operation) -> Future[CommitResult]:
        fut: Future[CommitResult] = Future()
        with self._start_lock:
            if self._closed:
                raise StoreError("The mirror writer is closed")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="asfaload-mirror-writer", daemon=True
                )
                self._thread.start()
            self._queue.put(_Job(op, fut))
        return fut

    def close(self) -> None:
        with self._start_lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()
        self.publish_server_info()
        self._consolidator.wait()
        self._lock.close()
        self._info_lock.close()

    def _refresh_pack_list(self) -> None:
        if self._server_info:
            refresh_pack_list(self._repo_path)

    def _write_server_info(self, repo: pygit2.Repository) -> None:
        """Rewrite the dumb-HTTP files (``info/refs``, ``objects/info/packs``) after a publish.

        Outside the writer lock, which only the ref update needs (these files cost several
        file creations per batch), under a lock of their own: each writer re-reads the refs
        and lists the packs while holding it, so the last one to write has seen the newest
        tip, and no two writers can leave the older of their tips in ``info/refs``. In Python:
        a `git update-server-info` subprocess per batch cost more than the batch's commits.
        """
        with self._info_lock:
            write_info_packs(self._repo_path)
            if not write_info_refs(repo, self._repo_path):
                update_server_info(self._repo_path)

    def _try_server_info(self, repo: pygit2.Repository) -> bool:
        """:meth:`_write_server_info` after a publish, which has happened whatever this does: a
        failure (a full disk) must not turn acknowledged commits into errors. The files stay
        one tip behind until the next rewrite; smart HTTP does not read them."""
        try:
            self._write_server_info(repo)
        except OSError:
            log.warning("rewriting the dumb-HTTP files failed; they lag until the next publish")
            return False
        return True

    # --- writer thread ------------------------------------------------------------------------
    def _run(self) -> None:
        # The writer has its own Repository object (pygit2 objects are not shared across
        # threads), whose new objects collect in memory until the batch's pack is written.
        objects = WriterObjects(self._repo_path)
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[_Job] = [first] if isinstance(first, _Job) else []
            self._stop_seen = False
            self._drain(batch)
            self._commit(objects, batch)
            if self._stop_seen:
                return

    def write_batch(self, ops: Sequence[Operation]) -> list[CommitResult | Exception]:
        """Apply ``ops`` in the calling thread, as batches of up to ``max_batch`` (each one pack,
        one barrier, one compare-and-swap); each op's result or the exception it raised.

        For a process whose one thread does all its writing (:mod:`.writer_process`): no queue, no
        hand-off to the writer thread. Always from the same thread, never mixed with
        :meth:`submit` (each path has its own Repository object). The dumb-HTTP files are
        left to :meth:`publish_server_info`, which that thread calls when it has time.
        """
        if self._caller_objects is None:
            self._caller_objects = WriterObjects(self._repo_path)
        jobs = [_Job(op, Future()) for op in ops]
        for i in range(0, len(jobs), self._max_batch):
            self._commit(self._caller_objects, jobs[i : i + self._max_batch], defer_info=True)
        out: list[CommitResult | Exception] = []
        for job in jobs:
            exc = job.future.exception()
            if exc is None:
                out.append(job.future.result())
            else:
                out.append(exc if isinstance(exc, Exception) else StoreError(str(exc)))
        return out

    @property
    def server_info_pending(self) -> bool:
        """write_batch published a tip that ``info/refs`` does not name yet."""
        return self._info_pending

    def publish_server_info(self) -> None:
        """Rewrite the dumb-HTTP files for what write_batch published (in its thread)."""
        if self._info_pending and self._caller_objects is not None:
            self._info_pending = False
            if not self._try_server_info(self._caller_objects.repo):
                self._info_pending = True  # tried again at the next call

    def _commit(
        self, objects: WriterObjects, batch: list[_Job], *, defer_info: bool = False
    ) -> None:
        """Process ``batch``; on return every job's future is done."""
        try:
            self._process(objects, batch, defer_info)
        except Exception as e:  # infrastructure failure: nobody's op was published
            err: StoreError
            if is_disk_full(e):
                log.warning("mirror writer batch refused: the disk is full")
                err = DiskFullError()
            else:
                log.exception("mirror writer batch failed")
                err = (
                    e
                    if isinstance(e, StoreError)
                    else StoreError("The mirror could not be written")
                )
            for job in batch:
                if not job.future.done():
                    job.future.set_exception(err)

    def _drain(self, batch: list[_Job]) -> None:
        """Add the jobs already queued to ``batch`` (up to ``max_batch``); a stop request seen
        here is remembered in ``_stop_seen`` and ends the thread after this batch."""
        while not self._stop_seen and len(batch) < self._max_batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                return
            if nxt is _STOP:
                self._stop_seen = True
            elif isinstance(nxt, _Job):
                batch.append(nxt)

    def _ref_lock_busy(self) -> bool:
        """True while another process holds ``refs/heads/main.lock``; a lock older than
        ``stale_lock_seconds`` was left by a process killed mid-update (git holds it for
        milliseconds) and is removed, as a human would after a crash."""
        path = os.path.join(self._repo_path, MAIN + ".lock")
        try:
            age = time.time() - os.path.getmtime(path)
        except FileNotFoundError:
            return False
        if age <= self._stale_lock_seconds:
            return True
        log.warning("removing a stale lock on %s (%.0f s old)", MAIN, age)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return False

    def _process(self, objects: WriterObjects, batch: list[_Job], defer_info: bool) -> None:
        repo = objects.repo
        todo = batch
        attempt = 0
        deadline = time.monotonic() + self._stale_lock_seconds + 5
        while attempt < _MAX_ATTEMPTS and time.monotonic() < deadline:
            with self._lock:
                if todo is batch:
                    # Jobs that queued while we waited for the lock (another process's writer
                    # held it) join this batch: same barriers, one compare-and-swap.
                    self._drain(batch)
                ref = repo.references.get(MAIN)
                if ref is None:
                    raise StoreError("The mirror has no main branch")
                tip = repo[ref.target].peel(pygit2.Commit)
                # Monotonic committer times keep history ordered even if the clock steps back.
                now = max(self._clock(), tip.commit_time)
                done: list[tuple[_Job, pygit2.Oid, Change]] = []
                try:
                    done = self._apply_all(objects, tip, todo, now)
                finally:
                    if not done:  # nothing to publish: drop what failed operations wrote
                        objects.discard()
                if not done:
                    return
                # Before the compare-and-swap, win or lose: a retry finds them on disk.
                packed = objects.flush() is not None
                if packed:
                    self._consolidator.packed()
                if self._durable:
                    sync_filesystem(os.path.join(self._repo_path, "objects"))
                try:
                    ref.set_target(done[-1][1], f"asfaload: {len(done)} commit(s)")
                except (pygit2.GitError, OSError) as e:
                    # No room for the ref's lock file: retrying cannot help, and the batch's
                    # pack is only unreferenced objects.
                    if is_disk_full(e) or no_space_left(self._repo_path):
                        raise DiskFullError() from e
                    # Lost the compare-and-swap (a push landed) or the ref is locked by one in
                    # flight: re-validate every op on the new tip.
                    todo = [job for job, _, _ in done]
                    if not self._ref_lock_busy():
                        attempt += 1
                    time.sleep(min(0.002 * (attempt + 1), 0.05))
                    continue
            # The ref's barrier happens after the lock is released: the lock only has to cover
            # read-tip .. compare-and-swap, and the next writer (maybe in another process) may
            # build on our published tip meanwhile. Nobody is acknowledged before this fsync,
            # and a later rename of the ref by that writer names a descendant of our commit,
            # so whichever rename the directory fsync makes durable holds our commits.
            if self._durable:
                fsync_path(os.path.join(self._repo_path, MAIN))
            if self._server_info:
                if defer_info:
                    self._info_pending = True
                else:
                    self._try_server_info(repo)
            new_tip = str(done[-1][1])
            for job, cid, change in done:
                job.future.set_result(CommitResult(str(cid), change))
            if self._on_publish is not None:
                try:
                    self._on_publish(new_tip)
                except Exception:
                    log.exception("mirror publish listener failed")
            return
        err = ConcurrentUpdateError("The mirror kept changing; the operation was not applied")
        for job in todo:
            job.future.set_exception(err)

    def _apply_all(
        self, objects: WriterObjects, tip: pygit2.Commit, jobs: list[_Job], now: int
    ) -> list[tuple[_Job, pygit2.Oid, Change]]:
        trees = objects.trees
        tree = tip.tree_id
        parent = tip.id
        done: list[tuple[_Job, pygit2.Oid, Change]] = []
        for job in jobs:
            try:
                change = job.op(trees.view(tree), now)
                if not isinstance(change, Change):
                    raise StoreError("An operation did not return a Change")
                new_tree = trees.apply(tree, change)
                if new_tree == tree:
                    raise StoreError("The operation changes nothing")
                cid = objects.write(_COMMIT, commit_bytes(new_tree, parent, now, change.message))
            except Exception as e:
                # Only this caller hears about it; the rest of the batch goes on.
                job.future.set_exception(e)
                continue
            tree, parent = new_tree, cid
            done.append((job, cid, change))
        return done
