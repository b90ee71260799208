"""The mirror store on real bare repositories: trees, the single writer, group commit, races."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asfaload.errors import ConcurrentUpdateError, ConfigError, FormatError, StoreError
from asfaload.rules.tree import Change, DictTree, TreeView
from asfaload.store import INIT_MESSAGE, MAIN, GitTreeView, Mirror, apply_change, diff_trees
from asfaload.store.durable import WriterLock

# Every test here, once for each object store of the writer (conftest.object_store).
pytestmark = pytest.mark.usefixtures("object_store")


def git(repo: str, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def history_messages(repo: str) -> list[str]:
    out = git(repo, "log", "--format=%s", "main")
    return out.splitlines()


def counter_op(tag: str):
    """Read-modify-write of one counter file plus a file unique to this op: lost or doubled
    writes show up as a wrong count or a missing/duplicated file."""

    def op(view: TreeView, now: int) -> Change:
        n = int(view.read("counter") or b"0")
        return Change(f"op {tag}", {"counter": str(n + 1).encode(), f"ops/{tag}": tag.encode()})

    return op


@pytest.fixture
def mirror(tmp_path, object_store):
    m = Mirror.init(str(tmp_path / "mirror.git"))
    assert m.object_store == object_store
    yield m
    m.close()


def test_init_creates_bare_repo_with_root_commit_hooks_and_config(tmp_path):
    path = tmp_path / "m.git"
    with Mirror.init(str(path), clock=lambda: 1_600_000_000) as m:
        repo = pygit2.Repository(str(path))
        assert repo.is_bare
        assert git(str(path), "symbolic-ref", "HEAD").strip() == MAIN
        root = m.commit()
        assert root.parents == []
        assert root.message == INIT_MESSAGE
        assert len(root.tree) == 0
        assert root.commit_time == 1_600_000_000
        for name in ("pre-receive", "post-update"):
            hook = path / "hooks" / name
            assert os.access(hook, os.X_OK)
            assert sys.executable in hook.read_text()
        assert git(str(path), "config", "receive.denyDeletes").strip() == "true"
        assert git(str(path), "config", "receive.denyNonFastForwards").strip() == "true"
        # dumb-HTTP info is there from the start
        assert (path / "info" / "refs").read_text().split() == [m.head(), MAIN]
    with pytest.raises(StoreError):
        Mirror.init(str(path))


def test_the_push_size_is_capped_on_creation_and_on_every_opening(tmp_path, monkeypatch):
    monkeypatch.delenv("ASFALOAD_MAX_PUSH_BYTES", raising=False)
    path = str(tmp_path / "m.git")
    Mirror.init(path).close()
    assert git(path, "config", "receive.maxInputSize").strip() == str(64 * 1024 * 1024)
    # A mirror made without the cap (or under another one) gets the current one when opened.
    git(path, "config", "--unset", "receive.maxInputSize")
    Mirror.open(path).close()
    assert git(path, "config", "receive.maxInputSize").strip() == str(64 * 1024 * 1024)
    monkeypatch.setenv("ASFALOAD_MAX_PUSH_BYTES", "1048576")
    Mirror.open(path).close()
    assert git(path, "config", "receive.maxInputSize").strip() == "1048576"
    for bad in ("0", "-5", "64M", "1e6"):
        monkeypatch.setenv("ASFALOAD_MAX_PUSH_BYTES", bad)
        with pytest.raises(ConfigError, match="ASFALOAD_MAX_PUSH_BYTES"):
            Mirror.open(path)
    assert git(path, "config", "receive.maxInputSize").strip() == "1048576"


def test_a_push_above_the_cap_is_refused_by_git(tmp_path, monkeypatch):
    monkeypatch.setenv("ASFALOAD_MAX_PUSH_BYTES", "4096")
    path = str(tmp_path / "m.git")
    Mirror.init(path).close()
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", path, str(work)], check=True)
    (work / "big.bin").write_bytes(os.urandom(64 * 1024))  # incompressible: a pack above 4 KiB
    for args in (
        ["add", "big.bin"],
        ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        subprocess.run(["git", "-C", str(work), *args], check=True)
    head = Mirror.open(path).head()
    push = subprocess.run(
        ["git", "-C", str(work), "push", "origin", "HEAD:main"], capture_output=True, text=True
    )
    assert push.returncode != 0
    assert "pack exceeds maximum allowed size" in push.stderr, push.stderr
    with Mirror.open(path) as m:
        assert m.head() == head


def test_open_refuses_non_mirrors(tmp_path):
    with pytest.raises(StoreError):
        Mirror.open(str(tmp_path))
    pygit2.init_repository(str(tmp_path / "plain.git"), bare=True)
    with pytest.raises(StoreError):
        Mirror.open(str(tmp_path / "plain.git"))


def test_submit_commits_change_with_committer_time_and_message(tmp_path):
    seen: list[int] = []

    def op(view: TreeView, now: int) -> Change:
        seen.append(now)
        return Change("register https/github.com/443/acme/tool", {"p/a/f.json": b"{}", "p/g": b"1"})

    with Mirror.init(str(tmp_path / "m.git"), clock=lambda: 1_700_000_000) as m:
        res = m.submit(op)
        assert res.commit_id == m.head()
        assert res.change.writes["p/g"] == b"1"
        c = m.commit()
        assert c.message == "register https/github.com/443/acme/tool"
        assert c.commit_time == 1_700_000_000 == seen[0]
        assert c.committer.name == "asfaload" and c.author.email == "asfaload@localhost"
        v = m.view()
        assert v.read("p/a/f.json") == b"{}"
        assert v.read("p/a") is None and v.read("nope") is None and v.read("p/a/f.json/x") is None
        assert v.is_dir("") and v.is_dir("p") and v.is_dir("p/a") and not v.is_dir("p/g")
        assert v.listdir("") == ["p"] and v.listdir("p") == ["a", "g"] and v.listdir("p/g") == []
        # the older commit is still viewable
        assert m.view(str(c.parent_ids[0])).listdir("") == []
        # update-server-info ran after publishing
        assert (tmp_path / "m.git" / "info" / "refs").read_text().split()[0] == m.head()


def test_info_refs_written_by_the_writer_match_git_update_server_info(mirror):
    for tag in ("a", "b", "c"):
        mirror.submit(counter_op(tag))
    info = Path(mirror.path, "info", "refs")
    ours = info.read_text()
    assert ours == f"{mirror.head()}\trefs/heads/main\n"
    git(mirror.path, "update-server-info")
    assert info.read_text() == ours
    # an annotated tag needs a peeled line: the writer leaves that to git itself
    repo = pygit2.Repository(mirror.path)
    sig = pygit2.Signature("t", "t@localhost", 1_700_000_000, 0)
    repo.create_tag("v1", repo.references[MAIN].target, pygit2.enums.ObjectType.COMMIT, sig, "m")
    mirror.submit(counter_op("d"))
    ours = info.read_text()
    assert "\trefs/tags/v1^{}\n" in ours and ours.startswith(mirror.head())
    git(mirror.path, "update-server-info")
    assert info.read_text() == ours


def test_commit_time_never_goes_backwards(tmp_path):
    times = iter([2_000, 1_000])
    with Mirror.init(str(tmp_path / "m.git"), clock=lambda: next(times)) as m:
        m.submit(lambda v, t: Change("x", {"x": b"1"}))
        assert m.commit().commit_time == 2_000


def test_deletions_and_renames_are_in_the_same_commit(mirror):
    mirror.submit(
        lambda v, t: Change(
            "setup",
            {"p/x.signatures.json.pending": b"{}", "p/keep": b"k", "p/d/e/only": b"o"},
        )
    )
    # a rename (pending -> complete) plus the deletion of the only file of a nested dir
    res = mirror.submit(
        lambda v, t: Change(
            "complete p/x",
            {"p/x.signatures.json": v.read("p/x.signatures.json.pending") or b""},
            frozenset({"p/x.signatures.json.pending", "p/d/e/only"}),
        )
    )
    status = git(mirror.path, "show", "--no-renames", "--format=", "--name-status", res.commit_id)
    assert sorted(status.splitlines()) == sorted(
        ["A\tp/x.signatures.json", "D\tp/x.signatures.json.pending", "D\tp/d/e/only"]
    )
    v = mirror.view()
    assert v.listdir("p") == ["keep", "x.signatures.json"]  # empty dirs pruned
    assert not v.is_dir("p/d")
    # deleting everything leaves the empty tree, not an error
    mirror.submit(lambda v, t: Change("wipe", deletes=frozenset({"p/keep", "p/x.signatures.json"})))
    assert mirror.view().listdir("") == []


def test_failing_op_leaves_no_commit_and_reaches_only_its_caller(mirror):
    head = mirror.head()

    def boom(view, now):
        raise FormatError("bad request")

    with pytest.raises(FormatError, match="bad request"):
        mirror.submit(boom)
    assert mirror.head() == head
    # inexact changes are refused by the store itself
    with pytest.raises(StoreError, match="no such file"):
        mirror.submit(lambda v, t: Change("del", deletes=frozenset({"missing"})))
    with pytest.raises(StoreError, match="changes nothing"):
        mirror.submit(lambda v, t: Change("noop"))
    mirror.submit(lambda v, t: Change("f", {"a/b": b"1"}))
    with pytest.raises(StoreError, match="over the file"):
        mirror.submit(lambda v, t: Change("f", {"a/b/c": b"1"}))
    with pytest.raises(StoreError, match="over a directory"):
        mirror.submit(lambda v, t: Change("f", {"a": b"1"}))
    with pytest.raises(StoreError, match="did not return a Change"):
        mirror.submit(lambda v, t: None)  # type: ignore[arg-type,return-value,unused-ignore]
    assert history_messages(mirror.path) == ["f", INIT_MESSAGE]
    assert git(mirror.path, "fsck", "--strict") == ""


def test_batch_is_sequential_published_once_and_isolates_failures(mirror):
    published: list[str] = []
    mirror.add_listener(published.append)

    def fail(view, now):
        raise FormatError("op 3 is bad")

    ops = [counter_op(str(i)) if i != 3 else fail for i in range(8)]
    # Hold the writer lock so the writer blocks on its first batch and the rest queue up: at
    # most two batches for eight operations.
    with WriterLock(mirror.lock_path):
        futures = [mirror.submit_async(op) for op in ops]
    results = []
    for i, fut in enumerate(futures):
        if i == 3:
            with pytest.raises(FormatError):
                fut.result()
        else:
            results.append(fut.result())
    assert len(published) <= 2
    assert published[-1] == mirror.head() == results[-1].commit_id
    assert mirror.view().read("counter") == b"7"
    # each op is its own commit, in submission order, chained
    msgs = history_messages(mirror.path)
    assert msgs == [f"op {i}" for i in (7, 6, 5, 4, 2, 1, 0)] + [INIT_MESSAGE]
    assert len({r.commit_id for r in results}) == 7


def test_sixteen_threads_every_acknowledged_op_exactly_once(mirror):
    acked: list[str] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        for i in range(6):
            tag = f"t{t}-{i}"
            res = mirror.submit(counter_op(tag))
            with lock:
                acked.append(tag)
            assert res.change.message == f"op {tag}"

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    msgs = history_messages(mirror.path)
    assert len(acked) == 96
    assert sorted(msgs[:-1]) == sorted(f"op {tag}" for tag in acked)
    assert mirror.view().read("counter") == b"96"
    assert len(mirror.view().listdir("ops")) == 96
    assert git(mirror.path, "fsck", "--strict") == ""


WORKER = textwrap.dedent(
    """
    import sys, threading
    from asfaload.rules.tree import Change
    from asfaload.store import Mirror

    path, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def op_for(tag):
        def op(view, now):
            c = int(view.read("counter") or b"0")
            return Change("op " + tag, {"counter": str(c + 1).encode(), "ops/" + tag: b"x"})
        return op

    m = Mirror.open(path)
    out = threading.Lock()
    def run(t):
        for i in range(n):
            tag = f"{name}-{t}-{i}"
            res = m.submit(op_for(tag))
            with out:
                print("ACK", tag, res.commit_id, flush=True)
    ts = [threading.Thread(target=run, args=(t,)) for t in range(4)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    m.close()
    """
)


def test_two_processes_and_this_one_write_concurrently(mirror):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, mirror.path, name, "8"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name in ("A", "B")
    ]
    for i in range(8):
        mirror.submit(counter_op(f"main-{i}"))
    acked = [f"main-{i}" for i in range(8)]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0
        acked += [line.split()[1] for line in out.splitlines() if line.startswith("ACK")]
    assert len(acked) == 8 + 2 * 32
    msgs = history_messages(mirror.path)[:-1]
    assert sorted(msgs) == sorted(f"op {tag}" for tag in acked)
    assert mirror.view().read("counter") == str(len(acked)).encode()
    assert git(mirror.path, "fsck", "--strict") == ""


def test_lost_race_revalidates_on_the_new_tip(mirror):
    """A commit lands on main while an op runs (as a `git push` would: no writer lock): the
    compare-and-swap fails and the op is re-run against the new tip."""
    calls: list[bytes | None] = []

    def op(view: TreeView, now: int) -> Change:
        calls.append(view.read("foreign"))
        if len(calls) == 1:
            repo = pygit2.Repository(mirror.path)
            tip = repo.references[MAIN].target
            parent = repo[tip].peel(pygit2.Commit)
            tb = repo.TreeBuilder(parent.tree)
            tb.insert("foreign", repo.create_blob(b"pushed"), pygit2.enums.FileMode.BLOB)
            sig = pygit2.Signature("pusher", "p@example", 1, 0)
            repo.create_commit(MAIN, sig, sig, "pushed", tb.write(), [tip])
        return Change(f"mine saw {view.read('foreign')!r}", {"mine": b"1"})

    res = mirror.submit(op)
    assert calls == [None, b"pushed"]
    assert history_messages(mirror.path) == ["mine saw b'pushed'", "pushed", INIT_MESSAGE]
    assert res.change.message == "mine saw b'pushed'"
    v = mirror.view()
    assert v.read("foreign") == b"pushed" and v.read("mine") == b"1"


def test_endless_races_give_up_without_committing(mirror):
    def op(view: TreeView, now: int) -> Change:
        repo = pygit2.Repository(mirror.path)
        tip = repo.references[MAIN].target
        parent = repo[tip].peel(pygit2.Commit)
        sig = pygit2.Signature("pusher", "p@example", 1, 0)
        repo.create_commit(MAIN, sig, sig, "pushed", parent.tree.id, [tip])
        return Change("mine", {"mine": b"1"})

    with pytest.raises(ConcurrentUpdateError):
        mirror.submit(op)
    assert "mine" not in history_messages(mirror.path)


def test_second_mirror_instance_serialises_with_the_first(tmp_path):
    path = str(tmp_path / "m.git")
    a = Mirror.init(path)
    b = Mirror.open(path)
    try:
        futs = [
            m.submit_async(counter_op(f"{n}{i}"))
            for i in range(10)
            for n, m in (("a", a), ("b", b))
        ]
        for f in futs:
            f.result()
        assert a.view().read("counter") == b"20"
        assert b.head() == a.head()
    finally:
        a.close()
        b.close()


CRASH_WORKER = textwrap.dedent(
    """
    import sys
    from asfaload.rules.tree import Change
    from asfaload.store import Mirror

    # A kill can land inside the ref update and leave refs/heads/main.lock behind; the next
    # writer clears it once it is older than this.
    m = Mirror.open(sys.argv[1], stale_lock_seconds=0.5)
    start = int(sys.argv[2])
    i = start
    while True:
        tag = f"k{i}"
        def op(view, now, tag=tag):
            c = int(view.read("counter") or b"0")
            return Change("op " + tag, {"counter": str(c + 1).encode(), "ops/" + tag: b"x"},
                          frozenset({"ops/k%d" % (i - 3)}) if i - 3 >= start else frozenset())
        futs = [m.submit_async(op)]
        for f in futs:
            f.result()
        print("ACK", tag, flush=True)
        i += 1
    """
)


def test_sigkill_at_random_moments_leaves_old_or_new_state(mirror):
    rnd = random.Random(1234)
    acked: list[str] = []
    for round_ in range(20):
        start = round_ * 100_000
        proc = subprocess.Popen(
            [sys.executable, "-c", CRASH_WORKER, mirror.path, str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        for _ in range(rnd.randint(1, 6)):
            line = proc.stdout.readline()
            assert line.startswith("ACK"), line
            acked.append(line.split()[1])
        proc.send_signal(signal.SIGKILL)
        rest, _ = proc.communicate()
        acked += [x.split()[1] for x in rest.splitlines() if x.startswith("ACK")]
        # The repository opens, is consistent, and holds every acknowledged op.
        reopened = Mirror.open(mirror.path)
        msgs = set(history_messages(mirror.path))
        assert {f"op {t}" for t in acked} <= msgs
        assert reopened.view().read("counter") == str(len(msgs) - 1).encode()
        assert git(mirror.path, "fsck", "--strict", "--no-dangling") == ""
        reopened.close()


# --- trees ------------------------------------------------------------------------------------
paths = st.lists(
    st.sampled_from(["a", "b", "d/a", "d/b", "d/e/f", "d/e/g", "x/y/z/w", "c"]),
    min_size=0,
    max_size=4,
    unique=True,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(st.tuples(paths, paths, st.binary(max_size=3)), max_size=6))
def test_tree_building_matches_the_in_memory_tree(tmp_path_factory, steps):
    repo = pygit2.init_repository(str(tmp_path_factory.mktemp("r") / "r.git"), bare=True)
    model: dict[str, bytes] = {}
    tree: pygit2.Tree | None = None
    for writes, deletes, data in steps:
        # Keep only exact changes: deletes of existing files, writes that don't clash with dirs.
        dels = {p for p in deletes if p in model and p not in writes}
        after = {k: v for k, v in model.items() if k not in dels}
        ws = {}
        for p in writes:
            clash = any(q.startswith(p + "/") for q in after) or any(
                p.startswith(q + "/") for q in after
            )
            if not clash:
                ws[p] = data
                after[p] = data
        change = Change("step", ws, frozenset(dels))
        new_id = apply_change(repo, tree, change)
        new_tree = repo[new_id].peel(pygit2.Tree)
        changed = {pc.path for pc in diff_trees(repo, tree, new_tree)}
        expected_changed = {p for p in set(model) | set(after) if model.get(p) != after.get(p)}
        assert changed == expected_changed
        tree, model = new_tree, after
        view, ref = GitTreeView(repo, tree), DictTree(model)
        for d in ["", "d", "d/e", "x", "x/y", "x/y/z", "a", "nope"]:
            assert view.listdir(d) == ref.listdir(d)
            assert view.is_dir(d) == ref.is_dir(d)
        for p in ["a", "b", "c", "d/a", "d/b", "d/e/f", "d/e/g", "x/y/z/w", "d"]:
            assert view.read(p) == ref.read(p)


def test_stale_ref_lock_left_by_a_killed_writer_is_cleared(tmp_path):
    with Mirror.init(str(tmp_path / "m.git"), stale_lock_seconds=5) as m:
        lock = tmp_path / "m.git" / "refs" / "heads" / "main.lock"
        lock.write_text("0" * 40 + "\n")
        old = lock.stat().st_mtime - 60
        os.utime(lock, (old, old))
        m.submit(lambda v, t: Change("after crash", {"x": b"1"}))
        assert not lock.exists()
        assert history_messages(m.path)[0] == "after crash"
