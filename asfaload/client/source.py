"""Where the client reads a release's facts: a backend's REST API, or a git mirror.

A verified download needs four facts about a release: its index, the signatures over it, the
signers copy they were checked against, and any revocation (plus, with ``--full-check``, the
signers chain). :class:`ReleaseSource` names the three reads that give them;
:class:`~asfaload.client.api.BackendClient` answers them over HTTP, :class:`GitMirrorSource`
from the tree at the tip of a mirror's ``main`` with the server's own read functions
(:mod:`asfaload.service.reads`). Verification (:mod:`.download`, :mod:`.verify`, :mod:`.chain`)
is written once against the protocol and never trusts either source.

A mirror named by a git URL is fetched into a per-URL cache repository and every new commit is
replayed through the rules before it is used, exactly as ``asfaload mirror sync`` does
(:func:`asfaload.replication.sync.sync`): a hostile mirror cannot feed a rewritten history, or a
commit the rules do not derive, to the client. A local path is replayed the same way: from its
root the first time, then from the tip this client last verified there, which the client keeps
in its own cache (``<cache>/verified/``). Nothing the mirror directory itself holds (such as the
status file ``mirror sync`` writes) is taken as proof that it was checked: a directory handed over
as a tarball or an rsync brings whatever its sender wrote. As for a URL, a tip that does not
contain the one verified before (a rewrite, or a rollback that would hide a revocation) is
refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import pygit2

from ..errors import FormatError, NotFoundError, StoreError, VerificationError
from ..layout import MIRROR_REPO_DIR
from ..service import reads
from ..store.gitlimits import plain_netloc
from ..store.gittree import GitTreeView

__all__ = [
    "CACHE_DIR_ENV",
    "GitMirrorSource",
    "ReleaseSource",
    "is_git_url",
    "mirror_cache_path",
    "mirror_key",
    "open_mirror",
    "verified_record_path",
]

CACHE_DIR_ENV = "ASFALOAD_CACHE_DIR"
# Branches a mirror's state may be found on: a bare mirror's own, or a clone's remote-tracking one.
MAIN_REFS = ("refs/heads/main", "refs/remotes/origin/main")


class ReleaseSource(Protocol):
    """The reads a verified download makes; every answer is re-verified by the caller."""

    @property
    def label(self) -> str:
        """How messages name this source (``the backend``, ``the mirror``)."""
        ...

    def get_file(self, path: str) -> bytes:
        """The bytes of a mirror file; NotFoundError when absent."""
        ...

    def get_file_or_none(self, path: str) -> bytes | None: ...

    def get_signers_chain(self, artifact_path: str) -> dict[str, Any]:
        """The ``GET /v1/get_signers_chain`` answer for ``artifact_path``."""
        ...


class GitMirrorSource:
    """The facts of the tree at the tip of ``main`` in a local mirror repository (or a clone)."""

    label = "the mirror"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        path = os.fspath(path)
        inner = os.path.join(path, MIRROR_REPO_DIR)
        if os.path.isdir(inner):  # a server's data dir
            path = inner
        if not os.path.isdir(path):
            raise FormatError(f"No such mirror repository: {path}")
        _check_plain_files(path)
        try:
            # NO_SEARCH: a directory inside some other repository is not that repository.
            repo = pygit2.Repository(path, pygit2.enums.RepositoryOpenFlag.NO_SEARCH)
        except (pygit2.GitError, KeyError) as exc:
            raise StoreError(f"Not a git repository: {path}") from exc
        self.path = path
        commit: pygit2.Commit | None = None
        try:
            for name in MAIN_REFS:
                ref = repo.references.get(name)
                if ref is not None:
                    commit = ref.peel(pygit2.Commit)
                    break
        except (pygit2.GitError, KeyError, ValueError) as exc:
            raise StoreError(f"The mirror at {path} has no readable main branch") from exc
        if commit is None:
            raise StoreError(f"The mirror at {path} has no main branch")
        self.tip = str(commit.id)
        # Which state of the mirror answered: a clone that was not fetched lately is behind.
        try:
            when = time.strftime(", %Y-%m-%d %H:%M UTC", time.gmtime(commit.commit_time))
        except (OverflowError, OSError, ValueError):
            when = ""  # a hostile committer time: the replay refuses it, the label skips it
        self.label = f"the mirror (main at {self.tip[:12]}{when})"
        self._repo = repo
        self._view = GitTreeView(repo, commit.tree)

    def verify(self, cache: Path | None = None) -> None:
        """Replay the commits of this tip that this client has not verified here before (all of
        them the first time) through the rules; record the tip in the client's cache.
        VerificationError when a commit fails, or when the tip does not contain the one verified
        before.

        The record is kept under the path as given and under the repository's real path: a
        directory handed over again with a symlink to an older copy in it (or the same copy
        reached through another path) meets the tip verified under either name.
        """
        from ..replication.replay import verify_since

        records = {
            verified_record_path(p, cache) for p in (self.path, os.path.realpath(self._repo.path))
        }
        known = [(r, tip) for r in sorted(records) if (tip := _read_tip(r)) is not None]
        for record, tip in known:
            if tip != self.tip and not self._contains(tip):
                raise VerificationError(
                    f"Refused the mirror at {self.path}: its main {self.tip[:12]} does not "
                    f"contain commit {tip[:12]}, which this client verified there before (a "
                    "rewritten or rolled-back history could hide a revocation; to trust it "
                    f"anew, remove {record})"
                )
        # Replay from the newest tip verified under either name (the other is its ancestor).
        start: str | None = None
        for _, tip in known:
            if start is None or (tip != start and self._repo.descendant_of(tip, start)):
                start = tip
        if start != self.tip:
            report = verify_since(self._repo, start, self.tip)
            if report.bad is not None:
                bad = report.bad
                where = f"commit {bad.commit}" if bad.commit else "its main"
                raise VerificationError(f"Refused the mirror at {self.path}: {where}: {bad.reason}")
        for record in records:
            _write_tip(record, self.tip)

    def _contains(self, commit: str) -> bool:
        try:
            return bool(self._repo.descendant_of(self.tip, commit))
        except (KeyError, ValueError, pygit2.GitError):
            return False  # not in this repository at all

    def get_file(self, path: str) -> bytes:
        return reads.read_file(self._view, path)

    def get_file_or_none(self, path: str) -> bytes | None:
        try:
            return self.get_file(path)
        except NotFoundError:
            return None

    def get_signers_chain(self, artifact_path: str) -> dict[str, Any]:
        return reads.signers_chain(self._view, artifact_path)

    def close(self) -> None:
        """Nothing to release (the repository is closed with the object)."""

    def __enter__(self) -> GitMirrorSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_plain_files(repo_path: str) -> None:
    """Refuse a repository whose ref files are not plain files: a FIFO at ``packed-refs`` would
    block the reader for good, a device would feed it without end."""
    files = ("HEAD", "config", "packed-refs", *MAIN_REFS)
    for name in (f"{where}{f}" for where in ("", ".git/") for f in files):
        full = os.path.join(repo_path, name)
        if os.path.lexists(full) and not os.path.isfile(full):
            raise StoreError(f"The mirror at {repo_path} has a {name} that is not a plain file")


def is_git_url(spec: str) -> bool:
    """True for ``scheme://…`` (a mirror to fetch); anything else is a local path."""
    from ..replication.sync import is_url

    return is_url(spec)


