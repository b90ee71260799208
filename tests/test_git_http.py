"""Git over HTTP at ``/mirror.git``: clone, fetch and push against a real ``asfaload serve``.

Everything here is real: the server under gunicorn running ``git http-backend``, the ``git``
client over loopback, the mirror's pre-receive hook, and the ``minisign`` tool for the plain-git
signer.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
import requests

from asfaload import layout
from asfaload.client.gitsign import sign_pending_by_git
from asfaload.crypto import SecretKey
from asfaload.devtools.server import ServerProcess
from asfaload.rules import RegisterRelease
from asfaload.store import Mirror
from tests.support.http import raw_request
from tests.support.rules import INDEX, P, index_bytes
from tests.support.server import server_with_project

PENDING = layout.pending_signatures_path(INDEX)


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        ["git", "-c", "user.name=Signer", "-c", "user.email=s@example.org", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), "GIT_TERMINAL_PROMPT": "0"},
    )
    if check:
        assert res.returncode == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def tool_key(minisign_tool_unencrypted_keypair: tuple[Path, Path]) -> SecretKey:
    return SecretKey.load(minisign_tool_unencrypted_keypair[1], None)


@pytest.fixture
def primary(
    tmp_path: Path, tool_key: SecretKey
) -> Iterator[tuple[ServerProcess, Mirror, list[SecretKey]]]:
    """A primary whose project needs both keys (the minisign tool's and another) on a release."""
    keys = [tool_key, SecretKey.generate("minisign")]
    with server_with_project(tmp_path / "data", P, keys) as (server, mirror):
        mirror.submit(RegisterRelease(INDEX, index_bytes(), keys[0].public_key))
        yield server, mirror, keys


def remote(server: ServerProcess) -> str:
    return server.url("/mirror.git")


def test_clone_fetch_shallow_and_partial_over_smart_http(primary, tmp_path: Path) -> None:
    server, mirror, keys = primary
    tip = mirror.head()
    for name, extra in (
        ("full", []),
        ("shallow", ["--depth", "1"]),
        ("partial", ["--filter=blob:none"]),
    ):
        git(tmp_path, "clone", "-q", *extra, remote(server), name)
        assert git(tmp_path / name, "rev-parse", "HEAD").stdout.strip() == tip
    assert git(tmp_path / "shallow", "rev-list", "--count", "HEAD").stdout.strip() == "1"
    full = git(tmp_path / "full", "rev-list", "--count", "HEAD").stdout.strip()
    assert int(full) == len(list(pygit2.Repository(mirror.path).walk(pygit2.Oid(hex=tip))))
    # fetch sees what the server writes next
    sign_pending_by_git(remote(server), keys[0], INDEX)
    git(tmp_path / "full", "fetch", "-q", "origin")
    assert git(tmp_path / "full", "rev-parse", "origin/main").stdout.strip() == mirror.head()
    # the dumb-HTTP files stay for static servers
    assert (Path(mirror.path) / "info" / "refs").is_file()


def _plain_git_signature(tool: tuple[Path, Path], work: Path, pending_file: Path) -> str:
    """What a signer does with the minisign tool alone: sign the file's SHA-512 digest."""
    digest = work / "digest.bin"
    digest.write_bytes(hashlib.sha512(pending_file.read_bytes()).digest())
    res = subprocess.run(
        ["minisign", "-S", "-s", str(tool[1]), "-m", str(digest)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    return base64.b64encode((work / "digest.bin.minisig").read_bytes()).decode()


def test_signature_by_plain_git_with_any_message_is_accepted(
    primary, tmp_path: Path, minisign_tool_unencrypted_keypair: tuple[Path, Path]
) -> None:
    server, mirror, keys = primary
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", remote(server), str(clone))
    wire = _plain_git_signature(minisign_tool_unencrypted_keypair, tmp_path, clone / INDEX)
    envelope = clone / PENDING
    data = json.loads(envelope.read_text())
    data["entries"][str(keys[0].public_key)] = {"format": "minisign", "signature": wire}
    envelope.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    git(clone, "commit", "-q", "-am", "my signature for v1.0, whatever I like to write")
    res = git(clone, "push", "-q", "origin", "HEAD:main")
    assert mirror.head() == git(clone, "rev-parse", "HEAD").stdout.strip(), res.stderr
    pending = requests.get(server.url(f"/v1/files/{PENDING}"), timeout=10)
    assert str(keys[0].public_key) in pending.text
    # The last signature completes the release in the same commit, by hand as docs/git.md
    # shows: the envelope loses its .pending suffix, the governing signers file is copied.
    data = json.loads(envelope.read_text())
    sig = keys[1].sign(hashlib.sha512((clone / INDEX).read_bytes()).digest()).to_wire()
    data["entries"][str(keys[1].public_key)] = {"format": "minisign", "signature": sig}
    envelope.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    final = layout.signatures_path(INDEX)
    git(clone, "mv", PENDING, final)
    active = git(clone, "show", f"HEAD:{layout.signers_file_path(P)}").stdout
    (clone / layout.local_signers_path(INDEX)).write_text(active)
    git(clone, "add", "-A")
    git(clone, "commit", "-qm", "done")
    git(clone, "push", "-q", "origin", "HEAD:main")
    assert mirror.head() == git(clone, "rev-parse", "HEAD").stdout.strip()
    assert requests.get(server.url(f"/v1/files/{final}"), timeout=10).status_code == 200


def _receive_pack_body(clone: Path, old: str, new: str, extra: list[str]) -> bytes:
    """A receive-pack request moving main old -> new whose pack holds the objects old..new
    needs and ``extra`` besides (what `git push` never sends, and a crafted client may)."""
    objects = git(clone, "rev-list", "--objects", "--no-object-names", f"{old}..{new}").stdout
    pack = subprocess.run(
        ["git", "pack-objects", "--stdout", "-q"],
        cwd=clone,
        input=(objects + "".join(f"{oid}\n" for oid in extra)).encode(),
        capture_output=True,
        check=True,
    ).stdout
    line = f"{old} {new} refs/heads/main\0report-status side-band-64k object-format=sha1\n"
    return b"%04x" % (len(line) + 4) + line.encode() + b"0000" + pack


@pytest.mark.parametrize(
    "target",
    [
        "/mirror.git/git-receive-pack%00",
        "/mirror.git/info/refs%0a?service=git-upload-pack",
        "/mirror.git/../mirror.git/info/refs",
        "/mirror.git//info/refs",
        "/mirror.git/./info/refs",
        "/mirror.git/objects/%2e%2e/config",
    ],
)
def test_odd_git_paths_get_a_json_404(primary, target: str) -> None:
    server, _, _ = primary
    method = "POST" if "receive" in target else "GET"
    reply = raw_request(server.base_url, method, target)
    assert reply.status == 404, reply
    assert reply.json()["error"] in ("No such git resource", "Not found"), reply


def test_a_push_carrying_objects_its_commits_do_not_use_is_refused(primary, tmp_path: Path) -> None:
    """git keeps and serves every object of an accepted push: a valid signature must not
    smuggle a file the mirror would then host."""
    server, mirror, keys = primary
    head = mirror.head()
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", remote(server), str(clone))
    envelope = clone / PENDING
    data = json.loads(envelope.read_text())
    sig = keys[0].sign(hashlib.sha512((clone / INDEX).read_bytes()).digest()).to_wire()
    data["entries"][str(keys[0].public_key)] = {"format": "minisign", "signature": sig}
    envelope.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    git(clone, "commit", "-q", "-am", "signed")
    new = git(clone, "rev-parse", "HEAD").stdout.strip()
    (tmp_path / "payload.bin").write_bytes(os.urandom(4096))
    smuggled = git(clone, "hash-object", "-w", str(tmp_path / "payload.bin")).stdout.strip()
    url = server.url("/mirror.git/git-receive-pack")
    headers = {"Content-Type": "application/x-git-receive-pack-request"}
    refused = requests.post(
        url, data=_receive_pack_body(clone, head, new, [smuggled]), headers=headers, timeout=60
    )
    assert b"carries 1 object(s) that none of its commits uses" in refused.content, refused.content
    assert mirror.head() == head
    mirror_git = ["git", "--git-dir", str(server.data_dir / "mirror.git"), "cat-file", "-e"]
    assert subprocess.run([*mirror_git, smuggled]).returncode != 0  # quarantine dropped
    # The same commit, carrying only what it uses, lands.
    taken = requests.post(
        url, data=_receive_pack_body(clone, head, new, []), headers=headers, timeout=60
    )
    assert b"ok refs/heads/main" in taken.content, taken.content
    assert mirror.head() == new


def test_an_extra_file_is_refused_and_main_does_not_move(primary, tmp_path: Path) -> None:
    server, mirror, keys = primary
    head = mirror.head()
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", remote(server), str(clone))
    (clone / "README").write_text("hello\n")
    git(clone, "add", "README")
    git(clone, "commit", "-qm", "readme")
    res = git(clone, "push", "origin", "HEAD:main", check=False)
    assert res.returncode != 0
    assert "remote: asfaload: push rejected:" in res.stderr
    assert mirror.head() == head


def test_git_sign_pending_over_http_completes_the_release(primary, tmp_path: Path) -> None:
    server, mirror, keys = primary
    first = sign_pending_by_git(remote(server), keys[0], INDEX)
    assert not first.is_complete
    second = sign_pending_by_git(remote(server), keys[1], INDEX)
    assert second.is_complete and mirror.head() == second.commit_id
    complete = requests.get(server.url(f"/v1/files/{layout.signatures_path(INDEX)}"), timeout=10)
    assert complete.status_code == 200
    assert {str(k.public_key) for k in keys} <= set(json.loads(complete.text)["entries"])


@pytest.mark.parametrize("size", [256 * 1024, 3 * 1024 * 1024])  # with a length; chunked
def test_push_body_over_the_cap_is_refused(tmp_path: Path, tool_key: SecretKey, size: int) -> None:
    env = {"ASFALOAD_MAX_PUSH_BYTES": "65536"}
    with server_with_project(tmp_path / "data", P, [tool_key], env=env) as (server, mirror):
        head = mirror.head()
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", remote(server), str(clone))
        (clone / "big.bin").write_bytes(os.urandom(size))  # incompressible
        git(clone, "add", "big.bin")
        git(clone, "commit", "-qm", "big")
        res = git(clone, "push", "origin", "HEAD:main", check=False)
        assert res.returncode != 0
        assert "push rejected" not in res.stderr  # git never got to run the hook
        assert mirror.head() == head
        assert requests.get(server.url("/v1/ping"), timeout=10).status_code == 200


def test_read_only_server_refuses_pushes_naming_the_primary(primary, tmp_path: Path) -> None:
    server, mirror, keys = primary
    from asfaload.replication.sync import sync

    data = tmp_path / "ro"
    data.mkdir()
    sync(str(data / "mirror.git"), remote(server))
    ro = ServerProcess(data, env={"ASFALOAD_READ_ONLY": "1"}).start()
    try:
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", remote(ro), str(clone))
        assert git(clone, "rev-parse", "HEAD").stdout.strip() == mirror.head()
        (clone / "x").write_text("x\n")
        git(clone, "add", "x")
        git(clone, "commit", "-qm", "x")
        res = git(clone, "push", "origin", "HEAD:main", check=False)
        assert res.returncode != 0
        assert "read-only mirror" in res.stderr and remote(server) in res.stderr, res.stderr
        # REST writes are still refused with JSON, reads still work.
        refused = requests.post(ro.url("/v1/revoke"), data=b"{}", timeout=10)
        assert refused.status_code == 405
        assert refused.json()["error"] == (  # named by the REST base that -u takes
            f"This server is a read-only mirror following {server.base_url}; send writes to the "
            f"primary ({server.base_url}, or the primary it follows)"
        )
        assert requests.get(ro.url(f"/v1/files/{INDEX}"), timeout=10).status_code == 200
    finally:
        ro.stop()
    # The operator may name the primary itself (a chain's upstream may be another mirror).
    named = "https://asfaload.example"
    ro = ServerProcess(data, env={"ASFALOAD_READ_ONLY": "1", "ASFALOAD_PRIMARY_URL": named}).start()
    try:
        res = git(clone, "push", remote(ro), "HEAD:main", check=False)
        assert res.returncode != 0
        line = f"read-only mirror; push signatures to the primary at {named}"
        assert line in res.stderr and remote(server) not in res.stderr, res.stderr
        refused = requests.post(ro.url("/v1/revoke"), data=b"{}", timeout=10)
        assert refused.json()["error"] == (
            f"This server is a read-only mirror; send writes to the primary at {named}"
        )
    finally:
        ro.stop()


def test_push_larger_than_a_rest_body_reaches_the_hook(primary, tmp_path: Path) -> None:
    """A pack over the REST body limit (1 MiB) but under the push cap is fed to git whole."""
    server, mirror, keys = primary
    head = mirror.head()
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", remote(server), str(clone))
    (clone / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    git(clone, "add", "big.bin")
    git(clone, "commit", "-qm", "big")
    res = git(clone, "push", "origin", "HEAD:main", check=False)
    assert "asfaload: push rejected" in res.stderr and "big.bin" in res.stderr, res.stderr
    assert mirror.head() == head


def test_git_signing_fetches_only_what_is_new(primary, tmp_path: Path, monkeypatch) -> None:
    """``sign-pending --git`` keeps one clone per mirror in the user's cache: the second
    signature fetches the objects new since the first, not the whole history again."""
    server, mirror, keys = primary
    monkeypatch.setenv("ASFALOAD_CACHE_DIR", str(tmp_path / "cache"))
    first = sign_pending_by_git(remote(server), keys[0], INDEX)
    (clone,) = (tmp_path / "cache" / "signing").glob("*.git")
    before = set(pygit2.Repository(str(clone)).odb)
    other = layout.github_release_index_path(P, "v2.0")
    mirror.submit(RegisterRelease(other, index_bytes("u.tgz"), keys[0].public_key))
    sign_pending_by_git(remote(server), keys[0], other)
    repo = pygit2.Repository(str(clone))
    after = set(repo.odb)
    total = set(pygit2.Repository(mirror.path).odb)
    assert pygit2.Oid(hex=first.commit_id) in before <= after
    fetched = after - before
    assert fetched and len(fetched) < len(total) // 2, (len(fetched), len(total))
    assert pygit2.Oid(hex=mirror.head()) in after  # the commit it built there and pushed
