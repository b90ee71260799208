"""The pre-receive hook with real `git clone` + `git push` into a real bare mirror.

The server side (registration, release) is written through the store; signers then push their
signatures and revocations, built the way a client would: apply the rules to the clone's tip
and commit the exact change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable

import pygit2
import pytest
from pygit2.enums import FileMode

from asfaload import layout
from asfaload.crypto import SecretKey, sha512
from asfaload.model.revocation import RevocationDocument
from asfaload.replication.replay import verify_repository
from asfaload.rules import (
    FileStatus,
    Register,
    RegisterRelease,
    Revoke,
    apply,
    file_status,
)
from asfaload.rules.ops import Op
from asfaload.rules.tree import Change, TreeView
from asfaload.service.pending import RulesPendingPolicy
from asfaload.store import MAIN, Mirror, apply_change
from asfaload.store.pending import PendingIndex
from tests.support.git import plant_empty_tree
from tests.support.rules import (
    ACTIVE_SF,
    INDEX,
    PENDING_SF,
    P,
    index_bytes,
    keys,
    metadata_bytes,
    pk,
    sig,
    sign_op,
    signers_bytes,
)


def git(cwd, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, check=check, capture_output=True, text=True)


class Clone:
    """A signer's clone of the mirror; commits are built with pygit2 and pushed with git."""

    def __init__(self, mirror: Mirror, path) -> None:
        git(path.parent, "clone", "-q", mirror.path, str(path))
        self.path = str(path)
        self.repo = pygit2.Repository(self.path)

    def sync(self) -> None:
        git(self.path, "fetch", "-q", "origin")
        self.reset()

    def reset(self) -> None:
        """Drop local commits (after a rejected push): main back to the last fetched tip."""
        remote = self.repo.references["refs/remotes/origin/main"].target
        self.repo.references[MAIN].set_target(remote)

    def tip(self) -> pygit2.Commit:
        return self.repo.revparse_single("refs/heads/main").peel(pygit2.Commit)

    def view(self) -> TreeView:
        from asfaload.store import GitTreeView

        return GitTreeView(self.repo, self.tip().tree)

    def commit_change(
        self, change: Change, message: str | None = None, when: int | None = None
    ) -> str:
        tip = self.tip()
        tree = apply_change(self.repo, tip.tree, change)
        return self.commit_tree(tree, message or change.message, when)

    def commit_tree(self, tree, message: str, when: int | None = None) -> str:
        tip = self.tip()
        t = when if when is not None else max(int(time.time()), tip.commit_time)
        s = pygit2.Signature("signer", "signer@example.org", t, 0)
        return str(self.repo.create_commit(MAIN, s, s, message, tree, [tip.id]))

    def commit_op(self, make: Callable[[TreeView], Op]) -> str:
        t = max(int(time.time()), self.tip().commit_time)
        view = self.view()
        return self.commit_change(apply(view, make(view), t), when=t)

    def sign(self, subject: str, sk: SecretKey) -> str:
        return self.commit_op(lambda v: sign_op(v, subject, sk))

    def push(self, *refspec: str) -> subprocess.CompletedProcess[str]:
        return git(self.path, "push", "origin", *(refspec or ("main",)), check=False)


def rejected_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode != 0, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("remote: ")]
    assert len(lines) == 1, res.stderr
    return lines[0]


@pytest.fixture
def mirror_and_clone(tmp_path):
    """A mirror with project P registered (pending, nobody signed yet) and a signer's clone."""
    a, b, ad, r1, r2 = keys(5)
    raw = signers_bytes([([a, b], 2)], admin=[([ad], 1)], revocation=[([r1, r2], 2)])
    # durable=False: durability is the store tests' business; here every push counts.
    m = Mirror.init(str(tmp_path / "mirror.git"), durable=False)
    m.submit(Register(P, raw, metadata_bytes(raw), pk(ad)))
    clone = Clone(m, tmp_path / "clone")
    yield m, clone, dict(a=a, b=b, ad=ad, r1=r1, r2=r2)
    m.close()


