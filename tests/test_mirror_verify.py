"""`asfaload mirror verify`: replaying a real mirror's history through the rules engine.

Histories are written by the real store (`Mirror.submit`) with real operations and real keys;
forged commits are made with pygit2 directly, as an attacker with write access to the repository
(or a buggy writer) would.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pygit2
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from pygit2.enums import FileMode

from asfaload import layout
from asfaload.crypto import SecretKey, sha512
from asfaload.model import SignaturesFile
from asfaload.model.revocation import RevocationDocument
from asfaload.replication.replay import tree_diff, verify_range, verify_repository
from asfaload.rules import ProposeUpdate, Register, RegisterRelease, Revoke
from asfaload.rules.tree import Change
from asfaload.store import MAIN, Mirror, apply_change, diff_trees
from cli.main import cli
from tests.support.git import plant_empty_tree
from tests.support.mirror import Keys, forge_commit, index_bytes, lifecycle, release_path
from tests.support.rules import (
    ACTIVE_SF,
    PENDING_SF,
    T0,
    P,
    metadata_bytes,
    pk,
    sig,
    sign_op,
)

ROOT = Path(__file__).resolve().parent.parent
ASFALOAD = str(ROOT / ".venv" / "bin" / "asfaload")


@pytest.fixture
def full(mirror: Mirror) -> Mirror:
    lifecycle(mirror, Keys())
    return mirror


def run_verify(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["mirror", "verify", *args])
    if "--json" in args:
        # The report is stdout's one object; a failure adds one error object on stderr.
        if res.exit_code == 1:
            assert set(json.loads(res.stderr)) == {"error"}, res.stderr
        return res.exit_code, res.stdout
    return res.exit_code, res.output


# --- good histories ----------------------------------------------------------------------------------
def test_full_lifecycle_replays_with_every_operation_kind(full: Mirror) -> None:
    report = verify_repository(full.path)
    assert report.ok, report.bad
    assert report.head == full.head()
    log = subprocess.run(
        ["git", "log", "--format=%s"], cwd=full.path, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert report.checked == len(log) == 17
    # every kind of operation really is in the replayed history
    text = "\n".join(log)
    for needle in ("register ", "register release", "activate signers", "complete ", "revoke "):
        assert needle in text
    assert "propose signers update" in text


def test_minisign_keys_replay_too(mirror: Mirror) -> None:
    lifecycle(mirror, Keys("minisign"))
    assert verify_repository(mirror.path).ok


def test_fresh_mirror_verifies(mirror: Mirror) -> None:
    report = verify_repository(mirror.path)
    assert report.ok and report.checked == 1


def test_cli_forms_and_json(full: Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = str(tmp_path / "data")
    code, out = run_verify("--data-dir", data_dir)
    assert code == 0 and out.startswith("OK: 17 commits"), out
    assert run_verify(full.path)[0] == 0
    assert run_verify(data_dir)[0] == 0
    assert run_verify("--repo", full.path)[0] == 0
    monkeypatch.setenv("ASFALOAD_DATA_DIR", data_dir)
    assert run_verify()[0] == 0
    code, out = run_verify("--repo", full.path, "--json")
    assert code == 0
    assert json.loads(out) == {
        "success": True,
        "head": full.head(),
        "commits_verified": 17,
        "first_bad_commit": None,
    }
    code, out = run_verify("--repo", full.path, "--data-dir", data_dir)
    assert code == 2 and "only one" in out


def test_cli_refuses_what_is_not_a_mirror(tmp_path: Path) -> None:
    code, out = run_verify("--repo", str(tmp_path))
    assert code == 1 and "Not a git repository" in out


def test_installed_console_script(full: Mirror) -> None:
    ok = subprocess.run([ASFALOAD, "mirror", "verify", "--repo", full.path], capture_output=True)
    assert ok.returncode == 0, ok.stderr
    forge_commit(full, Change("tamper", {"evil.txt": b"x"}))
    bad = subprocess.run(
        [ASFALOAD, "mirror", "verify", "--repo", full.path], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert "FAILED: commit" in bad.stdout and "evil.txt" in bad.stdout


def test_mirror_init_command(tmp_path: Path) -> None:
    target = tmp_path / "new.git"
    res = CliRunner().invoke(cli, ["mirror", "init", str(target)])
    assert res.exit_code == 0, res.output
    assert (target / "hooks" / "pre-receive").is_file()
    assert run_verify(str(target))[0] == 0
    again = CliRunner().invoke(cli, ["mirror", "init", str(target)])
    assert again.exit_code == 1


# --- bad histories: the first bad commit is reported, exit 1 ------------------------------------------
def _bad(m: Mirror, bad_commit: str, reason_part: str) -> None:
    report = verify_repository(m.path)
    assert report.bad is not None, "the forged commit must be caught"
    assert report.bad.commit == bad_commit
    assert reason_part in report.bad.reason, report.bad.reason
    code, out = run_verify("--repo", m.path, "--json")
    assert code == 1
    data = json.loads(out)
    assert data["success"] is False and data["first_bad_commit"]["commit"] == bad_commit


def test_extra_file_beside_a_real_operation(mirror: Mirror) -> None:
    w = Keys()
    lifecycle(mirror, w)
    good = RegisterRelease(release_path("v4.0"), index_bytes("v4.0"), pk(w.k["a"]))
    change = good(mirror.view(), int(time.time()))
    bad = forge_commit(mirror, Change(change.message, {**change.writes, "README": b"hi"}))
    _bad(
        mirror,
        bad,
        "README differs from what the rules derive (the commit changes it, the rules do not)",
    )


def test_first_bad_commit_is_reported_even_when_later_ones_are_fine(mirror: Mirror) -> None:
    w = Keys()
    lifecycle(mirror, w)
    bad = forge_commit(mirror, Change("x", {"README": b"hello"}))
    mirror.submit(RegisterRelease(release_path("v9.0"), index_bytes("v9.0"), pk(w.k["a"])))
    _bad(mirror, bad, "README")
    report = verify_repository(mirror.path)
    assert report.checked == 17 and report.bad is not None and report.bad.position == 17


def test_a_huge_file_is_refused_before_it_is_inflated(mirror: Mirror) -> None:
    """A hostile upstream's blob may be gigabytes that a few KiB of pack describe: its size is
    read from the object's header and refused before its content is read."""
    from asfaload.replication.commits import REPLAY_FILE_CAP

    size = REPLAY_FILE_CAP + 1
    bad = forge_commit(mirror, Change("x", {"big.bin": b"\0" * size}))
    report = verify_repository(mirror.path)
    assert report.bad is not None and report.bad.commit == bad
    assert f"big.bin is {size} bytes, over the {REPLAY_FILE_CAP}-byte limit" in report.bad.reason


