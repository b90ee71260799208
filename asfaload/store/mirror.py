"""The public mirror: a bare git repository whose branch ``main`` holds the whole state.

Every state change is one commit on ``main``, written by the single writer of
:mod:`asfaload.store.writer` (in the server's writer process, or in-process) or pushed by a
signer through the pre-receive hook.

``Mirror.init`` creates the repository with a root commit holding the empty tree ("init
mirror"), so that ``main`` always exists: clones get a branch, every writer has a parent to
compare-and-swap against, and the hook can refuse any ref creation outright. History replay
(``mirror verify``) starts after that root commit.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from types import TracebackType
from typing import Unpack

import pygit2

from ..auth import NonceClaim
from ..errors import ConfigError, StoreError
from ..rules.tree import Operation
from .durable import lock_path_for
from .gittree import MAIN, GitTreeView, empty_tree
from .nonces import SqliteNonceStore
from .objects.gitcli import update_server_info
from .objects.identity import committer
from .reader import MirrorReader
from .settings import WriterOptions, WriterSettings
from .writer import CommitResult
from .writing import MirrorWriter

INIT_MESSAGE = "init mirror"


# The largest pack a push may send (git's receive.maxInputSize): signers push small text files,
# so a push far above this is an attempt to fill the disk. ASFALOAD_MAX_PUSH_BYTES overrides it.
ENV_MAX_PUSH_BYTES = "ASFALOAD_MAX_PUSH_BYTES"
DEFAULT_MAX_PUSH_BYTES = 64 * 1024 * 1024
MAX_PUSH_CONFIG = "receive.maxInputSize"


def max_push_bytes(environ: Mapping[str, str] | None = None) -> int:
    """The push size cap: ``ASFALOAD_MAX_PUSH_BYTES`` (a positive number of bytes) or 64 MiB."""
    raw = (os.environ if environ is None else environ).get(ENV_MAX_PUSH_BYTES, "").strip()
    if not raw:
        return DEFAULT_MAX_PUSH_BYTES
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"Invalid {ENV_MAX_PUSH_BYTES}: {raw!r} (a positive number of bytes)")
    return int(raw)


def limit_push_size(repo: pygit2.Repository, limit: int | None = None) -> None:
    """Set ``receive.maxInputSize`` to ``limit`` (default :func:`max_push_bytes`) unless it is
    already: on every creation and opening, so a mirror made before the cap, or under another
    setting, gets it too."""
    value = str(max_push_bytes() if limit is None else limit)
    if _config_value(repo, MAX_PUSH_CONFIG) == value:
        return
    try:
        repo.config[MAX_PUSH_CONFIG] = value
    except pygit2.GitError:
        # Another process opening the mirror holds the config lock: fine if it wrote the same.
        if _config_value(repo, MAX_PUSH_CONFIG) != value:
            raise StoreError("Cannot set the mirror's push size limit") from None


# One owner for the packs: git must never start a gc or a maintenance task on its own in a
# mirror (receive-pack runs `git gc --auto` after a push, other commands too). The writer's
# object store folds them (either store: objects.ObjectStore.consolidate) under the repack lock
# <repo>.repack.lock; an operator's gc takes that same lock (`flock mirror.git.repack.lock git
# -C mirror.git gc`, docs/git.md), so git's repack and the writer's folds never run at once.
# Set on every creation and opening.
OWNED_MAINTENANCE_CONFIG = {
    "gc.auto": "0",
    "maintenance.auto": "false",
    "receive.autoGc": "false",
}


def own_maintenance(repo: pygit2.Repository) -> None:
    """Set :data:`OWNED_MAINTENANCE_CONFIG` unless it is already."""
    for key, value in OWNED_MAINTENANCE_CONFIG.items():
        if _config_value(repo, key) == value:
            continue
        try:
            repo.config[key] = value
        except pygit2.GitError:
            # Another process opening the mirror holds the config lock: fine if it wrote the same.
            if _config_value(repo, key) != value:
                raise StoreError("Cannot turn off git's automatic gc in the mirror") from None


def _config_value(repo: pygit2.Repository, key: str) -> str | None:
    try:
        value = repo.config[key]
    except KeyError:
        return None
    return str(value)


def init_bare_repository(path: str, config: Mapping[str, str]) -> pygit2.Repository:
    """An empty bare repository (HEAD → main) at ``path`` with ``config`` set and the push size
    capped: the common start of a primary mirror and of a read-only one. Never over an existing
    non-empty path."""
    if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
        raise StoreError("Refusing to create a mirror over an existing non-empty path")
    repo = pygit2.init_repository(path, bare=True, initial_head="main")
    for key, value in config.items():
        repo.config[key] = value
    limit_push_size(repo)
    own_maintenance(repo)
    return repo


HOOK_NAMES = ("pre-receive", "post-update")

# Git config of a mirror. fsckObjects makes receive-pack refuse malformed objects before our
# hook even runs; the deny* settings are a second line behind the hook's own checks.
MIRROR_CONFIG = {
    "receive.denyDeletes": "true",
    "receive.denyNonFastForwards": "true",
    "receive.fsckObjects": "true",
    "core.logAllRefUpdates": "false",
}


def hook_script(name: str, python: str) -> str:
    """The hook installed into a mirror: runs our hook code with the interpreter recorded at
    install time, so it works under whatever environment the git server gives its hooks (an
    empty one, ``git daemon``, a forge's hook runner): no PATH or variable is needed."""
    return f'#!/bin/sh\nexec {shlex.quote(python)} -m asfaload.hooks {shlex.quote(name)} "$@"\n'


# Where git hosts look for extra hooks of one kind (Gitea/Forgejo: hooks/<name>.d; GitLab server
# hooks: custom_hooks/<name>.d); when such a directory exists, our hook goes in it, beside the
# host's own, instead of replacing the host's hooks/<name>.
_HOOK_DIRS = ("hooks/{name}.d", "custom_hooks/{name}.d")
HOOK_FILE_IN_DIR = "asfaload"


def install_hooks(repo_path: str, python: str | None = None) -> list[str]:
    """Install (or refresh) our hooks in the bare repository ``repo_path``; returns the paths
    written, relative to it. Each file is replaced atomically."""
    written: list[str] = []
    for name in HOOK_NAMES:
        targets = [
            os.path.join(d.format(name=name), HOOK_FILE_IN_DIR)
            for d in _HOOK_DIRS
            if os.path.isdir(os.path.join(repo_path, d.format(name=name)))
        ] or [os.path.join("hooks", name)]
        for rel in targets:
            path = os.path.join(repo_path, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = path + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(hook_script(name, python or sys.executable))
            os.chmod(tmp, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
            os.replace(tmp, path)
            written.append(rel)
    return written


def check_mirror(path: str) -> None:
    """Refuse (StoreError) anything but a mirror: a bare repository with a ``main`` branch; set
    the push size cap and git's maintenance off on the way (every opening, see above)."""
    try:
        repo = pygit2.Repository(path)
    except (pygit2.GitError, KeyError) as e:
        raise StoreError("Not a mirror repository") from e
    if not repo.is_bare or repo.references.get(MAIN) is None:
        raise StoreError("Not a mirror repository (bare, with a main branch)")
    limit_push_size(repo)
    own_maintenance(repo)


class Mirror:
    """A mirror repository: its reads (:class:`.MirrorReader`) and, from this process, its writes
    (:class:`.MirrorWriter`: this process's single writer, or the server's writer process).

    ``options`` are the writer's :class:`.WriterSettings`, given by name.
    """

    def __init__(
        self,
        path: str,
        *,
        writer_socket: str | None = None,
        nonces: SqliteNonceStore | None = None,
        **options: Unpack[WriterOptions],
    ) -> None:
        self.path = os.path.abspath(path)
        check_mirror(self.path)
        self.settings = WriterSettings(**options)
        self._reader = MirrorReader(self.path)
        self._listeners: list[Callable[[str], None]] = []
        self._writes = MirrorWriter(
            self.path,
            self.lock_path,
            self.settings,
            writer_socket=writer_socket,
            nonces=nonces,
            on_publish=self._notify,
        )

    # --- creation -----------------------------------------------------------------------------
    @classmethod
    def init(
        cls, path: str, *, python: str | None = None, **options: Unpack[WriterOptions]
    ) -> Mirror:
        """Create a new bare mirror at ``path`` (which must not exist or be empty)."""
        settings = WriterSettings(**options)
        path = os.path.abspath(path)
        repo = init_bare_repository(path, MIRROR_CONFIG)
        install_hooks(path, python)
        sig = committer(settings.clock())
        repo.create_commit(MAIN, sig, sig, INIT_MESSAGE, empty_tree(repo), [])
        if settings.server_info:
            update_server_info(path)
        return cls(path, **options)

    @classmethod
    def open(
        cls,
        path: str,
        *,
        writer_socket: str | None = None,
        nonces: SqliteNonceStore | None = None,
        **options: Unpack[WriterOptions],
    ) -> Mirror:
        return cls(path, writer_socket=writer_socket, nonces=nonces, **options)

    @property
    def lock_path(self) -> str:
        return lock_path_for(self.path)

    # --- reading ------------------------------------------------------------------------------
    @property
    def repo(self) -> pygit2.Repository:
        """This thread's Repository object (pygit2 objects are not shared between threads)."""
        return self._reader.repo

    def head(self) -> str | None:
        return self._reader.head()

    def commit(self, commit: str | None = None) -> pygit2.Commit:
        return self._reader.commit(commit)

    def view(self, commit: str | None = None) -> GitTreeView:
        """The tree at ``commit`` (default: the tip of main) as a rules-engine TreeView."""
        return self._reader.view(commit)

    # --- writing ------------------------------------------------------------------------------
    @property
    def object_store(self) -> str:
        """The object store this process writes through (:mod:`.objects`)."""
        return self._writes.local.object_store

    def submit_async(self, op: Operation) -> Future[CommitResult]:
        return self._writes.submit_async(op)

    @property
    def claims_nonces(self) -> bool:
        """:meth:`submit` can record a request's nonce with its operation."""
        return self._writes.claims_nonces

    def submit(
        self,
        op: Operation,
        timeout: float | None = None,
        *,
        nonce: NonceClaim | None = None,
        in_process: bool = False,
    ) -> CommitResult:
        """Apply ``op`` as one commit on main; returns once the commit is published and durable.

        Exceptions raised by ``op`` reach this caller and nothing is committed for it. With a
        writer process, the operation is applied there, pickled; ``in_process=True`` applies it
        with this process's own writer instead (an operation holding what must not cross
        processes, such as the TUF online signing keys), under the same lock and
        compare-and-swap. An operation that cannot be pickled without that flag is refused
        (StoreError), never silently applied elsewhere; while the writer process cannot be
        reached, operations are applied here.

        ``nonce``: the authenticated request's nonce, recorded before ``op`` is applied (by the
        writer process with the rest of its batch, or here); a nonce already recorded refuses
        the operation with a 401 replay error. Needs :attr:`claims_nonces`.
        """
        return self._writes.submit(op, timeout, nonce=nonce, in_process=in_process)

    def write_batch(self, ops: Sequence[Operation]) -> list[CommitResult | Exception]:
        """Apply ``ops`` in the calling thread (see :meth:`.BatchWriter.write_batch`)."""
        return self._writes.write_batch(ops)

    def consolidate(self) -> bool:
        """Fold what the writer's batches left on disk now (see :meth:`.ObjectStore.consolidate`)."""
        return self._writes.local.consolidate()

    @property
    def server_info_pending(self) -> bool:
        return self._writes.server_info_pending

    def publish_server_info(self) -> None:
        """Rewrite the dumb-HTTP files after write_batch (from its thread)."""
        self._writes.publish_server_info()

    def add_listener(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(new_tip)`` after each batch this process publishes."""
        self._listeners.append(callback)

    def _notify(self, tip: str) -> None:
        for cb in list(self._listeners):
            cb(tip)

    def close(self) -> None:
        self._writes.close()

    def __enter__(self) -> Mirror:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
