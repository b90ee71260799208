"""The pending index on a real mirror, with a small hand-made policy (the rules engine's questions
reduced to: a project's ``signers`` file lists who may sign; ``X.signatures.json.pending`` lists
who signed X so far)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from watchdog.events import FileModifiedEvent, FileMovedEvent

from asfaload.rules.tree import Change, TreeView
from asfaload.store import Mirror
from asfaload.store.pending import PendingIndex
from asfaload.store.watch import RefWatcher, _Handler

SUFFIX = ".signatures.json.pending"


class ToyPolicy:
    def __init__(self) -> None:
        self.evaluated: list[str] = []

    def subject_of(self, path: str) -> str | None:
        return path[: -len(SUFFIX)] if path.endswith(SUFFIX) else None

    def missing_signers(self, view: TreeView, subject: str) -> list[str] | None:
        self.evaluated.append(subject)
        raw = view.read(subject + SUFFIX)
        if raw is None:
            return None
        signed = set(json.loads(raw))
        project = subject.split("/")[0]
        allowed = set(json.loads(view.read(project + "/signers") or b"[]"))
        return sorted(allowed - signed)

    def affected_prefixes(self, path: str) -> list[str]:
        if path.endswith("/signers"):
            return [path[: -len("signers")]]
        return []


def op_write(files: dict[str, bytes], deletes: frozenset[str] = frozenset()):
    def op(view: TreeView, now: int) -> Change:
        return Change("test", files, deletes)

    return op


def test_lookups_by_signer_and_subject(mirror, tmp_path):
    mirror.submit(
        op_write(
            {
                "p1/signers": b'["A", "B"]',
                "p1/rel/index.json": b"i",
                "p1/rel/index.json" + SUFFIX: b'["A"]',
                "p2/signers": b'["B", "C"]',
                "p2/x": b"x",
                "p2/x" + SUFFIX: b"[]",
            }
        )
    )
    idx = PendingIndex(mirror.path, str(tmp_path / "private" / "pending.json"), ToyPolicy())
    assert idx.for_signer("A") == []
    assert idx.for_signer("B") == ["p1/rel/index.json", "p2/x"]
    assert idx.for_signer("C") == ["p2/x"]
    assert idx.missing("p1/rel/index.json") == frozenset({"B"})
    assert idx.missing("p2/nothing") is None
    # completion: the pending file goes away, the subject leaves the index
    mirror.submit(
        op_write(
            {"p1/rel/index.json.signatures.json": b"done"},
            frozenset({"p1/rel/index.json" + SUFFIX}),
        )
    )
    assert idx.for_signer("B") == ["p2/x"]
    assert idx.missing("p1/rel/index.json") is None


def test_refresh_evaluates_only_what_the_diff_touches(mirror, tmp_path):
    files = {"p1/signers": b'["A"]', "p2/signers": b'["A"]'}
    for i in range(20):
        files[f"p1/f{i}{SUFFIX}"] = b"[]"
        files[f"p2/f{i}{SUFFIX}"] = b"[]"
    mirror.submit(op_write(files))
    policy = ToyPolicy()
    idx = PendingIndex(mirror.path, str(tmp_path / "pending.json"), policy)
    assert len(idx.for_signer("A")) == 40
    assert len(policy.evaluated) == 40  # the first build sees everything, once
    policy.evaluated.clear()
    idx.refresh()
    assert policy.evaluated == []  # nothing moved, nothing evaluated
    mirror.submit(op_write({f"p1/f3{SUFFIX}": b'["A"]'}))
    assert "p1/f3" not in idx.for_signer("A")
    assert policy.evaluated == ["p1/f3"]
    policy.evaluated.clear()
    # a signers change re-evaluates its project only
    mirror.submit(op_write({"p2/signers": b'["A", "Z"]'}))
    assert len(idx.for_signer("Z")) == 20
    assert sorted(policy.evaluated) == sorted(f"p2/f{i}" for i in range(20))


def test_cache_survives_restart_and_missing_cache_is_rebuilt(mirror, tmp_path):
    cache = tmp_path / "private" / "pending.json"
    mirror.submit(op_write({"p/signers": b'["A"]', "p/x" + SUFFIX: b"[]"}))
    first = PendingIndex(mirror.path, str(cache), ToyPolicy())
    assert first.for_signer("A") == ["p/x"]
    assert json.loads(cache.read_text())["commit"] == mirror.head()
    policy = ToyPolicy()
    second = PendingIndex(mirror.path, str(cache), policy)
    assert second.for_signer("A") == ["p/x"]
    assert policy.evaluated == []  # loaded, not recomputed
    cache.write_text("garbage")
    third = PendingIndex(mirror.path, str(cache), ToyPolicy())
    assert third.for_signer("A") == ["p/x"]
    # a cache naming a commit this repository doesn't have is rebuilt too
    cache.write_text(json.dumps({"version": 1, "commit": "1" * 40, "pending": {"ghost": ["A"]}}))
    fourth = PendingIndex(mirror.path, str(cache), ToyPolicy())
    assert fourth.for_signer("A") == ["p/x"]


def test_cache_is_written_lazily_and_a_stale_cache_catches_up(mirror, tmp_path):
    cache = tmp_path / "pending.json"
    mirror.submit(op_write({"p/signers": b'["A", "B"]', "p/x" + SUFFIX: b"[]"}))
    first = PendingIndex(mirror.path, str(cache), ToyPolicy(), save_interval=3600)
    assert first.for_signer("A") == ["p/x"]
    built_at = mirror.head()
    assert json.loads(cache.read_text())["commit"] == built_at  # a build is saved at once
    mirror.submit(op_write({"p/y" + SUFFIX: b"[]"}))
    mirror.submit(op_write({"p/x" + SUFFIX: b'["A"]'}))
    assert first.for_signer("A") == ["p/y"]
    assert first.for_signer("B") == ["p/x", "p/y"]
    # commits since the build did not rewrite the cache: it still names the built commit ...
    assert json.loads(cache.read_text())["commit"] == built_at
    # ... and a new index on that stale cache catches up from it, evaluating only what changed
    policy = ToyPolicy()
    second = PendingIndex(mirror.path, str(cache), policy, save_interval=3600)
    assert second.for_signer("A") == ["p/y"]
    assert second.for_signer("B") == ["p/x", "p/y"]
    assert sorted(policy.evaluated) == ["p/x", "p/y"]
    # close() leaves the cache current
    first.close()
    data = json.loads(cache.read_text())
    assert data["commit"] == mirror.head()
    assert data["pending"] == {"p/x": ["B"], "p/y": ["A", "B"]}
    # with no interval every refresh that moved is saved
    eager = PendingIndex(mirror.path, str(cache), ToyPolicy(), save_interval=0)
    mirror.submit(op_write({"p/z" + SUFFIX: b"[]"}))
    assert eager.for_signer("A") == ["p/y", "p/z"]
    assert json.loads(cache.read_text())["commit"] == mirror.head()


def test_a_policy_error_does_not_break_the_index(mirror, tmp_path):
    class Fragile(ToyPolicy):
        def missing_signers(self, view, subject):
            if subject == "p/bad":
                raise ValueError("malformed")
            return super().missing_signers(view, subject)

    mirror.submit(op_write({"p/signers": b'["A"]', "p/bad" + SUFFIX: b"[", "p/ok" + SUFFIX: b"[]"}))
    idx = PendingIndex(mirror.path, str(tmp_path / "c.json"), Fragile())
    assert idx.for_signer("A") == ["p/ok"]
    assert idx.missing("p/bad") == frozenset()


# --- incremental == from scratch ------------------------------------------------------------------
SUBJECTS = ["p1/a", "p1/d/b", "p2/c", "p2/e/f/g"]
KEYS = ["A", "B", "C"]
step: st.SearchStrategy[tuple[str, str, set[str]]] = st.one_of(
    st.tuples(st.just("signers"), st.sampled_from(["p1", "p2"]), st.sets(st.sampled_from(KEYS))),
    st.tuples(st.just("open"), st.sampled_from(SUBJECTS), st.just(set())),
    st.tuples(st.just("sign"), st.sampled_from(SUBJECTS), st.sets(st.sampled_from(KEYS))),
    st.tuples(st.just("complete"), st.sampled_from(SUBJECTS), st.just(set())),
    st.tuples(st.just("drop-signers"), st.sampled_from(["p1", "p2"]), st.just(set())),
)


def toy_op(kind: str, target: str, keys: set[str]):
    def op(view: TreeView, now: int) -> Change:
        if kind in ("signers", "drop-signers"):
            path = target + "/signers"
            if kind == "drop-signers":
                return Change("drop", deletes=frozenset({path}) if view.read(path) else frozenset())
            return Change("signers", {path: json.dumps(sorted(keys)).encode()})
        pending = target + SUFFIX
        cur = view.read(pending)
        if kind == "open":
            return Change("open", {pending: b"[]"}) if cur is None else Change("noop")
        if cur is None:
            return Change("noop")
        if kind == "sign":
            signed = sorted(set(json.loads(cur)) | keys)
            return Change("sign", {pending: json.dumps(signed).encode()})
        return Change("complete", {target + ".signatures.json": cur}, frozenset({pending}))

    return op


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(step, min_size=1, max_size=12), refresh_every=st.integers(1, 4))
@example(steps=[("open", "p1/a", set()), ("signers", "p1", {"A"})], refresh_every=1)
def test_incremental_index_equals_a_rebuild(tmp_path_factory, steps, refresh_every):
    base = tmp_path_factory.mktemp("pending")
    with Mirror.init(str(base / "m.git"), durable=False, server_info=False) as m:
        idx = PendingIndex(m.path, str(base / "inc.json"), ToyPolicy())
        for i, (kind, target, keys) in enumerate(steps):
            try:
                m.submit(toy_op(kind, target, keys))
            except Exception as e:  # "noop" changes are refused by the store: fine here
                assert "changes nothing" in str(e)
            if i % refresh_every == 0:
                idx.refresh()
        idx.refresh()
        fresh = PendingIndex(m.path, str(base / f"fresh{len(steps)}.json"), ToyPolicy())
        fresh.rebuild()
        assert idx.snapshot() == fresh.snapshot()
        for key in KEYS:
            assert idx.for_signer(key) == fresh.for_signer(key)


# --- watchdog --------------------------------------------------------------------------------
def test_ref_watcher_sees_commits_from_another_process_and_pack_refs(mirror):
    fired = threading.Event()
    with RefWatcher(mirror.path, fired.set):
        script = textwrap.dedent(
            """
            import sys
            from asfaload.rules.tree import Change
            from asfaload.store import Mirror
            with Mirror.open(sys.argv[1]) as m:
                m.submit(lambda v, t: Change("from elsewhere", {"x": b"1"}))
            """
        )
        subprocess.run([sys.executable, "-c", script, mirror.path], check=True)
        assert fired.wait(30)
        fired.clear()
        subprocess.run(["git", "pack-refs", "--all"], cwd=mirror.path, check=True)
        assert fired.wait(30)


def test_ref_watcher_filter_ignores_unrelated_files(tmp_path):
    hits: list[str] = []
    root = str(tmp_path)
    h = _Handler(
        frozenset({root + "/refs/heads/main", root + "/packed-refs"}), lambda: hits.append("x")
    )
    h.on_any_event(FileModifiedEvent(root + "/description"))
    h.on_any_event(FileModifiedEvent(root + "/refs/heads/other"))
    h.on_any_event(FileMovedEvent(root + "/refs/heads/main.lock", root + "/refs/heads/other"))
    assert hits == []
    h.on_any_event(FileMovedEvent(root + "/refs/heads/main.lock", root + "/refs/heads/main"))
    h.on_any_event(FileModifiedEvent(root + "/packed-refs"))
    assert hits == ["x", "x"]


# --- the real policy: incremental index == rebuilt index over a whole workflow -------------------
def test_rules_policy_incremental_index_matches_rebuild_through_a_workflow(tmp_path):
    """Every rules-derived transition (registration, activation, release, signers update that
    changes the release's signers, revocation) keeps the incrementally maintained index equal to
    one rebuilt from scratch: the policy names every subject a change can affect."""
    import time

    from asfaload.crypto import sha512
    from asfaload.model.revocation import RevocationDocument
    from asfaload.rules import ProposeUpdate, Register, RegisterRelease, Revoke
    from asfaload.service.pending import RulesPendingPolicy
    from tests.support.rules import (
        INDEX,
        PENDING_SF,
        T0,
        P,
        index_bytes,
        keys,
        metadata_bytes,
        pk,
        sig,
        sign_op,
        signers_bytes,
    )

    a, b, c, ad, r1 = keys(5)
    m = Mirror.init(str(tmp_path / "m.git"), durable=False, server_info=False)
    idx = PendingIndex(m.path, str(tmp_path / "inc.json"), RulesPendingPolicy())
    rebuilt: list[int] = []

    def check() -> dict[str, frozenset[str]]:
        idx.refresh()
        fresh = PendingIndex(
            m.path, str(tmp_path / f"fresh{len(rebuilt)}.json"), RulesPendingPolicy()
        )
        fresh.refresh()
        rebuilt.append(1)
        assert idx.snapshot() == fresh.snapshot()
        return idx.snapshot()[1]

    def sign(subject: str, sk) -> None:
        m.submit(lambda view, now: sign_op(view, subject, sk)(view, now))

    try:
        raw = signers_bytes([([a, b], 2)], admin=[([ad], 1)], revocation=[([r1], 1)])
        m.submit(Register(P, raw, metadata_bytes(raw), pk(ad)))
        assert check()[PENDING_SF] == frozenset(str(pk(k)) for k in (a, b, ad, r1))
        for sk in (a, b, ad, r1):
            sign(PENDING_SF, sk)
            check()
        assert PENDING_SF not in check()
        m.submit(RegisterRelease(INDEX, index_bytes(), pk(a)))
        sign(INDEX, a)
        assert check()[INDEX] == frozenset({str(pk(b))})
        # An update that replaces b by c as artifact signer: once active, c (not b) is missing.
        new = signers_bytes(
            [([a, c], 2)], admin=[([ad], 1)], revocation=[([r1], 1)], timestamp=T0 + 10
        )
        m.submit(ProposeUpdate(P, new, metadata_bytes(new), pk(ad)))
        check()
        for sk in (ad, c):
            sign(PENDING_SF, sk)
            check()
        assert PENDING_SF not in check()
        assert check()[INDEX] == frozenset({str(pk(c))})
        sign(INDEX, c)
        assert INDEX not in check()
        data = m.view().read(INDEX)
        assert data is not None
        doc = RevocationDocument.create(sha512(data), pk(r1), int(time.time()) - 1).to_bytes()
        m.submit(Revoke(INDEX, doc, sig(r1, doc), pk(r1)))
        assert check() == {}
    finally:
        m.close()