def test_forged_signature_is_reported(mirror: Mirror) -> None:
    w = Keys()
    raw = w.signers()
    mirror.submit(Register(P, raw, metadata_bytes(raw), pk(w.k["ad"])))
    intruder = SecretKey.generate("ed25519")
    env_path = layout.pending_signatures_path(PENDING_SF)
    fake = SignaturesFile.empty().with_entry(pk(w.k["a"]), sig(intruder, raw)).to_bytes()
    md_env = layout.pending_signatures_path(layout.metadata_path(P, pending=True))
    md = mirror.view().read(layout.metadata_path(P, pending=True)) or b""
    fake_md = SignaturesFile.empty().with_entry(pk(w.k["a"]), sig(intruder, md)).to_bytes()
    bad = forge_commit(
        mirror, Change(f"sign {PENDING_SF} by {pk(w.k['a'])}", {env_path: fake, md_env: fake_md})
    )
    _bad(mirror, bad, "Invalid signature")


def test_signature_by_a_non_signer_is_reported(mirror: Mirror) -> None:
    w = Keys()
    raw = w.signers()
    mirror.submit(Register(P, raw, metadata_bytes(raw), pk(w.k["ad"])))
    outsider = SecretKey.generate("ed25519")
    real = sign_op(mirror.view(), PENDING_SF, outsider)
    writes = {
        layout.pending_signatures_path(f): SignaturesFile.empty()
        .with_entry(pk(outsider), s)
        .to_bytes()
        for f, s in real.signatures.items()
    }
    bad = forge_commit(mirror, Change(f"sign {PENDING_SF} by {pk(outsider)}", writes))
    _bad(mirror, bad, "not an authorized signer")


