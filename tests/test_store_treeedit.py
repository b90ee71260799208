"""The objects the writer builds are libgit2's, byte for byte, whichever object store builds them
(asfaload.store.objects: the fast one, which builds them without libgit2, and the libgit2 one):
their trees are those libgit2's TreeBuilder makes (and they refuse exactly what that refuses),
their commits are create_commit's. The fast store's TreeEditor is also held to them alone, with
a tiny cache."""

from __future__ import annotations

import hashlib
from typing import Protocol

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pygit2.enums import FileMode

from asfaload.errors import StoreError
from asfaload.rules.tree import Change, TreeView
from asfaload.store import GitTreeView, apply_change
from asfaload.store.objects import open_object_store
from asfaload.store.objects.changes import Node, group
from asfaload.store.objects.fast.commits import commit_bytes
from asfaload.store.objects.fast.trees import TreeEditor
from asfaload.store.objects.identity import committer

# Names whose byte order trips naive sorting (a file "a" sorts before "a.b", a directory "a"
# after it) and a non-ASCII one.
NAMES = ["a", "a.b", "a-b", "a0", "ab", "b", "é", "z"]
paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)
changes = st.tuples(
    st.dictionaries(paths, st.binary(max_size=4), max_size=4),
    st.frozensets(paths, max_size=3),
)


# libgit2's way, the reference the editor is held to: a TreeBuilder per directory along the
# changed paths (what the writer did before TreeEditor).
def treebuilder_rebuild(
    repo: pygit2.Repository, tree: pygit2.Tree | None, node: Node, prefix: str
) -> pygit2.Oid | None:
    """Write the tree ``tree`` + ``node``; None when the result is empty (so parents prune it)."""
    tb = repo.TreeBuilder(tree) if tree is not None else repo.TreeBuilder()
    for name, value in node.items():
        path = prefix + name
        existing = tb.get(name)
        if isinstance(value, dict):
            sub: pygit2.Tree | None = None
            if existing is not None:
                if existing.filemode != FileMode.TREE or not isinstance(existing, pygit2.Tree):
                    raise StoreError(f"Cannot create a directory over the file {path!r}")
                sub = existing
            new = treebuilder_rebuild(repo, sub, value, path + "/")
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
            if existing is not None and existing.filemode != FileMode.BLOB:
                raise StoreError(f"Cannot write the file {path!r} over a directory")
            tb.insert(name, repo.create_blob(value), FileMode.BLOB)
    if len(tb) == 0:
        return None
    return tb.write()


def treebuilder_apply(
    repo: pygit2.Repository, tree: pygit2.Tree | None, change: Change
) -> pygit2.Oid:
    new = treebuilder_rebuild(repo, tree, group(change), "")
    return repo.TreeBuilder().write() if new is None else new


class Editor(Protocol):
    def apply(self, tree: pygit2.Oid | None, change: Change) -> pygit2.Oid: ...

    def view(self, tree: pygit2.Oid | None) -> TreeView: ...


class StoreBatch:
    """An object store's batch whose objects reach the disk after each edit, so the test's own
    repository reads them (folds never start: the fan-in is out of reach)."""

    def __init__(self, kind: str, repo: pygit2.Repository) -> None:
        self._store = open_object_store(kind, repo.path, server_info=False, fan_in=1 << 30)
        self._batch = self._store.batch()

    def apply(self, tree: pygit2.Oid | None, change: Change) -> pygit2.Oid:
        try:
            return self._batch.apply(tree, change)
        finally:
            self._batch.finish(durable=False)

    def view(self, tree: pygit2.Oid | None) -> TreeView:
        return self._batch.view(tree)


# The editors held to libgit2's TreeBuilder: each object store's batch, and the fast store's
# tree editor alone with a cache small enough to be emptied within one example.
EDITORS = ["fast", "libgit2", "fast-editor"]


@pytest.fixture(params=EDITORS)
def editor_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def editor_for(repo: pygit2.Repository, kind: str = "fast-editor") -> Editor:
    if kind != "fast-editor":
        return StoreBatch(kind, repo)

    def read(oid: pygit2.Oid) -> tuple[int, bytes]:
        obj = repo.odb.read(oid)
        return int(obj[0]), bytes(obj[1])

    return TreeEditor(read, lambda kind, data: repo.odb.write(kind, data), cache_limit=8)


def unchecked_change(writes: dict[str, bytes]) -> Change:
    """A Change that skipped its own path checks: the editor refuses what git would."""
    change = object.__new__(Change)
    object.__setattr__(change, "message", "unchecked")
    object.__setattr__(change, "writes", writes)
    object.__setattr__(change, "deletes", frozenset())
    return change


def outcome(fn, *args) -> pygit2.Oid | str:
    try:
        return fn(*args)
    except (StoreError, ValueError, pygit2.GitError) as e:
        return f"refused ({type(e).__name__})"


