"""Git helpers shared by tests that build trees a rules-abiding writer never makes."""

from __future__ import annotations

import pygit2
from pygit2.enums import FileMode


def plant_empty_tree(repo: pygit2.Repository, root: pygit2.Oid, path: str) -> pygit2.Oid:
    """``root`` with an empty directory at ``path`` (its missing parents created): what a
    hostile pusher adds beside a valid change, and what a file diff cannot see."""
    empty = repo.TreeBuilder().write()

    def put(tree_id: pygit2.Oid | None, parts: list[str]) -> pygit2.Oid:
        tree = repo[tree_id].peel(pygit2.Tree) if tree_id is not None else None
        tb = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
        name, rest = parts[0], parts[1:]
        if not rest:
            tb.insert(name, empty, FileMode.TREE)
        else:
            sub = tree[name].id if tree is not None and name in tree else None
            tb.insert(name, put(sub, rest), FileMode.TREE)
        return tb.write()

    return put(root, path.split("/"))