def test_registration_nobody_listed_could_make_is_reported(mirror: Mirror) -> None:
    w = Keys()
    raw = w.signers()
    md = metadata_bytes(b"other bytes")  # metadata that does not describe the signers file
    good = Register(P, raw, metadata_bytes(raw), pk(w.k["ad"]))
    change = good(mirror.view(), T0)
    writes = dict(change.writes)
    writes[layout.metadata_path(P, pending=True)] = md
    bad = forge_commit(mirror, Change(change.message, writes))
    _bad(mirror, bad, "")


def test_release_for_an_unregistered_project_is_reported(mirror: Mirror) -> None:
    x = release_path("v1.0")
    bad = forge_commit(
        mirror,
        Change(
            f"register release {x}",
            {x: index_bytes("v1.0"), layout.pending_signatures_path(x): b'{"entries":{}}'},
        ),
    )
    _bad(mirror, bad, "No registered project")


def test_any_commit_message_passes_replay(mirror: Mirror) -> None:
    w = Keys()
    raw = w.signers()
    change = Register(P, raw, metadata_bytes(raw), pk(w.k["ad"]))(mirror.view(), T0)
    good = forge_commit(mirror, change, message="register something else")
    report = verify_repository(mirror.path)
    assert report.ok, report.bad
    assert report.head == good


def test_deleting_a_signature_is_reported(full: Mirror) -> None:
    path = layout.signatures_path(release_path("v3.0"))
    bad = forge_commit(full, Change("rm", deletes=frozenset({path})))
    _bad(full, bad, "")


def test_un_revoking_is_reported(full: Mirror) -> None:
    v1 = release_path("v1.0")
    bad = forge_commit(full, Change("unrevoke", deletes=frozenset({layout.revocation_path(v1)})))
    _bad(full, bad, "")


def test_executable_file_is_reported(mirror: Mirror) -> None:
    repo = pygit2.Repository(mirror.path)
    tb = repo.TreeBuilder()
    tb.insert("run.sh", repo.create_blob(b"#!/bin/sh\n"), pygit2.enums.FileMode.BLOB_EXECUTABLE)
    bad = forge_commit(mirror, tree=tb.write(), message="x")
    _bad(mirror, bad, "regular non-executable")


def test_time_going_backwards_is_reported(full: Mirror) -> None:
    repo = pygit2.Repository(full.path)
    tip = repo.references[MAIN].peel(pygit2.Commit)
    w = Keys()
    raw = w.signers()
    other = "https/github.com/443/acme/other"
    change = Register(other, raw, metadata_bytes(raw), pk(w.k["ad"]))(full.view(), T0)
    bad = forge_commit(full, change, when=tip.commit_time - 100)
    _bad(full, bad, "earlier than its parent")


def test_merge_commit_is_reported(full: Mirror) -> None:
    repo = pygit2.Repository(full.path)
    tip = repo.references[MAIN].peel(pygit2.Commit)
    bad = forge_commit(full, tree=tip.tree.id, parents=[tip.id, tip.parents[0].id], message="merge")
    _bad(full, bad, "merge commits")


def test_root_commit_must_be_empty(tmp_path: Path) -> None:
    repo = pygit2.init_repository(str(tmp_path / "r.git"), bare=True, initial_head="main")
    tb = repo.TreeBuilder()
    tb.insert("f", repo.create_blob(b"x"), pygit2.enums.FileMode.BLOB)
    s = pygit2.Signature("a", "a@b", 1, 0)
    cid = repo.create_commit(MAIN, s, s, "init mirror", tb.write(), [])
    report = verify_repository(str(tmp_path / "r.git"))
    assert report.bad is not None and report.bad.commit == str(cid)
    assert "empty tree" in report.bad.reason


