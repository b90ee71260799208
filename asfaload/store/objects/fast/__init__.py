"""The fast object store: the writer builds git's objects itself and writes one pack per batch.

It exists beside the plain libgit2 store (:mod:`..libgit2`) because it is faster where the
server spends its time: bench_server and bench_store run both, and BENCHMARKS.md says by how
much. libgit2 writes each object as a loose file and re-reads, re-sorts and re-serialises a
whole tree per level of each change; here trees are edited as their parsed raw entries
(:mod:`.trees`), commits are formatted as bytes (:mod:`.commits`), a batch's objects stay in
memory until :func:`.packs.write_pack` stores them as one pack, :class:`.packs.Consolidator`
folds those packs by copying their entries, and the dumb-HTTP files are written without a
subprocess (:mod:`.info`). Property tests hold its trees, refusals and commits to libgit2's.
"""

from __future__ import annotations

import os

import pygit2

from ....rules.tree import Change, TreeView
from ...durable import WriterLock, lock_path_for, sync_filesystem
from ..gitcli import update_server_info
from .commits import commit_bytes
from .info import refresh_pack_list, write_info_packs, write_info_refs
from .packs import Consolidator, FoldChild, WriterObjects

_COMMIT = int(pygit2.enums.ObjectType.COMMIT)


class FastBatch:
    """One thread's batches (see :class:`~asfaload.store.objects.ObjectBatch`)."""

    def __init__(self, store: FastObjects) -> None:
        self._store = store
        self._objects = WriterObjects(store.repo_path)
        self._trees = self._objects.trees

    @property
    def repo(self) -> pygit2.Repository:
        return self._objects.repo

    def view(self, tree: pygit2.Oid | None) -> TreeView:
        return self._trees.view(tree)

    def apply(self, tree: pygit2.Oid | None, change: Change) -> pygit2.Oid:
        return self._trees.apply(tree, change)

    def commit(self, tree: pygit2.Oid, parent: pygit2.Oid, when: int, message: str) -> pygit2.Oid:
        return self._objects.write(_COMMIT, commit_bytes(tree, parent, when, message))

    def discard(self) -> None:
        self._objects.discard()

    def finish(self, *, durable: bool) -> None:
        if self._objects.flush() is not None:
            self._store.packed()
        if durable:
            sync_filesystem(os.path.join(self._store.repo_path, "objects"))

    def publish_server_info(self) -> None:
        self._store.publish_server_info(self._objects.repo)


class FastObjects:
    """The fast store of one repository (see :class:`~asfaload.store.objects.ObjectStore`)."""

    name = "fast"

    def __init__(
        self, repo_path: str, *, server_info: bool, fold_in_child: bool, fan_in: int
    ) -> None:
        self.repo_path = repo_path
        self._server_info = server_info
        # Taken once per publish by whichever thread writes: kept open.
        self._info_lock = WriterLock(lock_path_for(repo_path, "info"), keep_open=True)
        child = FoldChild(repo_path, fan_in, server_info=server_info) if fold_in_child else None
        self._consolidator = Consolidator(
            repo_path, self._refresh_pack_list, fan_in=fan_in, child=child
        )

    def batch(self) -> FastBatch:
        return FastBatch(self)

    def packed(self) -> None:
        self._consolidator.packed()

    def consolidate(self) -> bool:
        return self._consolidator.run()

    def publish_server_info(self, repo: pygit2.Repository) -> None:
        with self._info_lock:
            write_info_packs(self.repo_path)
            if not write_info_refs(repo, self.repo_path):
                update_server_info(self.repo_path)

    def _refresh_pack_list(self) -> None:
        if self._server_info:
            refresh_pack_list(self.repo_path)

    def close(self) -> None:
        self._consolidator.wait()
        self._info_lock.close()