def cache_root() -> Path:
    """``$ASFALOAD_CACHE_DIR``, else ``$XDG_CACHE_HOME/asfaload``, else ``~/.cache/asfaload``."""
    own = os.environ.get(CACHE_DIR_ENV)
    if own:
        return Path(own)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "asfaload"


def mirror_key(url: str) -> str:
    """The identity of the mirror at ``url``, as the cache keys it: scheme and host in lower
    case, no credentials or fragment, no trailing ``/`` or ``.git``. The spellings git takes
    for one repository share one cache, and so one record of what was verified there: a
    rollback served at ``…/mirror.git/`` is met by what ``…/mirror.git`` saw."""
    parts = urlsplit(url)
    netloc = plain_netloc(url) or ""
    path = parts.path.rstrip("/").removesuffix(".git").rstrip("/")
    return urlunsplit((parts.scheme.lower(), netloc, path, parts.query, ""))


def mirror_cache_path(url: str, root: Path | None = None) -> Path:
    """The cache repository of mirror ``url``: ``<cache>/mirrors/<sha256 of its key>.git``
    (:func:`mirror_key`)."""
    digest = hashlib.sha256(mirror_key(url).encode("utf-8")).hexdigest()
    return (root if root is not None else cache_root()) / "mirrors" / f"{digest}.git"


def verified_record_path(repo_path: str, root: Path | None = None) -> Path:
    """Where this client keeps the tip it last verified in the local repository at
    ``repo_path``, a path taken as it is (made absolute, symlinks not resolved):
    ``<cache>/verified/<sha256 of the path>``."""
    name = os.path.abspath(repo_path).encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(name).hexdigest()
    return (root if root is not None else cache_root()) / "verified" / digest


def _read_tip(record: Path) -> str | None:
    try:
        text = record.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if len(text) == 40 and all(c in "0123456789abcdef" for c in text) else None


def _write_tip(record: Path, tip: str) -> None:
    """Best effort: without a writable cache the next use replays the whole history again."""
    tmp = record.with_name(f"{record.name}.{os.getpid()}.tmp")
    try:
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(tip + "\n", encoding="ascii")
        os.replace(tmp, record)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()


def open_mirror(spec: str, cache: Path | None = None) -> GitMirrorSource:
    """A source for ``--mirror``: a local repository or a git URL, its history verified.

    A URL's new commits are replayed through the rules into the cache repository (created on
    first use, fetched incrementally afterwards) before anything is read from it. A fetch that
    fails is an error, not a fall-back to the cached state: the cache may predate a revocation.
    """
    if not spec or any(c in spec for c in "\0\n\r"):
        raise FormatError("Invalid mirror path or URL")
    if not is_git_url(spec):
        local = GitMirrorSource(spec)
        local.verify(cache)
        return local
    from ..replication import sync as mirror_sync

    path = mirror_cache_path(spec, cache)
    try:
        mirror_sync.sync(str(path), spec)
    except mirror_sync.RejectedHistoryError as exc:
        bad = exc.bad
        where = f"commit {bad.commit}" if bad.commit else "its main"
        raise VerificationError(f"Refused the mirror {spec}: {where}: {bad.reason}") from exc
    except mirror_sync.FetchError as exc:
        raise mirror_sync.FetchError(f"Cannot fetch the mirror {spec}: {exc.detail}") from exc
    return GitMirrorSource(path)
