"""The fast store's batches land as packs (asfaload.store.objects.fast.packs), checked by git
itself; what every object store shares (folds, none under the repack lock, failed batches,
objects written twice) is tested against both."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import wait
from pathlib import Path

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asfaload.rules.tree import Change, TreeView
from asfaload.store import Mirror
from asfaload.store.durable import WriterLock, lock_path_for
from asfaload.store.objects.fast.info import pack_names, write_info_packs
from asfaload.store.objects.fast.packs import (
    Consolidator,
    FoldChild,
    choose_fold,
    fold_packs,
    pack_file,
    pack_objects,
    write_pack,
)


def git(repo: str, *args: str, input: bytes | None = None) -> str:
    out = subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, input=input)
    return out.stdout.decode()


def loose_count(repo: str) -> int:
    line = next(x for x in git(repo, "count-objects", "-v").splitlines() if x.startswith("count:"))
    return int(line.split()[1])


def bare_repo(tmp_path: Path) -> tuple[str, str]:
    """A new bare repository without objects: its path and its pack directory."""
    path = str(tmp_path / "r.git")
    git(str(tmp_path), "init", "-q", "--bare", path)
    return path, os.path.join(path, "objects", "pack")


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


def test_a_batch_whose_operations_all_fail_writes_nothing(tmp_path, object_store):
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


def test_an_object_already_on_disk_can_be_written_again(tmp_path, object_store):
    path = str(tmp_path / "m.git")
    with Mirror.init(path) as m:
        m.submit(lambda v, t: Change("one", {"a/x": b"same", "b/y": b"1"}))
        # the same blob and the same subtree a/ again, under a new name
        m.submit(lambda v, t: Change("two", {"c/x": b"same", "b/y": b"2"}))
        assert m.view().read("c/x") == b"same"
    git(path, "fsck", "--strict")


def object_files(path: str) -> tuple[list[str], int]:
    return pack_names(path), loose_count(path)


def test_each_store_folds_its_batches_and_never_under_the_repack_lock(tmp_path, object_store):
    """Whichever object store writes: folds every few batches in the background, a fold on
    demand, none while the repack lock is held elsewhere (an operator's gc), and every object
    and the dumb-HTTP pack list right afterwards."""
    path = str(tmp_path / "m.git")
    with Mirror.init(path, repack_fan_in=3) as m:
        assert m.object_store == object_store
        for i in range(9):
            m.submit(counter_op(f"s{i}"))
    with Mirror.open(path, repack_fan_in=3) as m:
        m.submit(counter_op("s9"))
        with WriterLock(lock_path_for(path, "repack")):  # git gc under flock, elsewhere
            before = object_files(path)
            assert not m.consolidate()
            assert object_files(path) == before
        if object_store == "libgit2":  # git's fold always has the loose objects to take
            assert m.consolidate()
        else:
            m.consolidate()  # a fold only when some level is full
        packs, loose = object_files(path)
        if object_store == "fast":
            assert loose <= before[1]  # it never writes a loose object itself
            assert len(packs) < 10  # folded: one pack per batch before
        else:
            assert loose == 0 and len(packs) < 10
        listed = Path(path, "objects", "info", "packs").read_text().split()
        assert set(listed[1::2]) == set(packs)
        m.submit(counter_op("after"))
        assert m.view().read("counter") == b"11"
    git(path, "fsck", "--strict", "--no-dangling")
    assert git(path, "rev-list", "--count", "main").strip() == "12"


@pytest.mark.parametrize("in_child", [False, True], ids=["thread", "child"])
def test_consolidation_folds_the_batch_packs(tmp_path, in_child):
    """Every fan_in packs, a fold: in a thread, or in the child the writer process pokes (which
    rewrites the dumb-HTTP pack list itself and ends with its writer)."""
    path = str(tmp_path / "m.git")
    with Mirror.init(path) as m:
        for i in range(12):
            m.submit(counter_op(f"s{i}"))
        assert len(pack_names(path)) >= 12
        refreshed = []
        child = FoldChild(path, 3, server_info=True) if in_child else None
        c = Consolidator(
            path, lambda: (refreshed.append(1), write_info_packs(path)), fan_in=3, child=child
        )
        c.packed()
        c.packed()
        c.wait()
        assert len(pack_names(path)) >= 12 and not refreshed  # not yet: every 3 packs
        assert child is None or child._proc is None
        c.packed()
        proc = None if child is None else child._proc
        c.wait()  # a child gets end of file: it finishes its folds and exits
        if proc is None:
            assert refreshed == [1]
        else:
            assert proc.returncode == 0 and not refreshed
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
    assert Consolidator(path, lambda: None, fan_in=4).run()
    assert len(pack_names(path)) < 9
    assert pygit2.Repository(path)[oid].read_raw() == in_flight
    (pack,) = [n for n in pack_names(path) if os.path.getsize(os.path.join(pack_dir, n)) > 2000]
    listing = git(path, "verify-pack", "-v", pack_file(pack_dir, pack, ".idx"))
    assert "chain length" not in listing  # no deltas
    git(path, "fsck", "--strict")


def test_a_fold_takes_the_lowest_full_level_and_everything_below_it():
    # levels with fan-in 4: 1-3 objects, 4-15, 16-63, 64-255 ...
    sizes = {"a": 5, "b": 6, "c": 7, "d": 20, "e": 70, "f": 2}
    assert choose_fold(sizes, 4) == []  # no level holds 4 packs
    sizes["g"] = 9
    assert choose_fold(sizes, 4) == ["a", "b", "c", "f", "g"]  # level 1 is full; f is below
    # the fold lands a level up; the levels above wait for their own fan-in
    assert choose_fold({"x": 27, "d": 20, "e": 70, "h": 16}, 4) == []
    assert choose_fold({"x": 27, "d": 20, "e": 70, "h": 16, "i": 63}, 4) == ["d", "h", "i", "x"]


def test_folds_cascade_up_the_levels(tmp_path):
    """With fan-in 4: four packs of 5 objects fold into one pack a level up; when that makes
    four packs at the next level, they fold too, in the same run. Every object stays."""
    path, pack_dir = bare_repo(tmp_path)
    blob = int(pygit2.enums.ObjectType.BLOB)
    written: dict[pygit2.Oid, bytes] = {}
    c = Consolidator(path, lambda: None, fan_in=4)
    for round in range(4):
        before = set(pack_names(path))
        for i in range(4):
            objects = {}
            for j in range(5):
                data = f"round {round} pack {i} object {j}\n".encode()
                objects[pygit2.hash(data)] = (blob, data)
            written.update({oid: data for oid, (_, data) in objects.items()})
            write_pack(objects, pack_dir)
        assert c.run()
        sizes = sorted(pack_objects(pack_dir, n) for n in pack_names(path))
        if round < 3:
            assert sizes == [20] * (round + 1), sizes
        else:  # the fourth 20-object pack (level 2) folds the four into one
            assert sizes == [80], sizes
            assert not set(pack_names(path)) & before
    assert not c.run()  # nothing left to fold
    repo = pygit2.Repository(path)
    assert all(repo[oid].read_raw() == data for oid, data in written.items())
    git(path, "fsck", "--strict")


def test_a_fold_packs_loose_objects_and_removes_them(tmp_path):
    """Pushes can leave loose objects (receive-pack unpacks small pushes): a fold packs them."""
    path = str(tmp_path / "m.git")
    with Mirror.init(path) as m:
        for i in range(4):
            m.submit(counter_op(f"s{i}"))
    loose = (
        subprocess.run(
            ["git", "hash-object", "-w", "--stdin"],
            cwd=path,
            input=b"pushed loose\n",
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .strip()
    )
    assert loose_count(path) >= 1
    assert Consolidator(path, lambda: None, fan_in=4).run()
    assert loose_count(path) == 0
    assert pygit2.Repository(path)[loose].read_raw() == b"pushed loose\n"


def test_fold_packs_keeps_every_object_once_and_moves_offset_deltas(tmp_path):
    """fold_packs against git: a pack git deltified, after a pack of ours holding its delta
    bases again (so every delta there must be pointed at the copy already taken) and before
    one repeating an object of the first, folds into a pack git verifies, each object once and
    every object's content unchanged."""
    path, pack_dir = bare_repo(tmp_path)
    text = "".join(f"line {i} of a file that changes a little\n" for i in range(400))
    versions = {}
    for v in range(6):
        data = (text + f"edit {v}\n").encode()
        versions[git(path, "hash-object", "-w", "--stdin", input=data).strip()] = data
    ids = "\n".join(versions).encode()
    made = git(
        path,
        "pack-objects",
        "-q",
        "--window=10",
        "--delta-base-offset",
        "objects/pack/pack",
        input=ids,
    )
    deltified = f"pack-{made.strip()}.pack"
    listing = git(path, "verify-pack", "-v", pack_file(pack_dir, deltified, ".idx"))
    rows = [line.split() for line in listing.splitlines() if line[:40] in versions]
    bases = [row[0] for row in rows if len(row) == 5]
    assert len(bases) < len(rows)  # the premise: git did write deltas
    blob = int(pygit2.enums.ObjectType.BLOB)
    again = {pygit2.Oid(hex=h): (blob, versions[h]) for h in bases}
    again[pygit2.hash(b"only here\n")] = (blob, b"only here\n")
    first = write_pack(again, pack_dir) + ".pack"
    last = write_pack(
        {
            pygit2.hash(b"only here\n"): (blob, b"only here\n"),
            pygit2.hash(b"new\n"): (blob, b"new\n"),
        },
        pack_dir,
    )
    names = [first, deltified, last + ".pack"]
    new = fold_packs(pack_dir, names)
    assert new is not None
    assert pack_objects(pack_dir, new + ".pack") == len(versions) + 2
    for name in names:  # only the fold left, as the Consolidator leaves it
        for ext in (".idx", ".pack"):
            os.unlink(pack_file(pack_dir, name, ext))
    listing = git(path, "verify-pack", "-v", os.path.join(pack_dir, new + ".idx"))
    assert "chain length" in listing  # the deltas stayed deltas, on the bases taken first
    repo = pygit2.Repository(path)
    for oid, data in versions.items():
        assert repo[oid].read_raw() == data
    assert repo[pygit2.hash(b"new\n")].read_raw() == b"new\n"
    git(path, "fsck", "--strict")


def test_a_fold_that_fails_leaves_the_packs_as_they_were(tmp_path, caplog):
    path, pack_dir = bare_repo(tmp_path)
    blob = int(pygit2.enums.ObjectType.BLOB)
    for i in range(4):
        data = f"object {i}\n".encode()
        write_pack({pygit2.hash(data): (blob, data)}, pack_dir)
    before = pack_names(path)
    victim = os.path.join(pack_dir, before[0])
    os.chmod(victim, 0o644)
    with open(victim, "r+b") as f:
        f.write(b"JUNK")  # no longer a pack
    assert not Consolidator(path, lambda: None, fan_in=4).run()
    assert pack_names(path) == before
    assert not [n for n in os.listdir(pack_dir) if n.startswith("tmp_")]
    assert "folding the mirror's packs failed" in caplog.text


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    packs=st.lists(
        st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=25, unique=True),
        min_size=2,
        max_size=6,
        unique_by=frozenset,  # two packs alike would be one file
    )
)
def test_fold_packs_of_ours_with_repeats_matches_git(tmp_path_factory, packs):
    """Packs of ours that repeat one another's objects anywhere (first, last, runs): the fold
    holds each object once at an offset git agrees with, and git verifies it."""
    path, pack_dir = bare_repo(tmp_path_factory.mktemp("fold"))
    blob = int(pygit2.enums.ObjectType.BLOB)

    def data(k: int) -> bytes:
        return f"object {k}\n".encode() * (1 + k % 7)

    names = [
        write_pack({pygit2.hash(data(k)): (blob, data(k)) for k in ks}, pack_dir) + ".pack"
        for ks in packs
    ]
    new = fold_packs(pack_dir, names)
    assert new is not None
    unique = {k for ks in packs for k in ks}
    assert pack_objects(pack_dir, new + ".pack") == len(unique)
    for name in names:
        if name != new + ".pack":
            for ext in (".idx", ".pack"):
                os.unlink(pack_file(pack_dir, name, ext))
    git(path, "verify-pack", os.path.join(pack_dir, new + ".idx"))
    repo = pygit2.Repository(path)
    assert all(repo[pygit2.hash(data(k))].read_raw() == data(k) for k in unique)
