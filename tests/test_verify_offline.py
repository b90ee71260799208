"""Verification without a backend: ``download --mirror`` and ``verify-file``.

A real server and the forge emulator make the releases (one signed, one pending, one signed
then revoked); then the server is stopped for good, so every check here runs with no asfaload
backend at all (``ASFALOAD_BACKEND_URL`` names its closed port, and ``-u`` a dead one). The
release facts come from git: a plain ``git clone --bare`` of the primary (replayed before use),
a mirror kept by ``mirror sync`` (already verified), or a git URL (``file://`` and dumb HTTP),
fetched into the cache and replayed like ``mirror sync``. Hostile mirrors (a forged commit, a
rolled-back history hiding a revocation) are refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pygit2
import pytest

from asfaload import layout
from asfaload.devtools.harness import (
    Run,
    World,
    mirror_server,
    register_and_activate,
    register_release,
)
from asfaload.devtools.server import stop_server
from asfaload.replication.status import STATUS_FILE
from asfaload.rules.tree import Change
from asfaload.store import MAIN
from tests.support.mirror import forge_onto

GOOD = b"the genuine release\n" * 3000
EVIL = b"a trojan\n" * 3000
DEAD = "http://127.0.0.1:1"
DL = "https://github.com/acme/app/releases/download/{tag}/app.bin"


@dataclass
class Setup:
    world: World
    primary: Path  # the stopped primary's repository (a source of copies only)
    bare: Path  # `git clone --bare` of the primary: never verified before use
    synced: Path  # a data dir kept by `mirror sync`
    http_url: str  # the bare clone over dumb HTTP
    revocation_commit: str  # the commit that completed v3.0's revocation
    cache: Path


def git(*args: str, cwd: Path | None = None) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return res.stdout


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("offline")
    with World(root / "world", algorithm="ed25519") as w:
        a, b, r = w.new_keys("alice"), w.new_keys("bob"), w.new_keys("rev")
        raw = w.new_signers_file("signers.json", [a, b], 2, revocation=[r], revocation_threshold=1)
        url = w.forge.put_github_file("acme", "app", "main", "asfaload.signers/index.json", raw)
        register_and_activate(w, a, url, [a, b, r])
        for tag in ("v1.0", "v2.0", "v3.0"):
            rel = w.forge.add_github_release("acme", "app", tag, {"app.bin": GOOD + tag.encode()})
            index = register_release(w, a, "--github-release-url", rel)
            w.as_signer(a, "sign-pending", index)
            if tag != "v2.0":  # v2.0 stays pending: one of its two signatures
                w.as_signer(b, "sign-pending", index)
        w.as_signer(r, "revoke", index)  # v3.0, complete at once (threshold 1)
        primary = w.data_dir / "mirror.git"
        revocation_commit = str(pygit2.Repository(str(primary)).references[MAIN].target)

        bare = root / "clone.git"
        git("clone", "-q", "--bare", str(primary), str(bare))
        git("update-server-info", cwd=bare)
        synced = root / "synced"
        w.run("mirror", "sync", "--from", str(primary), "--data-dir", str(synced))
        # From here on there is no asfaload backend: its port is closed.
        stop_server(w._proc)
        w._proc = None
        proc, http = mirror_server(root)
        try:
            yield Setup(
                w, primary, bare, synced, f"{http}/clone.git", revocation_commit, root / "cache"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


def run(s: Setup, *args: str, ok: bool = True, env: dict[str, str] | None = None) -> Run:
    full = {"ASFALOAD_CACHE_DIR": str(s.cache)}
    full.update(env or {})
    return s.world.run(*args, ok=ok, env=full)


def sources(s: Setup) -> dict[str, str]:
    return {
        "clone": str(s.bare),
        "synced": str(s.synced),
        "file-url": s.bare.as_uri(),
        "http-url": s.http_url,
    }


SOURCES = ["clone", "synced", "file-url", "http-url"]


def no_leftovers(directory: Path) -> None:
    assert [p.name for p in directory.iterdir()] == []  # no output, no temp file


def refused(res: Run) -> str:
    """Exit 1 with exactly one line on stderr and nothing on stdout; returns that line."""
    assert res.returncode == 1, str(res)
    assert res.stdout == "", str(res)
    lines = res.stderr.splitlines()
    assert len(lines) == 1, str(res)
    return lines[0]


# --- genuine ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", SOURCES)
def test_genuine_release_verifies_with_no_backend(
    setup: Setup, source: str, tmp_path: Path
) -> None:
    mirror = sources(setup)[source]
    out = tmp_path / "out" / "app.bin"
    dl = DL.format(tag="v1.0")
    no_backend = {"ASFALOAD_BACKEND_URL": DEAD}
    res = run(setup, "download", dl, "--mirror", mirror, "-o", str(out), env=no_backend)
    assert out.read_bytes() == GOOD + b"v1.0"
    assert res.lines[-1] == "✓ All done! Verified 2 signature(s)"
    assert [p.name for p in out.parent.iterdir()] == ["app.bin"]

    text = run(setup, "verify-file", str(out), "--url", dl, "--mirror", mirror, env=no_backend)
    index = layout.github_release_index_path("https/github.com/443/acme/app", "v1.0")
    assert text.lines == [
        f"✓ {out}: verified (SHA-256 in the signed index {index}, 2 valid signature(s))"
    ]
    as_json = run(setup, "verify-file", str(out), "--url", dl, "--mirror", mirror, "--json")
    doc = json.loads(as_json.stdout)
    assert as_json.stderr == "" and doc["success"] is True and doc["source"] == "mirror"
    assert doc["index_file_path"] == index and doc["valid_signatures"] == 2
    assert doc["size"] == len(GOOD) + 4 and doc["hash_algorithm"] == "sha256"


def test_local_mirror_needs_no_network_at_all(setup: Setup, tmp_path: Path) -> None:
    """Forge and backend both unreachable: a local mirror and a local file are enough."""
    out = tmp_path / "app.bin"
    out.write_bytes(GOOD + b"v1.0")
    dead_forges = setup.world.forge.rewrites().replace(setup.world.forge.origin, DEAD)
    for mirror in (str(setup.bare), str(setup.synced)):
        res = run(
            setup,
            "verify-file",
            str(out),
            "--url",
            DL.format(tag="v1.0"),
            "--mirror",
            mirror,
            env={"ASFALOAD_URL_REWRITES": dead_forges, "ASFALOAD_BACKEND_URL": DEAD},
        )
        assert res.lines[0].startswith(f"✓ {out}: verified")


# --- refused ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["clone", "file-url"])
def test_tampered_file_is_refused(setup: Setup, source: str, tmp_path: Path) -> None:
    mirror = sources(setup)[source]
    dl = DL.format(tag="v1.0")
    bad = tmp_path / "app.bin"
    bad.write_bytes(GOOD + b"v1.1")
    line = refused(run(setup, "verify-file", str(bad), "--url", dl, "--mirror", mirror, ok=False))
    genuine = hashlib.sha256(GOOD + b"v1.0").hexdigest()
    assert line.startswith(f"Error: Hash mismatch for app.bin: expected '{genuine}'")
    # The forge serves other bytes than were signed: download writes nothing.
    public = "gh/acme/app/releases/download/v1.0/app.bin"
    setup.world.forge.put_file(public, EVIL)
    try:
        outdir = tmp_path / "dl"
        outdir.mkdir()
        res = run(setup, "download", dl, "--mirror", mirror, "-o", str(outdir / "a.bin"), ok=False)
        assert res.returncode == 1 and "Hash mismatch" in res.stderr
        no_leftovers(outdir)
    finally:
        setup.world.forge.put_file(public, GOOD + b"v1.0")


@pytest.mark.parametrize("source", SOURCES)
def test_pending_release_is_refused(setup: Setup, source: str, tmp_path: Path) -> None:
    mirror = sources(setup)[source]
    dl = DL.format(tag="v2.0")
    have = tmp_path / "have.bin"
    have.write_bytes(GOOD + b"v2.0")  # the genuine bytes: still not valid until fully signed
    line = refused(run(setup, "verify-file", str(have), "--url", dl, "--mirror", mirror, ok=False))
    # Said with the state of the mirror that answered (a clone not fetched lately is behind).
    tip = setup.revocation_commit[:12]
    assert line.startswith(
        f"Error: The release is not fully signed yet on the mirror (main at {tip}, "
    )
    outdir = tmp_path / "dl"
    outdir.mkdir()
    res = run(
        setup, "download", dl, "--mirror", mirror, "-o", str(outdir / "x"), "--json", ok=False
    )
    assert res.returncode == 1 and res.stdout == ""
    assert "not fully signed" in json.loads(res.stderr)["error"]
    no_leftovers(outdir)


@pytest.mark.parametrize("source", SOURCES)
def test_revoked_release_is_refused(setup: Setup, source: str, tmp_path: Path) -> None:
    mirror = sources(setup)[source]
    dl = DL.format(tag="v3.0")
    have = tmp_path / "have.bin"
    have.write_bytes(GOOD + b"v3.0")
    line = refused(run(setup, "verify-file", str(have), "--url", dl, "--mirror", mirror, ok=False))
    assert line.startswith("Error: File has been revoked at ")
    res = run(setup, "verify-file", str(have), "--url", dl, "--mirror", mirror, "--json", ok=False)
    assert res.returncode == 1 and res.stdout == "" and len(res.stderr.splitlines()) == 1
    assert json.loads(res.stderr)["error"].startswith("File has been revoked at ")
    outdir = tmp_path / "dl"
    outdir.mkdir()
    res = run(
        setup, "download", dl, "--mirror", mirror, "-o", str(outdir / "x"), "--json", ok=False
    )
    assert res.returncode == 1 and res.stdout == "" and len(res.stderr.splitlines()) == 1
    assert json.loads(res.stderr)["error"].startswith("File has been revoked at ")
    res = run(setup, "download", dl, "--mirror", mirror, "-o", str(outdir / "x"), ok=False)
    assert res.returncode == 1 and res.stderr.startswith("This file has been revoked.")
    no_leftovers(outdir)


def test_unregistered_release_is_refused(setup: Setup, tmp_path: Path) -> None:
    have = tmp_path / "have.bin"
    have.write_bytes(GOOD)
    dl = DL.format(tag="v9.0")
    line = refused(
        run(setup, "verify-file", str(have), "--url", dl, "--mirror", str(setup.bare), ok=False)
    )
    tip = setup.revocation_commit[:12]
    assert line.startswith(f"Error: No release index on the mirror (main at {tip}, ")
    assert " UTC) for this URL" in line


def test_bad_mirror_arguments_are_one_line(setup: Setup, tmp_path: Path) -> None:
    have = tmp_path / "have.bin"
    have.write_bytes(GOOD)
    dl = DL.format(tag="v1.0")
    for mirror, expect in (
        (str(tmp_path / "nothing"), "Error: No such mirror repository: "),
        (str(tmp_path), "Error: Not a git repository: "),
        ("ftp://example/x.git", "Error: Unsupported primary URL scheme: ftp"),
        (f"{DEAD}/mirror.git", f"Error: Cannot fetch the mirror {DEAD}/mirror.git: "),
    ):
        line = refused(
            run(setup, "verify-file", str(have), "--url", dl, "--mirror", mirror, ok=False)
        )
        assert line.startswith(expect), line
    for command in (["verify-file", str(have), "--url", dl], ["download", dl]):
        both = run(setup, *command, "--mirror", str(setup.bare), "-u", DEAD, ok=False)
        assert both.returncode == 2 and both.stdout == "", str(both)
        assert "Error: Give -u or --mirror, not both" in both.stderr, str(both)
        as_json = run(setup, *command, "--mirror", str(setup.bare), "-u", DEAD, "--json", ok=False)
        assert as_json.returncode == 2 and as_json.stdout == "", str(as_json)
        assert "not both" in json.loads(as_json.stderr)["error"]
    assert [p.name for p in tmp_path.iterdir()] == ["have.bin"]
    # Ref files that are no plain files (a FIFO would block the reader for good).
    for kind in ("fifo", "device"):
        odd = tmp_path / f"odd-{kind}.git"
        shutil.copytree(setup.bare, odd)
        ref = odd / "refs" / "heads" / "main"  # a loose ref, before the packed one
        ref.parent.mkdir(parents=True, exist_ok=True)
        ref.unlink(missing_ok=True)
        if kind == "fifo":
            os.mkfifo(ref)
        else:
            ref.symlink_to("/dev/zero")
        line = refused(
            run(setup, "verify-file", str(have), "--url", dl, "--mirror", str(odd), ok=False)
        )
        assert line == f"Error: The mirror at {odd} has a refs/heads/main that is not a plain file"
    absent = str(tmp_path / "absent")
    line = refused(
        run(setup, "verify-file", absent, "--url", dl, "--mirror", str(setup.bare), ok=False)
    )
    assert line.startswith("Error: No such file: ")


# --- hostile mirrors ----------------------------------------------------------------------------------
def test_forged_commit_in_a_local_clone_is_refused(setup: Setup, tmp_path: Path) -> None:
    """v3.0's revocation undone straight in the repository (its record deleted, its signatures
    put back): every file the client checks looks genuine, but the rules never derive that
    commit, so the replay refuses the mirror."""
    clone = tmp_path / "clone.git"
    shutil.copytree(setup.bare, clone)
    index = layout.github_release_index_path("https/github.com/443/acme/app", "v3.0")
    revoked_sigs = layout.revoked_signatures_path(index)
    gone = [layout.revocation_path(index), layout.revocation_signatures_path(index), revoked_sigs]
    tree = git("ls-tree", "-r", "--name-only", "main", cwd=clone).splitlines()
    assert all(p in tree for p in gone), tree
    sigs = git("show", f"main:{revoked_sigs}", cwd=clone).encode()
    change = Change("unrevoke", {layout.signatures_path(index): sigs}, frozenset(gone))
    forged = forge_onto(clone, change)
    have = tmp_path / "have.bin"
    have.write_bytes(GOOD + b"v3.0")
    dl = DL.format(tag="v3.0")
    line = refused(
        run(setup, "verify-file", str(have), "--url", dl, "--mirror", str(clone), ok=False)
    )
    assert line.startswith(f"Error: Refused the mirror at {clone}: commit {forged}: ")
    # The same repository fetched by URL is refused by the replay, and the cache stays empty.
    res = run(setup, "verify-file", str(have), "--url", dl, "--mirror", clone.as_uri(), ok=False)
    assert refused(res).startswith(f"Error: Refused the mirror {clone.as_uri()}: commit {forged}: ")


def test_rolled_back_mirror_cannot_hide_a_revocation(setup: Setup, tmp_path: Path) -> None:
    """A mirror URL once seen at the revocation, later rolled back to before it, is refused:
    the cache never moves backwards."""
    hostile = tmp_path / "hostile.git"
    shutil.copytree(setup.bare, hostile)
    url = hostile.as_uri()
    have = tmp_path / "have.bin"
    have.write_bytes(GOOD + b"v3.0")
    dl = DL.format(tag="v3.0")
    cache = tmp_path / "cache"
    env = {"ASFALOAD_CACHE_DIR": str(cache)}
    first = run(setup, "verify-file", str(have), "--url", dl, "--mirror", url, ok=False, env=env)
    assert refused(first).startswith("Error: File has been revoked")
    before = str(pygit2.Repository(str(hostile)).revparse_single(setup.revocation_commit + "^").id)
    pygit2.Repository(str(hostile)).references[MAIN].set_target(pygit2.Oid(hex=before))
    for spelling in (url, url + "/", url.removesuffix(".git")):  # one mirror, one record
        again = run(
            setup, "verify-file", str(have), "--url", dl, "--mirror", spelling, ok=False, env=env
        )
        line = refused(again)
        assert line.startswith(f"Error: Refused the mirror {spelling}: ") and "rollback" in line
    # What the cache protects against: a client with no history of this mirror sees only the
    # rolled-back state, in which v3.0 is fully signed and not yet revoked.
    fresh = run(
        setup,
        "verify-file",
        str(have),
        "--url",
        dl,
        "--mirror",
        url,
        env={"ASFALOAD_CACHE_DIR": str(tmp_path / "fresh")},
    )
    assert fresh.returncode == 0


def test_a_forged_status_file_does_not_vouch_for_a_local_mirror(
    setup: Setup, tmp_path: Path
) -> None:
    """A mirror directory brings its own files: a status file in it claiming that ``mirror
    verify`` checked a forged tip is not believed; the forged commit is replayed and refused."""
    data = tmp_path / "handed-over"
    shutil.copytree(setup.synced, data)
    repo = data / "mirror.git"
    index = layout.github_release_index_path("https/github.com/443/acme/app", "v3.0")
    revoked_sigs = layout.revoked_signatures_path(index)
    gone = [layout.revocation_path(index), layout.revocation_signatures_path(index), revoked_sigs]
    sigs = git("show", f"main:{revoked_sigs}", cwd=repo).encode()
    forged = forge_onto(repo, Change("x", {layout.signatures_path(index): sigs}, frozenset(gone)))
    status = json.loads((repo / STATUS_FILE).read_text())
    status["last_verified"] = {**status["last_verified"], "tip": forged}
    (repo / STATUS_FILE).write_text(json.dumps(status))
    have = tmp_path / "have.bin"
    have.write_bytes(GOOD + b"v3.0")
    dl = DL.format(tag="v3.0")
    res = run(setup, "verify-file", str(have), "--url", dl, "--mirror", str(data), ok=False)
    assert refused(res).startswith(f"Error: Refused the mirror at {repo}: commit {forged}: ")


def test_a_local_mirror_rolled_back_after_its_check_is_refused(
    setup: Setup, tmp_path: Path
) -> None:
    """The client keeps the tip it verified in a local repository (in its own cache): the same
    path later holding an older main (before v3.0's revocation) is refused, not replayed anew."""
    clone = tmp_path / "clone.git"
    shutil.copytree(setup.bare, clone)
    have = tmp_path / "have.bin"
    have.write_bytes(GOOD + b"v3.0")
    dl = DL.format(tag="v3.0")
    cache = tmp_path / "cache"
    env = {"ASFALOAD_CACHE_DIR": str(cache)}
    first = run(
        setup, "verify-file", str(have), "--url", dl, "--mirror", str(clone), ok=False, env=env
    )
    assert refused(first).startswith("Error: File has been revoked")
    (record,) = (cache / "verified").iterdir()
    assert record.read_text().strip() == setup.revocation_commit
    repo = pygit2.Repository(str(clone))
    before = repo.revparse_single(setup.revocation_commit + "^").id
    repo.references[MAIN].set_target(before)
    again = run(
        setup, "verify-file", str(have), "--url", dl, "--mirror", str(clone), ok=False, env=env
    )
    line = refused(again)
    assert line.startswith(f"Error: Refused the mirror at {clone}: its main ") and (
        f"does not contain commit {setup.revocation_commit[:12]}" in line
    ), line
    assert record.read_text().strip() == setup.revocation_commit  # the record never moves back


def test_a_symlink_to_an_older_copy_does_not_escape_the_record(
    setup: Setup, tmp_path: Path
) -> None:
    """The tip verified in a data dir is kept under the path as given too: its mirror.git later
    turned into a symlink to a valid but rolled-back copy is refused, not replayed afresh."""
    old = tmp_path / "old.git"
    shutil.copytree(setup.bare, old)
    repo = pygit2.Repository(str(old))
    repo.references[MAIN].set_target(repo.revparse_single(setup.revocation_commit + "^").id)
    data = tmp_path / "data"
    data.mkdir()
    shutil.copytree(setup.bare, data / "mirror.git")
    have = tmp_path / "have.bin"
    have.write_bytes(GOOD + b"v3.0")
    args = ("verify-file", str(have), "--url", DL.format(tag="v3.0"), "--mirror", str(data))
    env = {"ASFALOAD_CACHE_DIR": str(tmp_path / "cache")}
    assert refused(run(setup, *args, ok=False, env=env)).startswith("Error: File has been revoked")
    shutil.rmtree(data / "mirror.git")
    (data / "mirror.git").symlink_to(old)
    line = refused(run(setup, *args, ok=False, env=env))
    assert "does not contain commit" in line and setup.revocation_commit[:12] in line, line


# --- the cache ----------------------------------------------------------------------------------------
def test_url_mirrors_are_cached_per_url_and_fetched_incrementally(
    setup: Setup, tmp_path: Path
) -> None:
    url = setup.bare.as_uri()
    digest = hashlib.sha256(url.removesuffix(".git").encode()).hexdigest()
    have = tmp_path / "have.bin"
    have.write_bytes(GOOD + b"v1.0")
    args = ("verify-file", str(have), "--url", DL.format(tag="v1.0"), "--mirror", url)
    xdg = tmp_path / "xdg"
    run(setup, *args, env={"ASFALOAD_CACHE_DIR": "", "XDG_CACHE_HOME": str(xdg)})
    cached = xdg / "asfaload" / "mirrors" / f"{digest}.git"
    tip = git("rev-parse", "main", cwd=setup.bare).strip()
    assert git("rev-parse", "main", cwd=cached).strip() == tip
    own = tmp_path / "own"
    run(setup, *args, env={"ASFALOAD_CACHE_DIR": str(own)})
    cached = own / "mirrors" / f"{digest}.git"
    first = json.loads((cached / STATUS_FILE).read_text())["last_verified"]
    assert first["tip"] == tip and first["by"] == "sync"
    # A second use fetches, finds nothing new and verifies nothing again.
    out = run(setup, "mirror", "sync", "--repo", str(cached), "--json")
    assert json.loads(out.stdout)["commits_verified"] == 0