def activate_by_push(
    m: Mirror, clone: Clone, k: dict[str, SecretKey], *, one_by_one: bool = False
) -> None:
    """Every key signs the pending signers file; the last signature activates it."""
    for name in ("a", "b", "ad", "r1", "r2"):
        clone.sign(PENDING_SF, k[name])
        if one_by_one:
            res = clone.push()
            assert res.returncode == 0, res.stderr
    res = clone.push()
    assert res.returncode == 0, res.stderr
    assert m.view().read(ACTIVE_SF) is not None
    assert not m.view().is_dir(layout.signers_dir(P, pending=True))


def released(m: Mirror, clone: Clone, k: dict[str, SecretKey]) -> None:
    activate_by_push(m, clone, k)
    m.submit(RegisterRelease(INDEX, index_bytes(), pk(k["a"])))
    clone.sync()


# --- accepted pushes --------------------------------------------------------------------------
def test_signers_activation_and_artifact_signing_by_push(mirror_and_clone, tmp_path):
    m, clone, k = mirror_and_clone
    pending = PendingIndex(m.path, str(tmp_path / "private" / "pending.json"), RulesPendingPolicy())
    assert str(pk(k["r2"])) in (pending.missing(PENDING_SF) or ())
    activate_by_push(m, clone, k, one_by_one=True)  # the fifth push activates the signers file
    assert pending.missing(PENDING_SF) is None
    last = m.commit()
    assert last.message.startswith(f"sign {PENDING_SF} by ") and "activate signers" in last.message
    m.submit(RegisterRelease(INDEX, index_bytes(), pk(k["a"])))
    assert pending.for_signer(str(pk(k["a"]))) == [INDEX]
    clone.sync()
    # two signatures in ONE push, the second completes the release index
    clone.commit_op(lambda v: sign_op(v, INDEX, k["a"]))
    first = str(clone.tip().id)
    clone.commit_op(lambda v: sign_op(v, INDEX, k["b"]))
    res = clone.push()
    assert res.returncode == 0, res.stderr
    assert m.head() == str(clone.tip().id)
    assert m.commit().parents[0].id == pygit2.Oid(hex=first)
    assert file_status(m.view(), INDEX) is FileStatus.COMPLETE
    assert m.view().read(layout.local_signers_path(INDEX)) == m.view().read(ACTIVE_SF)
    assert pending.for_signer(str(pk(k["b"]))) == []
    # post-update refreshed the dumb-HTTP info
    info = (tmp_path / "mirror.git" / "info" / "refs").read_text().split()
    assert info == [m.head(), MAIN]
    assert git(m.path, "fsck", "--strict").stdout == ""
    report = verify_repository(m.path)
    assert report.ok, report.bad


def revoke_op(view: TreeView, sk: SecretKey) -> Revoke:
    data = view.read(INDEX)
    assert data is not None
    doc = RevocationDocument.create(
        sha512(data), pk(sk), int(time.time()), reason="leak"
    ).to_bytes()
    return Revoke(INDEX, doc, sig(sk, doc), pk(sk))


def test_revocation_initiated_and_cosigned_by_push(mirror_and_clone):
    m, clone, k = mirror_and_clone
    released(m, clone, k)
    for name in ("a", "b"):
        clone.commit_op(lambda v, sk=k[name]: sign_op(v, INDEX, sk))
    clone.commit_op(lambda v: revoke_op(v, k["r1"]))
    res = clone.push()
    assert res.returncode == 0, res.stderr
    prev = layout.pending_revocation_path(INDEX)
    assert m.view().read(prev) is not None
    clone.commit_op(lambda v: sign_op(v, prev, k["r2"]))
    res = clone.push()
    assert res.returncode == 0, res.stderr
    assert file_status(m.view(), INDEX) is FileStatus.REVOKED
    assert verify_repository(m.path).ok