def test_range_refuses_a_rewrite_and_checks_new_commits(full: Mirror) -> None:
    repo = pygit2.Repository(full.path)
    tip = repo.references[MAIN].peel(pygit2.Commit)
    base = str(tip.parents[0].parents[0].id)
    assert verify_range(repo, base, str(tip.id)).checked == 2
    # a sibling history that does not contain `tip`: refused as a rewrite
    s = pygit2.Signature("a", "a@b", tip.commit_time, 0)
    sibling = repo.create_commit(None, s, s, "x", tip.parents[0].tree.id, [tip.parents[0].id])
    report = verify_range(repo, str(tip.id), str(sibling))
    assert report.bad is not None and "rewritten" in report.bad.reason


# --- TUF commits -----------------------------------------------------------------------------------------
def test_tuf_bootstrap_verifies_and_tampered_tuf_metadata_does_not(mirror: Mirror) -> None:
    from asfaload.tuf import repo as tuf_repo
    from asfaload.tuf.documents import Expirations
    from tests.support.tuf import REF, key, make_root, signed_doc

    now = int(time.time())
    root_key = key()
    online = {role: key() for role in ("targets", "snapshot", "timestamp")}
    root = make_root(1, [root_key], 1, {r: s.public_key for r, s in online.items()}, now=now)
    doc = signed_doc(root, [root_key])
    signers = {s.public_key.keyid: s for s in online.values()}
    mirror.submit(lambda v, t: tuf_repo.bootstrap(v, t, REF, doc, Expirations(), signers).change)
    assert verify_repository(mirror.path).ok
    # a root v2 nobody with the v1 root key signed
    root2 = make_root(2, [key()], 1, {r: s.public_key for r, s in online.items()}, now=now)
    from asfaload.tuf.documents import dump_json

    bad = forge_commit(
        mirror,
        Change(
            f"tuf: rotate {REF.admin}/{REF.app}",
            {REF.versioned("root", 2): dump_json(signed_doc(root2, [key()]))},
        ),
    )
    _bad(mirror, bad, "not signed by the root thresholds")


# --- the id-skipping tree diff agrees with git's ------------------------------------------------------
_paths = st.lists(
    st.sampled_from(["a", "b", "d/a", "d/b", "d/e/f", "d/e/g", "x/y/z/w", "c", "a2/q"]),
    max_size=5,
    unique=True,
)


@settings(max_examples=60, deadline=None)
@given(
    before=_paths,
    after=_paths,
    data=st.binary(max_size=2),
    executable=st.booleans(),
)
def test_tree_diff_matches_libgit2(
    before: list[str], after: list[str], data: bytes, executable: bool
) -> None:
    with tempfile.TemporaryDirectory() as d:
        repo = pygit2.init_repository(d, bare=True)

        def build(paths: list[str], content: bytes, exe: bool) -> pygit2.Tree:
            files: dict[str, bytes] = {}
            for p in paths:
                # a path cannot be both a file and a directory: keep the first one seen
                if any(q.startswith(p + "/") or p.startswith(q + "/") for q in files):
                    continue
                files[p] = content + p.encode()
            return build_tree(repo, files, executable_suffix="g" if exe else None)

        # same content with a new mode is a change too
        old, new = build(before, b"1", False), build(after, data, executable)
        ours = sorted((c.path, c.old, c.new, c.mode) for c in diff_trees(repo, old, new))
        assert ours == libgit2_diff(old, new)
        # verify.tree_diff is the store's diff under its old name
        assert sorted((c.path, c.old, c.new, c.mode) for c in tree_diff(repo, old, new)) == ours
        # the empty tree on either side
        assert sorted(c.path for c in diff_trees(repo, None, new)) == sorted(
            p for p, _, _, _ in libgit2_diff(repo[repo.TreeBuilder().write()], new)
        )


# Names that sort next to each other and look like parts of raw entries (modes, spaces, digits):
# consecutive versions of a big directory are parsed against each other, and a wrong alignment
# would show as a wrong diff.
_big_dir_names = st.sampled_from(
    [f"r{i:03d}" for i in range(40)] + ["100644 x", "40000", "a b", "r0", "r00", "r1000", "z"]
)
_versions = st.lists(
    st.dictionaries(
        st.one_of(_big_dir_names, st.tuples(_big_dir_names, _big_dir_names).map("/".join)),
        st.binary(max_size=3),
        max_size=60,
    ),
    min_size=2,
    max_size=5,
)


