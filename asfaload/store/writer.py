"""The single writer of a mirror: a queue, one thread, group commit.

Operations submitted concurrently are applied one after the other, each on the tree the previous
one produced, and each becomes its own commit. The batch's objects go through the mirror's object
store (:mod:`.objects`: one pack per batch, or loose objects), are made durable with one barrier
and published with one compare-and-swap of ``refs/heads/main``. Objects are always written
before the ref moves, and the ref update is atomic (lock file + rename), so a crash
leaves either the old or the new state. Across processes the writers serialise on a lock file;
a concurrent ``git push`` is caught by the compare-and-swap, and the batch is re-run on the new
tip.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import pygit2

from ..errors import ConcurrentUpdateError, DiskFullError, StoreError
from ..rules.tree import Change, Operation
from .durable import WriterLock, fsync_path, is_disk_full, no_space_left
from .gittree import MAIN
from .objects import ObjectBatch, open_object_store
from .settings import WriterSettings

_MAX_ATTEMPTS = 50

log = logging.getLogger(__name__)


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
        settings: WriterSettings | None = None,
        *,
        on_publish: Callable[[str], None] | None = None,
    ) -> None:
        self._repo_path = repo_path
        self._settings = settings = WriterSettings() if settings is None else settings
        self._on_publish = on_publish
        self._queue: queue.Queue[_Job | object] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._stop_seen = False  # writer thread only
        # Taken once per batch by whichever thread writes (never two at once): kept open.
        self._lock = WriterLock(lock_path, keep_open=True)
        self._info_pending = False  # write_batch published; its dumb-HTTP files wait
        self._objects = open_object_store(
            settings.objects,
            repo_path,
            server_info=settings.server_info,
            fold_in_child=settings.fold_in_child,
            fan_in=settings.repack_fan_in,
        )
        self._caller_batch: ObjectBatch | None = None  # write_batch's, made in its thread

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
        self._objects.close()
        self._lock.close()

    @property
    def object_store(self) -> str:
        """The name of the object store this writer writes through."""
        return self._objects.name

    def consolidate(self) -> bool:
        """Fold what the batches left on disk now (see :meth:`.ObjectStore.consolidate`)."""
        return self._objects.consolidate()

    def _try_server_info(self, batch: ObjectBatch) -> bool:
        """Rewrite the dumb-HTTP files (``info/refs``, ``objects/info/packs``) after a publish,
        outside the writer lock, which only the ref update needs. The publish has happened
        whatever this does: a failure (a full disk) must not turn acknowledged commits into
        errors. The files stay one tip behind until the next rewrite; smart HTTP does not read
        them."""
        try:
            batch.publish_server_info()
        except OSError:
            log.warning("rewriting the dumb-HTTP files failed; they lag until the next publish")
            return False
        return True

    # --- writer thread ------------------------------------------------------------------------
    def _run(self) -> None:
        # The writer thread has its own batch handle and Repository object (pygit2 objects are
        # not shared across threads).
        objects = self._objects.batch()
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
        if self._caller_batch is None:
            self._caller_batch = self._objects.batch()
        jobs = [_Job(op, Future()) for op in ops]
        step = self._settings.max_batch
        for i in range(0, len(jobs), step):
            self._commit(self._caller_batch, jobs[i : i + step], defer_info=True)
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
        if self._info_pending and self._caller_batch is not None:
            self._info_pending = False
            if not self._try_server_info(self._caller_batch):
                self._info_pending = True  # tried again at the next call

    def _commit(self, objects: ObjectBatch, batch: list[_Job], *, defer_info: bool = False) -> None:
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
        while not self._stop_seen and len(batch) < self._settings.max_batch:
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
        if age <= self._settings.stale_lock_seconds:
            return True
        log.warning("removing a stale lock on %s (%.0f s old)", MAIN, age)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return False

    def _process(self, objects: ObjectBatch, batch: list[_Job], defer_info: bool) -> None:
        settings = self._settings
        repo = objects.repo
        todo = batch
        attempt = 0
        deadline = time.monotonic() + settings.stale_lock_seconds + 5
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
                now = max(settings.clock(), tip.commit_time)
                done: list[tuple[_Job, pygit2.Oid, Change]] = []
                try:
                    done = self._apply_all(objects, tip, todo, now)
                finally:
                    if not done:  # nothing to publish: drop what failed operations wrote
                        objects.discard()
                if not done:
                    return
                # Before the compare-and-swap, win or lose: a retry finds them on disk.
                objects.finish(durable=settings.durable)
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
            if settings.durable:
                fsync_path(os.path.join(self._repo_path, MAIN))
            if settings.server_info:
                if defer_info:
                    self._info_pending = True
                else:
                    self._try_server_info(objects)
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
        self, objects: ObjectBatch, tip: pygit2.Commit, jobs: list[_Job], now: int
    ) -> list[tuple[_Job, pygit2.Oid, Change]]:
        tree = tip.tree_id
        parent = tip.id
        done: list[tuple[_Job, pygit2.Oid, Change]] = []
        for job in jobs:
            try:
                change = job.op(objects.view(tree), now)
                if not isinstance(change, Change):
                    raise StoreError("An operation did not return a Change")
                new_tree = objects.apply(tree, change)
                if new_tree == tree:
                    raise StoreError("The operation changes nothing")
                cid = objects.commit(new_tree, parent, now, change.message)
            except Exception as e:
                # Only this caller hears about it; the rest of the batch goes on.
                job.future.set_exception(e)
                continue
            tree, parent = new_tree, cid
            done.append((job, cid, change))
        return done