# --- rejected pushes ----------------------------------------------------------------------------
def test_edits_not_derived_by_the_rules_are_rejected_and_discarded(mirror_and_clone):
    m, clone, k = mirror_and_clone
    head = m.head()
    sf_sigs = layout.pending_signatures_path(PENDING_SF)
    bad = clone.commit_change(Change("tamper", {PENDING_SF: b"{}"}))
    line = rejected_line(clone.push())
    assert "Push does not match any allowed operation" in line
    assert line.startswith("remote: asfaload: push rejected: commit ")
    assert m.head() == head
    assert git(m.path, "cat-file", "-e", bad, check=False).returncode != 0  # quarantine dropped
    # a valid signature plus one extra edit
    clone.reset()
    view = clone.view()
    change = apply(view, sign_op(view, PENDING_SF, k["a"]), int(time.time()))
    clone.commit_change(change.then(Change("x", {f"{P}/extra.txt": b"x"}), change.message))
    assert f"{P}/extra.txt differs from what the rules derive (the commit changes it" in (
        rejected_line(clone.push())
    )
    # a valid signature with a rewritten envelope (someone else's entry dropped is not derivable)
    clone.reset()
    clone.commit_op(lambda v: sign_op(v, PENDING_SF, k["a"]))
    assert clone.push().returncode == 0
    view = clone.view()
    change = apply(view, sign_op(view, PENDING_SF, k["b"]), int(time.time()))
    writes = dict(change.writes)
    writes[sf_sigs] = b'{"entries": {}}'
    clone.commit_change(Change(change.message, writes, change.deletes))
    assert "exactly one new signature expected" in rejected_line(clone.push())
    # the right change under any message: the message is not state
    clone.reset()
    view = clone.view()
    change = apply(view, sign_op(view, PENDING_SF, k["b"]), int(time.time()))
    clone.commit_change(change, message="hello")
    assert clone.push().returncode == 0
    assert m.head() == str(clone.tip().id)
    assert git(m.path, "fsck", "--strict").stdout == ""