def fresh(tmp_path_factory, kind: str) -> tuple[pygit2.Repository, Editor]:
    repo = pygit2.init_repository(str(tmp_path_factory.mktemp("r") / "r.git"), bare=True)
    return repo, editor_for(repo, kind)


def properties(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


@properties(300)
@given(steps=st.lists(changes, min_size=1, max_size=6))
def test_the_editor_and_libgit2_agree(tmp_path_factory, editor_kind, steps):
    repo, editor = fresh(tmp_path_factory, editor_kind)
    tree: pygit2.Tree | None = None
    for writes, deletes in steps:
        try:
            change = Change("step", writes, deletes - set(writes))
        except ValueError:
            continue
        expected = outcome(treebuilder_apply, repo, tree, change)
        got = outcome(editor.apply, None if tree is None else tree.id, change)
        assert (isinstance(got, pygit2.Oid), got) == (isinstance(expected, pygit2.Oid), expected)
        if isinstance(got, pygit2.Oid):
            tree = repo[got].peel(pygit2.Tree)


def test_the_editor_refuses_inexact_changes(tmp_path, editor_kind):
    repo = pygit2.init_repository(str(tmp_path / "r.git"), bare=True)
    editor = editor_for(repo, editor_kind)
    base = editor.apply(None, Change("base", {"d/f": b"1"}))
    for bad, why in [
        (Change("x", {}, frozenset({"d/missing"})), "no such file"),
        (Change("x", {"d/f/g": b"2"}), "over the file"),
        (Change("x", {"d": b"2"}), "over a directory"),
        (unchecked_change({"d/.git": b"2"}), "Invalid path"),
        (unchecked_change({"d//x": b"2"}), "Invalid path"),
    ]:
        with pytest.raises(StoreError, match=why):
            editor.apply(base, bad)
    # deleting the last file prunes its directories, as libgit2's way and apply_change do
    empty = editor.apply(base, Change("x", {}, frozenset({"d/f"})))
    prune = Change("x", {}, frozenset({"d/f"}))
    assert empty == repo.TreeBuilder().write() == treebuilder_apply(repo, repo[base], prune)
    assert apply_change(repo, repo[base], prune) == empty


@properties(150)
@given(steps=st.lists(changes, min_size=1, max_size=5))
def test_the_editor_view_reads_like_the_git_view(tmp_path_factory, editor_kind, steps):
    repo, editor = fresh(tmp_path_factory, editor_kind)
    tree: pygit2.Oid | None = None
    probes = ["", *NAMES, *(f"{a}/{b}" for a in NAMES for b in NAMES), "a/a/a", "a.b/z/é"]
    for writes, deletes in steps:
        try:
            change = Change("step", writes, deletes - set(writes))
            tree = editor.apply(tree, change)
        except StoreError:
            continue
        mine, git_view = editor.view(tree), GitTreeView(repo, repo[tree].peel(pygit2.Tree))
        for p in probes:
            assert mine.read(p) == git_view.read(p), p
            assert mine.is_dir(p) == git_view.is_dir(p), p
            assert mine.listdir(p) == git_view.listdir(p), p


@settings(max_examples=200, deadline=None)
@given(
    message=st.text(
        st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=60
    ),
    when=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_commit_bytes_are_libgit2s(tmp_path_factory, message, when):
    repo = pygit2.init_repository(str(tmp_path_factory.mktemp("c") / "r.git"), bare=True)
    tree = repo.TreeBuilder().write()
    parent = repo.create_commit(None, committer(0), committer(0), "root", tree, [])
    ours = commit_bytes(tree, parent, when, message)
    sig = committer(when)
    theirs = repo.create_commit(None, sig, sig, message, tree, [parent])
    assert repo.odb.read(theirs)[1] == ours
    assert hashlib.sha1(b"commit %d\0" % len(ours) + ours).hexdigest() == str(theirs)


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    message=st.text(
        st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=60
    ),
    when=st.integers(min_value=0, max_value=2**31 - 1),
)
@pytest.mark.parametrize("kind", ["fast", "libgit2"])
def test_each_store_commits_as_create_commit_does(tmp_path_factory, kind, message, when):
    repo = pygit2.init_repository(str(tmp_path_factory.mktemp("c") / "r.git"), bare=True)
    tree = repo.TreeBuilder().write()
    parent = repo.create_commit(None, committer(0), committer(0), "root", tree, [])
    batch = open_object_store(kind, repo.path, server_info=False).batch()
    ours = batch.commit(tree, parent, when, message)
    batch.finish(durable=False)
    sig = committer(when)
    assert ours == repo.create_commit(None, sig, sig, message, tree, [parent])
    with pytest.raises(StoreError, match="NUL"):
        batch.commit(tree, parent, when, "a\0b")
