"""The mirror's objects as its writer sees them: one small interface, two implementations.

The writer (:mod:`asfaload.store.writer`) needs only this of git's object machinery: per
writing thread, a batch to build (edit a tree by a :class:`~asfaload.rules.tree.Change`, give
the rules a view of a tree, write a commit), then finish it durably before the ref moves; fold
what the batches left on disk; and rewrite the dumb-HTTP files after a publish.

Two stores do it, chosen by name (``ASFALOAD_OBJECTS``, the server's ``objects`` setting):

- ``fast`` (:mod:`.fast`, the default): the writer builds raw objects itself and writes one
  pack per batch, folded by its own size-tiered merge;
- ``libgit2`` (:mod:`.libgit2`): the plain library path, pygit2's TreeBuilder and object
  database (a loose object each), folded by ``git repack``.

Both fold under the repack lock ``<repo>.repack.lock``, the one an operator's ``git gc`` takes
(docs/git.md, "gc"): one owner for the packs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Protocol

import pygit2

from ...errors import ConfigError
from ...rules.tree import Change, TreeView

ENV_OBJECTS = "ASFALOAD_OBJECTS"
IMPLEMENTATIONS = ("fast", "libgit2")
DEFAULT_OBJECTS = "fast"


class ObjectBatch(Protocol):
    """One writing thread's batches: objects made since the last :meth:`finish` or
    :meth:`discard` form the batch under way. Never shared between threads."""

    @property
    def repo(self) -> pygit2.Repository:
        """This thread's repository, reading the batch's objects too (the tip, the refs)."""
        ...

    def view(self, tree: pygit2.Oid | None) -> TreeView:
        """The rules' view of ``tree`` (None: the empty tree)."""
        ...

    def apply(self, tree: pygit2.Oid | None, change: Change) -> pygit2.Oid:
        """The tree ``tree`` after ``change``, written into the batch; its id. Only the trees
        along changed paths are rewritten, directories left empty are pruned; an inexact change
        (a delete of a missing file, a file over a directory or back, an invalid name) raises
        StoreError."""
        ...

    def commit(self, tree: pygit2.Oid, parent: pygit2.Oid, when: int, message: str) -> pygit2.Oid:
        """A commit of ``tree`` on ``parent`` by the writer (author = committer, at ``when``),
        written into the batch; its id."""
        ...

    def discard(self) -> None:
        """Drop the batch under way (its operations all failed): nothing of it is published."""
        ...

    def finish(self, *, durable: bool) -> None:
        """Put the batch's objects on disk, and with ``durable`` make them survive a crash,
        before the ref names them; the next batch starts. May start a fold in the background."""
        ...

    def publish_server_info(self) -> None:
        """Rewrite ``info/refs`` and ``objects/info/packs`` from the refs as they are now (after
        a publish, outside the writer lock; concurrent rewrites are ordered by a lock of
        their own, so the last one has seen the newest tip)."""
        ...


class ObjectStore(Protocol):
    """The objects of one mirror, for its writer in this process."""

    name: str

    def batch(self) -> ObjectBatch:
        """A new batch handle for the calling thread (keep it: it caches what it read)."""
        ...

    def consolidate(self) -> bool:
        """Fold what the batches left on disk now, in this thread, unless another process is at
        it (the repack lock); True when something was folded."""
        ...

    def close(self) -> None:
        """Wait for the fold under way, if any."""
        ...


def objects_setting(environ: Mapping[str, str] | None = None) -> str:
    """The object store named by ``ASFALOAD_OBJECTS``, or the default."""
    raw = (os.environ if environ is None else environ).get(ENV_OBJECTS, "").strip()
    return check_objects(raw or DEFAULT_OBJECTS)


def check_objects(name: str) -> str:
    if name not in IMPLEMENTATIONS:
        raise ConfigError(
            f"Invalid object store {name!r} ({ENV_OBJECTS}: one of {', '.join(IMPLEMENTATIONS)})"
        )
    return name


def open_object_store(
    name: str,
    repo_path: str,
    *,
    server_info: bool = True,
    fold_in_child: bool = False,
    fan_in: int = 16,
) -> ObjectStore:
    """The ``name`` store of the bare repository ``repo_path``.

    ``server_info``: folds rewrite the dumb-HTTP pack list. ``fold_in_child``: for a process
    whose one thread writes (the server's writer process), folds that run Python code run in
    a child process instead of a thread. ``fan_in``: batches between two folds.
    """
    if check_objects(name) == "libgit2":
        from .libgit2 import Libgit2Objects

        return Libgit2Objects(repo_path, server_info=server_info, fan_in=fan_in)
    from .fast import FastObjects

    return FastObjects(
        repo_path, server_info=server_info, fold_in_child=fold_in_child, fan_in=fan_in
    )
