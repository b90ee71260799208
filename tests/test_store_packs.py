"""The writer's batches land as packs (asfaload.store.packs), checked by git itself."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import wait
from pathlib import Path

import pygit2
import pytest

from asfaload.rules.tree import Change, TreeView
from asfaload.store import Mirror
from asfaload.store.packs import (
    Consolidator,
    pack_names,
    write_info_packs,
    write_pack,
)


def git(repo: str, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def loose_count(repo: str) -> int:
    line = next(x for x in git(repo, "count-objects", "-v").splitlines() if x.startswith("count:"))
    return int(line.split()[1])


def counter_op(tag: str):
    def op(view: TreeView, now: int) -> Change:
        n = int(view.read("counter") or b"0")
        return Change(f"op {tag}", {"counter": str(n + 1).encode(), f"d/{tag}/f": tag.encode()})

    return op


def test_write_pack_is_a_pack_git_reads(tmp_path):
    repo_path = str(tmp_path / "r.git")
    pygit2.init_repository(repo_path, bare=True)
    big = os.urandom(200_000)  # more than one stored deflate block
    blobs = [b"", b"hello\n", big, b"x" * 70_000]
    objects = {}
    for data in blobs:
        oid = pygit2.hash(data)
        objects[oid] = (int(pygit2.enums.ObjectType.BLOB), data)
    name = write_pack(objects, os.path.join(repo_path, "objects", "pack"))
    out = git(repo_path, "verify-pack", "-v", f"objects/pack/{name}.idx")
    assert f"non delta: {len(blobs)} objects" in out
    repo = pygit2.Repository(repo_path)
    for oid, (_, data) in objects.items():
        assert repo[oid].data == data
    assert git(repo_path, "cat-file", "-s", str(pygit2.hash(big))).strip() == str(len(big))
    assert pack_names(repo_path) == [name + ".pack"]


def test_the_writer_leaves_each_batch_in_a_pack_and_no_loose_object(tmp_path):
    path = str(tmp_path / "m.git")
    with Mirror.init(path) as m:
        loose_at_init = loose_count(path)  # the root commit and the empty tree
        for i in range(5):
            m.submit(counter_op(f"s{i}"))
        futures = [m.submit_async(counter_op(f"c{i}")) for i in range(20)]
        wait(futures)
        assert all(f.exception() is None for f in futures)
        assert m.view().read("counter") == b"25"
    assert loose_count(path) == loose_at_init
    packs = pack_names(path)
    assert 6 <= len(packs) <= 25  # one per batch
    git(path, "fsck", "--strict", "--no-dangling")
    # The dumb-HTTP pack list names exactly the packs, as git's own update-server-info would.
    ours = Path(path, "objects", "info", "packs").read_text()
    git(path, "update-server-info")
    theirs = Path(path, "objects", "info", "packs").read_text()
    assert sorted(ours.splitlines()) == sorted(theirs.splitlines())
    assert {line.split()[1] for line in ours.splitlines() if line} == set(packs)


def test_a_batch_whose_operations_all_fail_writes_nothing(tmp_path):
    path = str(tmp_path / "m.git")
    with Mirror.init(path) as m:
        m.submit(counter_op("a"))
        before = pack_names(path)

        def failing(view: TreeView, now: int) -> Change:
            view.read("counter")
            raise ValueError("refused")

        with pytest.raises(ValueError):
            m.submit(failing)
        assert pack_names(path) == before
        # the writer goes on afterwards
        m.submit(counter_op("b"))
        assert m.view().read("counter") == b"2"


def test_an_object_already_on_disk_can_be_written_again(tmp_path):
    path = str(tmp_path / "m.git")
    with Mirror.init(path) as m:
        m.submit(lambda v, t: Change("one", {"a/x": b"same", "b/y": b"1"}))
        # the same blob and the same subtree a/ again, under a new name
        m.submit(lambda v, t: Change("two", {"c/x": b"same", "b/y": b"2"}))
        assert m.view().read("c/x") == b"same"
    git(path, "fsck", "--strict")


def test_consolidation_folds_the_batch_packs(tmp_path):
    path = str(tmp_path / "m.git")
    with Mirror.init(path) as m:
        for i in range(12):
            m.submit(counter_op(f"s{i}"))
        assert len(pack_names(path)) >= 12
        refreshed = []
        c = Consolidator(path, lambda: (refreshed.append(1), write_info_packs(path)), every=3)
        c.packed()
        c.packed()
        c.wait()
        assert len(pack_names(path)) >= 12 and not refreshed  # not yet: every 3 packs
        c.packed()
        c.wait()
        assert refreshed == [1]
        assert len(pack_names(path)) < 12
        listed = Path(path, "objects", "info", "packs").read_text().split()
        assert set(listed[1::2]) == set(pack_names(path))
        # readers and the writer go on over the new packs
        m.submit(counter_op("after"))
        assert m.view().read("counter") == b"13"
    git(path, "fsck", "--strict", "--no-dangling")
    assert git(path, "rev-list", "--count", "main").strip() == "14"


def test_rollups_copy_objects_and_keep_those_no_ref_reaches_yet(tmp_path):
    """A rollup folds packs without delta search or recompression, and keeps objects that no
    ref reaches yet (a batch whose compare-and-swap is in flight) instead of dropping them."""
    path = str(tmp_path / "m.git")
    with Mirror.init(path) as m:
        for i in range(8):
            m.submit(counter_op(f"s{i}"))
    in_flight = b"a batch whose ref update has not happened yet\n" * 50
    oid = pygit2.hash(in_flight)
    pack_dir = os.path.join(path, "objects", "pack")
    write_pack({oid: (int(pygit2.enums.ObjectType.BLOB), in_flight)}, pack_dir)
    assert len(pack_names(path)) >= 9
    assert Consolidator(path, lambda: None).run()
    assert len(pack_names(path)) < 9
    assert pygit2.Repository(path)[oid].read_raw() == in_flight
    (pack,) = [n for n in pack_names(path) if os.path.getsize(os.path.join(pack_dir, n)) > 2000]
    listing = git(path, "verify-pack", "-v", os.path.join(pack_dir, pack[: -len(".pack")] + ".idx"))
    assert "chain length" not in listing  # no deltas
    git(path, "fsck", "--strict")
