"""The plain object store: pygit2 writes the objects, git folds them.

Trees are rebuilt along a change's paths with libgit2's TreeBuilder, blobs and commits are
written through the repository's object database (each one a loose object), the rules read
through :class:`~asfaload.store.gittree.GitTreeView`, and ``git repack`` folds the loose objects
and small packs in the background, under the repack lock an operator's ``git gc`` takes too;
``git update-server-info`` writes the dumb-HTTP files. Nothing of git's format is written here.
"""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import threading

import pygit2
from pygit2.enums import FileMode

from ...errors import StoreError
from ...rules.tree import Change, TreeView
from ..durable import WriterLock, lock_path_for, sync_filesystem
from ..gittree import GitTreeView, tree_holds_file
from .changes import Node, group, invalid_name
from .gitcli import update_server_info
from .identity import committer

log = logging.getLogger(__name__)

# git's own incremental fold: the loose objects and the packs too small beside the next one
# rolled into one (a geometric progression of pack sizes); -d removes what it folded and the
# loose objects now packed, -n leaves the dumb-HTTP files to the caller's lock.
REPACK = ("repack", "-d", "-q", "-n", "--geometric=2")


class Libgit2Batch:
    """One thread's batches (see :class:`~asfaload.store.objects.ObjectBatch`)."""

    def __init__(self, store: Libgit2Objects) -> None:
        self._store = store
        self._repo = pygit2.Repository(store.repo_path)
        self._wrote = False

    @property
    def repo(self) -> pygit2.Repository:
        return self._repo

    def view(self, tree: pygit2.Oid | None) -> TreeView:
        return GitTreeView(self._repo, None if tree is None else self._tree(tree))

    def _tree(self, oid: pygit2.Oid) -> pygit2.Tree:
        try:
            return self._repo[oid].peel(pygit2.Tree)
        except (KeyError, ValueError, pygit2.GitError) as e:
            raise StoreError(f"{oid} is not a tree") from e

    def apply(self, tree: pygit2.Oid | None, change: Change) -> pygit2.Oid:
        self._wrote = True
        new = self._rebuild(None if tree is None else self._tree(tree), group(change), "")
        return self._repo.TreeBuilder().write() if new is None else new

    def _rebuild(self, tree: pygit2.Tree | None, node: Node, prefix: str) -> pygit2.Oid | None:
        """``tree`` with ``node`` applied, written; None when nothing is left (so the parent
        prunes it)."""
        repo = self._repo
        tb = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
        for name, value in node.items():
            path = prefix + name
            if invalid_name(name):
                raise StoreError(f"Invalid path {path!r}")
            existing = tb.get(name)
            is_dir = existing is not None and existing.filemode == FileMode.TREE
            if isinstance(value, dict):
                if existing is not None and not is_dir:
                    raise StoreError(f"Cannot create a directory over the file {path!r}")
                sub = self._tree(existing.id) if existing is not None else None
                new = self._rebuild(sub, value, path + "/")
                if new is None:
                    if existing is not None:
                        tb.remove(name)
                else:
                    tb.insert(name, new, FileMode.TREE)
            elif value is None:
                if existing is None or existing.filemode != FileMode.BLOB:
                    raise StoreError(f"Cannot delete {path!r}: no such file")
                tb.remove(name)
            else:
                # A directory with no file beneath it is nothing the rules see
                # (GitTreeView.is_dir): the file takes its place.
                if (
                    existing is not None
                    and existing.filemode != FileMode.BLOB
                    and (not is_dir or tree_holds_file(self._tree(existing.id), self._tree))
                ):
                    raise StoreError(f"Cannot write the file {path!r} over a directory")
                tb.insert(name, repo.create_blob(value), FileMode.BLOB)
        if len(tb) == 0:
            return None
        return tb.write()

    def commit(self, tree: pygit2.Oid, parent: pygit2.Oid, when: int, message: str) -> pygit2.Oid:
        if "\0" in message:
            raise StoreError("A commit message cannot hold a NUL byte")
        self._wrote = True
        sig = committer(when)
        return self._repo.create_commit(None, sig, sig, message, tree, [parent])

    def discard(self) -> None:
        # Its objects are loose files already, referenced by nothing: git's gc prunes them.
        self._wrote = False

    def finish(self, *, durable: bool) -> None:
        if self._wrote:
            self._wrote = False
            self._store.written()
        if durable:
            sync_filesystem(os.path.join(self._store.repo_path, "objects"))

    def publish_server_info(self) -> None:
        self._store.publish_server_info()


class Libgit2Objects:
    """The plain store of one repository (see :class:`~asfaload.store.objects.ObjectStore`)."""

    name = "libgit2"

    def __init__(self, repo_path: str, *, server_info: bool, fan_in: int) -> None:
        if fan_in < 2:
            raise ValueError("fan_in must be at least 2")
        self.repo_path = repo_path
        self._server_info = server_info
        self._fan_in = fan_in
        self._since = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._info_lock = WriterLock(lock_path_for(repo_path, "info"), keep_open=True)

    def batch(self) -> Libgit2Batch:
        return Libgit2Batch(self)

    def written(self) -> None:
        """After each batch: every ``fan_in`` batches, a fold in a background thread (git does
        the work in its own process)."""
        with self._lock:
            self._since += 1
            if self._since < self._fan_in or (self._thread and self._thread.is_alive()):
                return
            self._since = 0
            self._thread = threading.Thread(
                target=self.consolidate, name="asfaload-mirror-repack", daemon=True
            )
            self._thread.start()

    def consolidate(self) -> bool:
        fd = os.open(lock_path_for(self.repo_path, "repack"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # an operator's gc or another writer's fold: the next one folds
            res = subprocess.run(
                ["git", *REPACK],
                cwd=self.repo_path,
                # git holds the lock too: if this process dies, the repack runs on to its end
                # and the lock covers it until then.
                pass_fds=(fd,),
                capture_output=True,
                check=False,
            )
        finally:
            os.close(fd)
        if res.returncode != 0:
            log.warning("git repack failed: %s", res.stderr.decode(errors="replace").strip())
            return False
        if self._server_info:
            try:
                self.publish_server_info()
            except OSError:
                log.exception("rewriting the pack list after a repack failed")
        return True

    def publish_server_info(self) -> None:
        with self._info_lock:
            update_server_info(self.repo_path)

    def close(self) -> None:
        with self._lock:
            thread = self._thread
        if thread is not None:
            thread.join()
        self._info_lock.close()