def test_refusals_of_hand_made_signature_commits_say_what_to_fix(mirror_and_clone):
    """What a signer using plain git gets wrong most: the right entry written in other JSON
    formatting, and the last signature added without completing the request."""
    m, clone, k = mirror_and_clone
    sf_sigs = layout.pending_signatures_path(PENDING_SF)
    view = clone.view()
    t = int(time.time())
    change = apply(view, sign_op(view, PENDING_SF, k["a"]), t)
    compact = json.dumps(json.loads(change.writes[sf_sigs]), separators=(",", ":")).encode()
    clone.commit_change(Change("a", {**change.writes, sf_sigs: compact}, change.deletes), when=t)
    line = rejected_line(clone.push())
    assert f"{sf_sigs} differs from what the rules derive: the same JSON, formatted otherwise" in (
        line
    )
    clone.reset()
    released(m, clone, k)
    clone.sign(INDEX, k["a"])
    assert clone.push().returncode == 0
    # b's entry added to the pending envelope, as for any other signature: but it is the last.
    index_sigs = layout.pending_signatures_path(INDEX)
    view = clone.view()
    t = max(int(time.time()), clone.tip().commit_time)
    completing = apply(view, sign_op(view, INDEX, k["b"]), t)
    assert index_sigs in completing.deletes
    envelope = json.loads(view.read(index_sigs) or b"")
    envelope["entries"] = json.loads(completing.writes[layout.signatures_path(INDEX)])["entries"]
    handmade = (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode()
    head = m.head()
    clone.commit_change(Change("b signs", {index_sigs: handmade}), when=t)
    line = rejected_line(clone.push())
    assert "this signature completes the request" in line and "docs/git.md" in line, line
    assert m.head() == head


@pytest.mark.parametrize(
    "planted",
    [
        "https/github.com/443/acme/other",  # an unregistered project's id
        f"{P}/asfaload.signers/x/y/z",  # nested empty trees
        layout.revocation_path(INDEX),  # a revocation path
        "tuf",
    ],
)
def test_valid_signature_with_a_planted_empty_directory_is_rejected(mirror_and_clone, planted):
    m, clone, k = mirror_and_clone
    head = m.head()
    view = clone.view()
    change = apply(view, sign_op(view, PENDING_SF, k["a"]), int(time.time()))
    tip = clone.tip()
    tree = plant_empty_tree(clone.repo, apply_change(clone.repo, tip.tree, change), planted)
    clone.commit_tree(tree, "sign")
    line = rejected_line(clone.push())
    assert "is not the tree the rules derive" in line and "empty directories" in line, line
    assert repr(planted) in line
    assert m.head() == head
    # The same signature without the planted directory is accepted.
    clone.reset()
    clone.commit_change(change)
    assert clone.push().returncode == 0


def test_planted_pending_signers_directory_is_rejected_after_activation(mirror_and_clone):
    m, clone, k = mirror_and_clone
    activate_by_push(m, clone, k)
    m.submit(RegisterRelease(INDEX, index_bytes(), pk(k["a"])))
    clone.repo.remotes["origin"].fetch()
    clone.reset()
    head = m.head()
    pending_dir = layout.signers_dir(P, pending=True)
    view = clone.view()
    change = apply(view, sign_op(view, INDEX, k["a"]), int(time.time()))
    tip = clone.tip()
    tree = plant_empty_tree(clone.repo, apply_change(clone.repo, tip.tree, change), pending_dir)
    clone.commit_tree(tree, "sign")
    assert repr(pending_dir) in rejected_line(clone.push())
    assert m.head() == head


def test_registration_and_release_by_push_are_rejected(mirror_and_clone):
    m, clone, k = mirror_and_clone
    other = "https/github.com/443/acme/other"
    raw = signers_bytes([([k["a"]], 1)])
    clone.commit_op(lambda v: Register(other, raw, metadata_bytes(raw), pk(k["a"])))
    assert "Push does not match any allowed operation" in rejected_line(clone.push())
    clone.reset()
    activate_by_push(m, clone, k)
    clone.commit_op(lambda v: RegisterRelease(INDEX, index_bytes(), pk(k["a"])))
    assert "Push does not match any allowed operation" in rejected_line(clone.push())


def test_signature_by_a_non_signer_is_refused_by_the_rules(mirror_and_clone):
    m, clone, k = mirror_and_clone
    (stranger,) = keys(1)
    view = clone.view()
    good = sign_op(view, PENDING_SF, k["a"])
    forged = type(good)(
        PENDING_SF, pk(stranger), {f: sig(stranger, view.read(f) or b"") for f in good.signatures}
    )
    # built by hand: the rules would refuse to derive it, so write the envelopes directly
    from asfaload.model import SignaturesFile

    writes = {
        layout.pending_signatures_path(f): SignaturesFile.empty()
        .with_entry(pk(stranger), s)
        .to_bytes()
        for f, s in forged.signatures.items()
    }
    clone.commit_change(Change(f"sign {PENDING_SF} by {pk(stranger)}", writes))
    line = rejected_line(clone.push())
    assert "refused by the rules: Public key is not an authorized signer" in line


def test_other_refs_force_push_and_deletion_are_rejected(mirror_and_clone):
    m, clone, k = mirror_and_clone
    clone.commit_op(lambda v: sign_op(v, PENDING_SF, k["a"]))
    assert "only refs/heads/main can be pushed" in rejected_line(
        clone.push("main:refs/heads/other")
    )
    assert "only refs/heads/main can be pushed" in rejected_line(clone.push("main:refs/tags/v1"))
    assert clone.push().returncode == 0
    # rewrite: a commit on the parent of the tip, force-pushed
    tip = clone.tip()
    s = pygit2.Signature("signer", "signer@example.org", int(time.time()), 0)
    parent = tip.parents[0]
    clone.repo.references[MAIN].set_target(
        clone.repo.create_commit(None, s, s, "rewrite", tip.tree.id, [parent.id])
    )
    assert "non-fast-forward" in rejected_line(clone.push("--force", "main"))
    assert "deleting refs/heads/main is not allowed" in rejected_line(clone.push(":main"))
    assert m.head() == str(tip.id)


def test_symlinks_submodules_executables_and_oversize_files_are_rejected(mirror_and_clone):
    m, clone, k = mirror_and_clone
    repo = clone.repo

    def push_entry(name: str, oid, mode) -> str:
        clone.reset()
        tb = repo.TreeBuilder(clone.tip().tree)
        tb.insert(name, oid, mode)
        clone.commit_tree(tb.write(), "x")
        return rejected_line(clone.push())

    blob = repo.create_blob(b"target")
    assert "symlinks are not allowed: evil" in push_entry("evil", blob, FileMode.LINK)
    assert "only regular non-executable files" in push_entry(
        "run.sh", blob, FileMode.BLOB_EXECUTABLE
    )
    sub = clone.tip().id
    assert "submodules are not allowed: sub" in push_entry("sub", sub, FileMode.COMMIT)
    git(m.path, "config", "asfaload.maxFileSize", "100")
    big = repo.create_blob(b"x" * 101)
    assert "big is 101 bytes, over the 100-byte limit" in push_entry("big", big, FileMode.BLOB)
    assert "invalid path '.hidden'" in push_entry(".hidden", blob, FileMode.BLOB)


def test_a_commit_with_a_huge_message_is_refused(mirror_and_clone):
    """The message is not state, but it stays in every clone for good: a signer's commit is
    small, one that is not is refused whatever it signs."""
    m, clone, k = mirror_and_clone
    head = m.head()
    view = clone.view()
    t = max(int(time.time()), clone.tip().commit_time)
    change = apply(view, sign_op(view, PENDING_SF, k["a"]), t)
    clone.commit_change(change, message="x" * (100 * 1024), when=t)
    line = rejected_line(clone.push())
    assert "the commit object is" in line and "over the 65536-byte limit" in line, line
    assert m.head() == head
    clone.reset()
    clone.commit_change(change, message="signed, " + "y" * 1000, when=t)
    assert clone.push().returncode == 0


def test_committer_time_must_not_go_backwards_or_into_the_future(mirror_and_clone):
    m, clone, k = mirror_and_clone
    view = clone.view()
    tip_time = clone.tip().commit_time
    change = apply(view, sign_op(view, PENDING_SF, k["a"]), tip_time - 10)
    clone.commit_change(change, when=tip_time - 10)
    assert "committer time is earlier than its parent's" in rejected_line(clone.push())
    clone.reset()
    future = int(time.time()) + 3600
    change = apply(view, sign_op(view, PENDING_SF, k["a"]), future)
    clone.commit_change(change, when=future)
    assert "committer time is in the future" in rejected_line(clone.push())


def test_writer_loses_race_to_a_push_and_revalidates(mirror_and_clone):
    """A `git push` lands while the server's writer is applying an op: the writer's
    compare-and-swap fails, and the op re-runs on the pushed tip."""
    m, clone, k = mirror_and_clone
    clone.commit_op(lambda v: sign_op(v, PENDING_SF, k["a"]))
    seen: list[bool] = []

    def server_op(view: TreeView, now: int) -> Change:
        envelope = view.read(layout.pending_signatures_path(PENDING_SF)) or b""
        seen.append(str(pk(k["a"])).encode() in envelope)
        if len(seen) == 1:
            res = clone.push()
            assert res.returncode == 0, res.stderr
        return sign_op(view, PENDING_SF, k["b"])(view, now)

    res = m.submit(server_op)
    assert seen == [False, True]
    log = git(m.path, "log", "--format=%s", "-3").stdout.splitlines()
    assert log[0] == res.change.message and str(pk(k["b"])) in log[0]
    assert str(pk(k["a"])) in log[1]


def test_hook_entry_point_rejects_garbage_stdin(mirror_and_clone):
    m, clone, k = mirror_and_clone
    env = dict(os.environ, GIT_DIR=m.path)
    out = subprocess.run(
        [sys.executable, "-m", "asfaload.hooks", "pre-receive"],
        input="not a ref update\n",
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert out.stderr.strip() == "asfaload: push rejected: malformed ref update from git"


def test_thin_hook_scripts_of_the_source_tree_work_when_installed(mirror_and_clone):
    m, clone, k = mirror_and_clone
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in ("pre-receive", "post-update"):
        target = os.path.join(m.path, "hooks", name)
        with open(os.path.join(root, "hooks", name), "rb") as src, open(target, "wb") as dst:
            dst.write(src.read())
        os.chmod(target, 0o755)
    env = dict(os.environ, ASFALOAD_PYTHON=sys.executable)
    clone.commit_change(Change("tamper", {PENDING_SF: b"{}"}))
    res = subprocess.run(
        ["git", "push", "origin", "main"], cwd=clone.path, env=env, capture_output=True, text=True
    )
    assert "remote: asfaload: push rejected:" in rejected_line(res)
    clone.reset()
    clone.sign(PENDING_SF, k["a"])
    res = subprocess.run(
        ["git", "push", "origin", "main"], cwd=clone.path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert m.head() == str(clone.tip().id)