@settings(max_examples=80, deadline=None)
@given(versions=_versions, executable=st.booleans())
def test_tree_diff_of_consecutive_versions_of_big_directories_matches_libgit2(
    versions: list[dict[str, bytes]], executable: bool
) -> None:
    with tempfile.TemporaryDirectory() as d:
        repo = pygit2.init_repository(d, bare=True)
        trees = []
        for files in versions:
            clean: dict[str, bytes] = {}
            for p, data in sorted(files.items()):
                if any(q.startswith(p + "/") or p.startswith(q + "/") for q in clean):
                    continue
                clean[p] = data
            trees.append(build_tree(repo, clean, executable_suffix="9" if executable else None))
        # each version against the next (the second side is parsed against the first), then
        # the same pairs again (both sides cached), then every pair in reverse
        pairs = list(zip(trees, trees[1:], strict=False))
        for old, new in pairs + pairs + [(b, a) for a, b in pairs]:
            ours = sorted((c.path, c.old, c.new, c.mode) for c in diff_trees(repo, old, new))
            assert ours == libgit2_diff(old, new)


@settings(max_examples=80, deadline=None)
@given(versions=_versions)
def test_a_tree_parsed_against_its_previous_version_is_parsed_right(
    versions: list[dict[str, bytes]],
) -> None:
    """The diff's fast path: a new version parsed by reusing the old one's entries outside the
    bytes that differ must be exactly the whole parse, and must be taken for one changed entry."""
    from asfaload.store import gittree

    def whole(raw: bytes) -> tuple[list[int], list[str], list[tuple[bytes, bytes]]]:
        starts, names, values, _ = gittree._parse_entries(raw, 0, len(raw))
        return starts, names, values

    with tempfile.TemporaryDirectory() as d:
        repo = pygit2.init_repository(d, bare=True)
        flat = [{p.replace("/", "-"): v for p, v in files.items()} for files in versions]
        raws = [bytes(repo[build_tree(repo, f).id].read_raw()) for f in flat]
        for old_raw, new_raw in zip(raws, raws[1:], strict=False):
            base = gittree._RawTree(old_raw, *whole(old_raw))
            parsed = gittree._parse_against(base, new_raw, gittree._middle(base, new_raw))
            if parsed is not None:
                assert (parsed.starts, parsed.names, parsed.values) == whole(new_raw)
        one = dict(flat[0], **{"r020": b"changed"})
        old_raw, new_raw = (bytes(repo[build_tree(repo, f).id].read_raw()) for f in (flat[0], one))
        base = gittree._RawTree(old_raw, *whole(old_raw))
        parsed = gittree._parse_against(base, new_raw, gittree._middle(base, new_raw))
        assert parsed is not None
        assert (parsed.starts, parsed.names, parsed.values) == whole(new_raw)


def test_tree_diff_handles_trees_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    repo = pygit2.init_repository(str(tmp_path / "deep.git"), bare=True)
    depth = sys.getrecursionlimit() + 100
    tb = repo.TreeBuilder()
    tb.insert("f", repo.create_blob(b"x"), FileMode.BLOB)
    oid = tb.write()
    for _ in range(depth):
        tb = repo.TreeBuilder()
        tb.insert("d", oid, FileMode.TREE)
        oid = tb.write()
    (change,) = diff_trees(repo, None, repo[oid].peel(pygit2.Tree))
    assert change.path == "d/" * depth + "f"
    assert change.old is None and change.mode == FileMode.BLOB


def libgit2_diff(
    old: pygit2.Object, new: pygit2.Object
) -> list[tuple[str, str | None, str | None, int]]:
    """libgit2's tree-to-tree diff in PathChange terms: the reference the store's diff must match."""
    zero = "0" * 40
    out = []
    for delta in old.peel(pygit2.Tree).diff_to_tree(new.peel(pygit2.Tree)).deltas:
        old_id, new_id = str(delta.old_file.id), str(delta.new_file.id)
        out.append(
            (
                delta.new_file.path if new_id != zero else delta.old_file.path,
                None if old_id == zero else old_id,
                None if new_id == zero else new_id,
                0 if new_id == zero else int(delta.new_file.mode),
            )
        )
    return sorted(out)


