"""Who still has to sign what: an index of pending requests keyed by signer.

The index remembers the commit it describes. Bringing it up to date diffs that commit's tree with
the tip's (git skips unchanged subtrees by id), and re-evaluates only the pending subjects the
changed paths can affect; it never walks the whole mirror per request. When
the cache file is missing or unreadable, it is rebuilt once from scratch (a diff from the empty
tree). The cache lives in the server's private dir and is only ever a cache: deleting it is safe.

The cache file records the commit it describes, so a stale cache is simply caught up from that
commit on the next refresh. It is therefore written only when it is worth it: at once after a
build from scratch (the expensive case), otherwise at most every ``save_interval`` seconds while
the index has moved, and on :meth:`PendingIndex.close` — never on every commit, which would cost
O(pending subjects) per refresh.

What counts as pending and who may sign it are questions for the rules engine; they come in
through a :class:`PendingPolicy`, so this module stays free of signing rules.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable
from typing import Protocol

import pygit2

from ..rules.tree import TreeView
from .durable import is_disk_full
from .gittree import MAIN, GitTreeView, diff_trees

log = logging.getLogger(__name__)

CACHE_VERSION = 1


class PendingPolicy(Protocol):
    """The rules-engine questions the index asks."""

    def subject_of(self, path: str) -> str | None:
        """The pending subject a file at ``path`` belongs to (``X`` for
        ``X.signatures.json.pending``), or None when ``path`` is not part of a pending request."""
        ...

    def missing_signers(self, view: TreeView, subject: str) -> Iterable[str] | None:
        """Key strings that may still sign ``subject``; None when ``subject`` is not pending."""
        ...

    def affected_prefixes(self, path: str) -> Iterable[str]:
        """Path prefixes (ending in '/') whose pending subjects must be re-evaluated when
        ``path`` changes, e.g. a whole project when its signers file changes."""
        ...


class PendingIndex:
    """The pending index of one mirror, cached in a JSON file (``cache_path``)."""

    def __init__(
        self,
        repo_path: str,
        cache_path: str,
        policy: PendingPolicy,
        *,
        save_interval: float = 30.0,
    ) -> None:
        self._repo_path = os.path.abspath(repo_path)
        self._cache_path = cache_path
        self._policy = policy
        self._save_interval = save_interval
        self._lock = threading.RLock()
        self._local = threading.local()
        self._commit: str | None = None
        self._missing: dict[str, frozenset[str]] = {}
        # The keys of _missing, sorted: the subjects under a path prefix are a slice of it.
        self._subjects: list[str] = []
        self._by_key: dict[str, set[str]] = {}
        self._loaded = False
        self._dirty = False  # the cache file lags behind _commit
        self._saved_at = float("-inf")

    # --- queries ----------------------------------------------------------------------------
    def for_signer(self, key: str, *, refresh: bool = True) -> list[str]:
        """Sorted subjects ``key`` may still sign."""
        with self._lock:
            if refresh:
                self.refresh()
            return sorted(self._by_key.get(key, ()))

    def missing(self, subject: str, *, refresh: bool = True) -> frozenset[str] | None:
        """Keys that may still sign ``subject``; None when it is not pending."""
        with self._lock:
            if refresh:
                self.refresh()
            return self._missing.get(subject)

    def snapshot(self) -> tuple[str | None, dict[str, frozenset[str]]]:
        """(indexed commit, subject -> missing keys), without refreshing."""
        with self._lock:
            return self._commit, dict(self._missing)

    # --- maintenance ------------------------------------------------------------------------
    @property
    def _repo(self) -> pygit2.Repository:
        repo: pygit2.Repository | None = getattr(self._local, "repo", None)
        if repo is None:
            repo = pygit2.Repository(self._repo_path)
            self._local.repo = repo
        return repo

    def refresh(self) -> str | None:
        """Bring the index up to the tip of main; returns the indexed commit."""
        with self._lock:
            if not self._loaded:
                self._load()
            ref = self._repo.references.get(MAIN)
            tip = None if ref is None else str(ref.target)
            if tip != self._commit:
                from_scratch = self._commit is None
                self._advance(tip)
                self._dirty = True
                if from_scratch:
                    self._save()
            if self._dirty and time.monotonic() - self._saved_at >= self._save_interval:
                self._save()
            return self._commit

    def flush(self) -> None:
        """Write the cache file now if it lags behind the index."""
        with self._lock:
            if self._dirty:
                self._save()

    def close(self) -> None:
        """Flush the cache (a server worker calls this on exit)."""
        self.flush()

    def rebuild(self) -> None:
        """Forget everything and index the tip from scratch."""
        with self._lock:
            self._loaded = True
            self._clear()
            self.refresh()

    def _clear(self) -> None:
        self._commit = None
        self._missing, self._subjects, self._by_key = {}, [], {}

    def _tree(self, commit: str | None) -> pygit2.Tree | None:
        if commit is None:
            return None
        return self._repo[commit].peel(pygit2.Tree)

    def _advance(self, tip: str | None) -> None:
        try:
            old_tree = self._tree(self._commit)
        except (KeyError, ValueError, pygit2.GitError):
            # The indexed commit is gone (cache from another repository?): start over.
            self._clear()
            old_tree = None
        new_tree = self._tree(tip)
        policy = self._policy
        subjects: set[str] = set()
        prefixes: set[str] = set()
        for change in diff_trees(self._repo, old_tree, new_tree):
            subject = policy.subject_of(change.path)
            if subject is not None:
                subjects.add(subject)
            prefixes.update(policy.affected_prefixes(change.path))
        known = self._subjects
        for prefix in prefixes:
            i = bisect.bisect_left(known, prefix)
            while i < len(known) and known[i].startswith(prefix):
                subjects.add(known[i])
                i += 1
        view = GitTreeView(self._repo, new_tree)
        for subject in subjects:
            self._set(subject, self._evaluate(view, subject))
        self._commit = tip

    def _evaluate(self, view: TreeView, subject: str) -> frozenset[str] | None:
        try:
            keys = self._policy.missing_signers(view, subject)
        except Exception:
            # A malformed pending request must not take the index down; it is listed with
            # nobody to sign it, and re-evaluated when anything near it changes.
            log.exception("cannot evaluate pending subject %s", subject)
            return frozenset()
        return None if keys is None else frozenset(keys)

    def _set(self, subject: str, keys: frozenset[str] | None) -> None:
        for key in self._missing.get(subject, ()):
            subs = self._by_key.get(key)
            if subs is not None:
                subs.discard(subject)
                if not subs:
                    del self._by_key[key]
        if keys is None:
            if self._missing.pop(subject, None) is not None:
                i = bisect.bisect_left(self._subjects, subject)
                del self._subjects[i]
            return
        if subject not in self._missing:
            bisect.insort(self._subjects, subject)
        self._missing[subject] = keys
        for key in keys:
            self._by_key.setdefault(key, set()).add(subject)

    # --- cache file -------------------------------------------------------------------------
    def _load(self) -> None:
        self._loaded = True
        try:
            with open(self._cache_path, encoding="utf-8") as f:
                data = json.load(f)
            if not isinstance(data, dict) or data.get("version") != CACHE_VERSION:
                raise ValueError("unknown cache version")
            commit = data["commit"]
            pending = data["pending"]
            if not (commit is None or isinstance(commit, str)) or not isinstance(pending, dict):
                raise ValueError("malformed cache")
            self._clear()
            self._commit = commit
            for subject, keys in pending.items():
                if not isinstance(subject, str) or not isinstance(keys, list):
                    raise ValueError("malformed cache")
                self._set(subject, frozenset(str(k) for k in keys))
        except (OSError, ValueError, KeyError):
            # Missing or unreadable cache: rebuild from scratch on this refresh.
            self._clear()

    def _save(self) -> None:
        # Whatever happens below, do not retry before the next interval: a failing disk must not
        # turn every lookup into a failing write.
        self._dirty = False
        self._saved_at = time.monotonic()
        data = {
            "version": CACHE_VERSION,
            "commit": self._commit,
            "pending": {s: sorted(k) for s, k in sorted(self._missing.items())},
        }
        directory = os.path.dirname(os.path.abspath(self._cache_path))
        tmp = None
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            # Unique temp name + rename: several server processes may save at once; every
            # version on disk is a consistent (commit, entries) pair.
            fd, tmp = tempfile.mkstemp(prefix=".pending-index-", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, self._cache_path)
        except OSError as e:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
            if is_disk_full(e):
                log.warning("cannot write the pending index cache: the disk is full")
            else:
                log.exception("cannot write the pending index cache")
