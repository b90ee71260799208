"""Reading a mirror: its tip, its commits, the rules' view of a tree."""

from __future__ import annotations

import threading

import pygit2

from ..errors import StoreError
from .gittree import MAIN, GitTreeView


class MirrorReader:
    """Reads of the mirror at ``path``, from any thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    @property
    def repo(self) -> pygit2.Repository:
        """This thread's Repository object (pygit2 objects are not shared between threads)."""
        repo: pygit2.Repository | None = getattr(self._local, "repo", None)
        if repo is None:
            repo = pygit2.Repository(self.path)
            self._local.repo = repo
        return repo

    def head(self) -> str | None:
        ref = self.repo.references.get(MAIN)
        return None if ref is None else str(ref.target)

    def commit(self, commit: str | None = None) -> pygit2.Commit:
        rev = commit if commit is not None else self.head()
        if rev is None:
            raise StoreError("The mirror has no commits")
        try:
            return self.repo.revparse_single(rev).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError) as e:
            raise StoreError(f"Unknown commit {rev}") from e

    def view(self, commit: str | None = None) -> GitTreeView:
        """The tree at ``commit`` (default: the tip of main) as a rules-engine TreeView."""
        if commit is None:
            # The tip by id: revparse would first try the hex as a ref name in every namespace.
            repo = self.repo
            ref = repo.references.get(MAIN)
            if ref is None:
                raise StoreError("The mirror has no commits")
            return GitTreeView(repo, repo[ref.target].peel(pygit2.Commit).tree)
        return GitTreeView(self.repo, self.commit(commit).tree)