def build_tree(
    repo: pygit2.Repository, files: dict[str, bytes], executable_suffix: str | None = None
) -> pygit2.Tree:
    nested: dict[str, object] = {}
    for path, content in files.items():
        *dirs, name = path.split("/")
        node = nested
        for part in dirs:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[name] = content

    def write(node: dict[str, object]) -> pygit2.Oid:
        tb = repo.TreeBuilder()
        for name, value in node.items():
            if isinstance(value, bytes):
                mode = (
                    pygit2.enums.FileMode.BLOB_EXECUTABLE
                    if executable_suffix is not None and name.endswith(executable_suffix)
                    else pygit2.enums.FileMode.BLOB
                )
                tb.insert(name, repo.create_blob(value), mode)
            else:
                tb.insert(name, write(value), pygit2.enums.FileMode.TREE)  # type: ignore[arg-type]
        return tb.write()

    return repo[write(nested)].peel(pygit2.Tree)


# --- empty directories: refused by replay; the rules see through those already planted ------------
def _plant(m: Mirror, path: str, change: Change | None = None) -> str:
    """Commit ``change`` (or nothing) plus an empty directory at ``path``, bypassing the rules:
    what a mirror accepted before commits were compared by tree id."""
    repo = pygit2.Repository(m.path)
    tip = repo.references[MAIN].peel(pygit2.Commit)
    base = apply_change(repo, tip.tree, change) if change is not None else tip.tree.id
    return forge_commit(m, tree=plant_empty_tree(repo, base, path), message="sign")


def test_valid_change_with_a_planted_empty_directory_is_reported(mirror: Mirror) -> None:
    w = Keys()
    raw = w.signers()
    mirror.submit(Register(P, raw, metadata_bytes(raw), pk(w.k["ad"])))
    change = sign_op(mirror.view(), PENDING_SF, w.k["a"])(mirror.view(), int(time.time()))
    bad = _plant(mirror, "https/github.com/443/acme/other", change)
    _bad(mirror, bad, "'https/github.com/443/acme/other' is not part of it")


def test_empty_directory_alone_is_reported(mirror: Mirror) -> None:
    bad = _plant(mirror, "a/b")
    _bad(mirror, bad, "changes no file")


def test_planted_empty_directories_do_not_block_the_rules(mirror: Mirror) -> None:
    """Registration, a signers update and a revocation at paths that already hold an empty
    directory go through, and the empty directory gives way to the files."""
    w = Keys()
    k = w.k
    _plant(mirror, P)
    raw = w.signers()
    mirror.submit(Register(P, raw, metadata_bytes(raw), pk(k["ad"])))
    for name in ("a", "b", "ad", "r"):
        mirror.submit(sign_op(mirror.view(), PENDING_SF, k[name]))
    assert mirror.view().read(ACTIVE_SF) == raw
    v1 = release_path("v1.0")
    mirror.submit(RegisterRelease(v1, index_bytes("v1.0"), pk(k["a"])))
    mirror.submit(sign_op(mirror.view(), v1, k["a"]))
    mirror.submit(sign_op(mirror.view(), v1, k["b"]))
    _plant(mirror, layout.signers_dir(P, pending=True) + "/x")
    _plant(mirror, layout.revocation_path(v1))
    new = w.updated_signers()
    mirror.submit(ProposeUpdate(P, new, metadata_bytes(new, when=T0 + 10), pk(k["ad"])))
    assert mirror.view().read(PENDING_SF) == new
    doc = RevocationDocument.create(
        sha512(mirror.view().read(v1) or b""), pk(k["r"]), int(time.time()), reason="x"
    ).to_bytes()
    mirror.submit(Revoke(v1, doc, sig(k["r"], doc), pk(k["r"])))
    assert mirror.view().read(layout.revocation_path(v1)) == doc
