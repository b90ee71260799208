"""``asfaload sign-pending --git`` / ``revoke --git``: signing by ``git push`` into a real mirror.

The mirror is made by ``asfaload mirror init`` (real pre-receive hook installed); the server side
(registration, releases) is written through the store, as the server would; signers then run the
installed CLI as a subprocess, which fetches the mirror, derives the commit with the rules and
pushes it. The hook decides; the mirror's history is replayed by ``asfaload mirror verify``.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

import pygit2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asfaload import layout
from asfaload.client.gitsign import parse_push_output, resolve_remote, sign_pending_by_git
from asfaload.crypto import PublicKey, SecretKey, sha512
from asfaload.crypto._ed25519 import Argon2Params
from asfaload.crypto.randomart import randomart
from asfaload.devtools.server import ServerProcess
from asfaload.errors import ConcurrentUpdateError, ConflictError, RuleViolation
from asfaload.model import SignaturesFile, SignerGroup, SignersFile
from asfaload.model.index import PublishedFile, ReleaseIndex
from asfaload.replication.replay import verify_repository
from asfaload.rules import Change, FileStatus, Register, RegisterRelease, file_status
from asfaload.store import MAIN, Mirror
from tests.support.rules import (
    ACTIVE_SF,
    INDEX,
    PENDING_SF,
    T0,
    P,
    keys,
    metadata_bytes,
    pk,
    sign_op,
    signers_bytes,
)

ASFALOAD = str(Path(sys.executable).parent / "asfaload")
PASSWORD = "correct horse battery staple"
SIGNERS = ("a", "b", "ad", "r1", "r2")


def index_bytes(tag: str = "v1.0") -> bytes:
    f = PublishedFile(
        "t.tgz", "Sha256", f"https://github.com/acme/tool/releases/download/{tag}/t.tgz", "cd" * 32
    )
    return ReleaseIndex.create([f], mirrored_on=1_700_000_000).to_bytes()


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()


def cli(*args: str, cwd: Path | None = None) -> Result:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
    res = subprocess.run(
        [ASFALOAD, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )
    return Result(res.returncode, res.stdout, res.stderr)


def git(cwd: str | Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@dataclass
class World:
    mirror: Mirror
    keys: dict[str, SecretKey]
    key_files: dict[str, Path]

    @property
    def path(self) -> str:
        return self.mirror.path

    def sign(self, who: str, subject: str, *extra: str, remote: str | None = None) -> Result:
        return cli(
            "sign-pending",
            "--git",
            remote or self.path,
            "-K",
            str(self.key_files[who]),
            "-p",
            PASSWORD,
            *extra,
            subject,
        )

    def tip(self) -> str:
        head = self.mirror.head()
        assert head is not None
        return head

    def verify(self) -> None:
        res = cli("mirror", "verify", self.path)
        assert res.code == 0, res.stdout + res.stderr


def key_file(d: Path, name: str, sk: SecretKey) -> Path:
    path = d / f"{name}.key"
    # One key per project_mirror is written with the production Argon2id parameters (the others use the
    # cheap test parameters of the cheap_kdf fixture): the CLI must load both.
    sk.save(path, PASSWORD, kdf=Argon2Params() if name == "r2" else None)
    return path


def make_world(tmp_path: Path, mirror_dir: Path | None = None, *, by_cli: bool = False) -> World:
    """A mirror with project P registered and nobody signed: made by ``asfaload mirror init``
    when ``by_cli``, else by ``Mirror.init`` (same hooks), or an existing one (``mirror_dir``)."""
    path = mirror_dir or tmp_path / "mirror.git"
    if by_cli:
        res = cli("mirror", "init", str(path))
        assert res.code == 0, res.stderr
    elif mirror_dir is None:
        Mirror.init(str(path), durable=False).close()
    a, b, ad, r1, r2, outsider = keys(6)
    ks = dict(a=a, b=b, ad=ad, r1=r1, r2=r2, outsider=outsider)
    kd = tmp_path / "keys"
    kd.mkdir()
    files = {name: key_file(kd, name, sk) for name, sk in ks.items()}
    # durable=False: durability is the store tests' business.
    m = Mirror.open(str(path), durable=False)
    raw = signers_bytes([([a, b], 2)], admin=[([ad], 1)], revocation=[([r1, r2], 2)])
    m.submit(Register(P, raw, metadata_bytes(raw), pk(ad)))
    return World(m, ks, files)


@pytest.fixture
def project_mirror(tmp_path: Path, cheap_kdf: None) -> Iterator[World]:
    w = make_world(tmp_path)
    yield w
    w.mirror.close()


def server_signs(w: World, name: str, subject: str) -> None:
    """A signature submitted the other way (HTTP): through the server's writer."""
    w.mirror.submit(sign_op(w.mirror.view(), subject, w.keys[name]))


def activate(w: World) -> None:
    for name in SIGNERS:
        server_signs(w, name, PENDING_SF)
    assert w.mirror.view().read(ACTIVE_SF) is not None


def released(w: World) -> None:
    activate(w)
    w.mirror.submit(RegisterRelease(INDEX, index_bytes(), pk(w.keys["a"])))


def verified(w: World) -> None:
    report = verify_repository(w.path)
    assert report.ok, report.bad


# --- accepted pushes ----------------------------------------------------------------------------
def test_activation_and_release_signing_by_git(tmp_path: Path, cheap_kdf: None) -> None:
    w = make_world(tmp_path, by_cli=True)
    registered = w.mirror.view().read(PENDING_SF)
    for name in SIGNERS[:-1]:
        if name in ("a", "b"):
            res = w.sign(name, PENDING_SF)
            assert (res.code, res.lines) == (0, ["Success! Signature submitted"]), res.stderr
        else:
            server_signs(w, name, PENDING_SF)
    # a file:// URL is as good as a path
    res = w.sign("r2", PENDING_SF, remote="file://" + w.path)
    assert (res.code, res.lines) == (0, ["Success! Signature submitted (complete)"]), res.stderr
    view = w.mirror.view()
    assert view.read(ACTIVE_SF) == registered
    assert not view.is_dir(layout.signers_dir(P, pending=True))
    last = w.mirror.commit()
    assert last.message.startswith(f"sign {PENDING_SF} by {pk(w.keys['r2'])}")
    assert last.committer.email == "signer@asfaload.invalid"

    w.mirror.submit(RegisterRelease(INDEX, index_bytes(), pk(w.keys["a"])))
    res = w.sign("a", INDEX, "--json")
    assert (res.code, json.loads(res.stdout)) == (0, {"is_complete": False}), res.stderr
    assert file_status(w.mirror.view(), INDEX) is FileStatus.PENDING
    # a relative mirror path, resolved against the caller's directory; the digest signed is
    # shown first, as over HTTP
    rel = os.path.relpath(w.path, tmp_path)
    res = cli(
        "sign-pending", "--git", rel, "-K", str(w.key_files["b"]), "-p", PASSWORD, "--json", INDEX,
        "--show-fingerprint", cwd=tmp_path,
    )  # fmt: skip
    assert (res.code, json.loads(res.stdout)) == (0, {"is_complete": True}), res.stderr
    digest = sha512(index_bytes())
    assert res.stderr == f"{INDEX}\nsha512:{digest.hex()}\n{randomart(digest, 'asfaload')}\n"
    view = w.mirror.view()
    assert file_status(view, INDEX) is FileStatus.COMPLETE
    assert view.read(layout.pending_signatures_path(INDEX)) is None
    assert view.read(layout.local_signers_path(INDEX)) == view.read(ACTIVE_SF)
    # one commit per submission, each exactly derived
    assert git(w.path, "rev-list", "--count", MAIN).strip() == str(1 + 1 + 5 + 1 + 2)
    assert git(w.path, "fsck", "--strict") == ""
    w.verify()
    w.mirror.close()


def test_revocation_initiated_and_cosigned_by_git(project_mirror: World) -> None:
    w = project_mirror
    released(w)
    for name in ("a", "b"):
        server_signs(w, name, INDEX)
    res = cli("revoke", "--git", w.path, "-K", str(w.key_files["r1"]), "-p", PASSWORD, INDEX)
    assert (res.code, res.lines) == (0, [f"Success! File revoked: {INDEX}"]), res.stderr
    pending = layout.pending_revocation_path(INDEX)
    assert f"the revocation is pending: it takes effect once the other revokers sign {pending}" in (
        res.stderr
    )
    assert w.mirror.view().read(pending) is not None
    assert file_status(w.mirror.view(), INDEX) is FileStatus.COMPLETE
    # Named by its release URL, a signed release whose revocation waits for this key has its
    # revocation signed, as over REST.
    release_url = "https://github.com/acme/tool/releases/tag/v1.0"
    res = w.sign("r2", release_url)
    assert (res.code, res.lines) == (0, ["Success! Signature submitted (complete)"]), res.stderr
    view = w.mirror.view()
    assert file_status(view, INDEX) is FileStatus.REVOKED
    assert view.read(pending) is None
    # revoking again is refused, and nothing is pushed
    tip = w.tip()
    res = cli(
        "revoke", "--git", w.path, "-K", str(w.key_files["r1"]), "-p", PASSWORD, "--json", INDEX
    )
    assert res.code == 1 and res.stdout == ""
    assert "error" in json.loads(res.stderr)
    assert w.tip() == tip
    verified(w)


# --- refusals -------------------------------------------------------------------------------------
def test_same_key_twice_and_foreign_key_are_refused(project_mirror: World) -> None:
    w = project_mirror
    released(w)
    assert w.sign("a", INDEX).code == 0
    tip = w.tip()
    res = w.sign("a", INDEX)
    assert res.code == 1 and res.stdout == ""
    assert res.stderr.splitlines() == ["Error: Signature already collected for this key"]
    res = w.sign("outsider", INDEX)
    assert res.code == 1 and res.stdout == ""
    assert res.stderr.splitlines() == ["Error: Public key is not an authorized signer"]
    res = w.sign("a", "https/github.com/443/acme/tool/nope.json", "--json")
    assert res.code == 1
    assert json.loads(res.stderr) == {
        "error": "File not found: https/github.com/443/acme/tool/nope.json"
    }
    assert w.tip() == tip
    verified(w)


def test_hook_refusal_is_reported_with_its_reason(project_mirror: World) -> None:
    """What only the server can know (its size cap) is refused by the hook; the CLI prints the
    hook's `remote:` line as its one-line error and the mirror does not move."""
    w = project_mirror
    git(w.path, "config", "asfaload.maxFileSize", "64")
    tip = w.tip()
    res = w.sign("a", PENDING_SF)
    assert res.code == 1 and res.stdout == ""
    (line,) = res.stderr.splitlines()
    assert line.startswith("Error: asfaload: push rejected: commit "), line
    assert line.endswith("over the 64-byte limit"), line
    assert w.tip() == tip
    git(w.path, "config", "--unset", "asfaload.maxFileSize")
    assert w.sign("a", PENDING_SF).code == 0


def test_hook_refuses_a_commit_time_in_the_future(project_mirror: World) -> None:
    w = project_mirror
    tip = w.tip()
    with pytest.raises(RuleViolation, match="committer time is in the future"):
        sign_pending_by_git(w.path, w.keys["a"], PENDING_SF, clock=lambda: time.time() + 7200)
    assert w.tip() == tip


def test_unreachable_mirror(tmp_path: Path, project_mirror: World) -> None:
    missing = tmp_path / "no-such-mirror.git"
    res = project_mirror.sign("a", PENDING_SF, remote=str(missing))
    assert res.code == 1
    assert res.stderr.splitlines() == [
        f"Error: Cannot fetch main from the mirror: fatal: '{missing}' does not appear to be a "
        "git repository"
    ]


# --- races --------------------------------------------------------------------------------------
def test_lost_race_is_refetched_and_rederived(project_mirror: World) -> None:
    """b's signature lands (through the server's writer) after our fetch and before our push:
    the push is refused as non-fast-forward, the client refetches, and the rules now derive the
    completion of the release, which is what gets pushed."""
    w = project_mirror
    released(w)
    pushes = []

    def land_b() -> None:
        pushes.append(w.tip())
        if len(pushes) == 1:
            server_signs(w, "b", INDEX)

    res = sign_pending_by_git(w.path, w.keys["a"], INDEX, before_push=land_b)
    assert len(pushes) == 2 and pushes[0] != pushes[1]
    assert res.is_complete
    assert w.tip() == res.commit_id
    assert w.mirror.commit().parents[0].id == pygit2.Oid(hex=pushes[1])
    assert file_status(w.mirror.view(), INDEX) is FileStatus.COMPLETE
    verified(w)


def test_own_signature_landing_meanwhile_is_not_pushed_twice(project_mirror: World) -> None:
    """Our own signature arrives over HTTP between our fetch and our push: the refetched tip
    no longer derives anything for this key, so the rules refuse and nothing is pushed."""
    w = project_mirror
    released(w)

    def land_a() -> None:
        if w.mirror.view().read(layout.pending_signatures_path(INDEX)) == pending_before:
            server_signs(w, "a", INDEX)

    pending_before = w.mirror.view().read(layout.pending_signatures_path(INDEX))
    with pytest.raises(ConflictError, match="Signature already collected for this key"):
        sign_pending_by_git(w.path, w.keys["a"], INDEX, before_push=land_a)
    assert git(w.path, "log", "--format=%s", "-1", MAIN).startswith(f"sign {INDEX} by ")
    assert git(w.path, "rev-list", "--count", MAIN).strip() == str(2 + 5 + 1 + 1)
    verified(w)


def test_retries_are_bounded(project_mirror: World) -> None:
    w = project_mirror
    activate(w)
    tags = iter(f"v{i}.0" for i in range(2, 10))

    def keep_moving() -> None:
        tag = next(tags)
        idx = layout.github_release_index_path(P, tag)
        w.mirror.submit(RegisterRelease(idx, index_bytes(tag), pk(w.keys["a"])))

    w.mirror.submit(RegisterRelease(INDEX, index_bytes(), pk(w.keys["a"])))
    tip = w.tip()
    with pytest.raises(ConcurrentUpdateError):
        sign_pending_by_git(w.path, w.keys["a"], INDEX, attempts=3, before_push=keep_moving)
    assert file_status(w.mirror.view(), INDEX) is FileStatus.PENDING
    assert git(w.path, "rev-list", "--count", f"{tip}..{MAIN}").strip() == "3"


# --- production key formats -------------------------------------------------------------------------
def test_minisign_tool_key(
    tmp_path: Path, minisign_tool_unencrypted_keypair: tuple[Path, Path]
) -> None:
    """A key made by the real minisign tool signs (and so completes) a registration by git."""
    pub, sec = minisign_tool_unencrypted_keypair
    m = Mirror.init(str(tmp_path / "mirror.git"), durable=False)
    try:
        tool_key = PublicKey.from_file(pub)
        raw = SignersFile.create(artifact_signers=[SignerGroup((tool_key,), 1)], timestamp=T0).raw
        m.submit(Register(P, raw, metadata_bytes(raw), tool_key))
        res = cli("sign-pending", "--git", m.path, "-K", str(sec), PENDING_SF)
        assert (res.code, res.lines) == (0, ["Success! Signature submitted (complete)"]), res.stderr
        assert m.view().read(ACTIVE_SF) == raw
        envelope = m.view().read(layout.signatures_path(ACTIVE_SF))
        assert envelope is not None
        assert SignaturesFile.from_bytes(envelope)[tool_key].algorithm == "minisign"
        report = verify_repository(m.path)
        assert report.ok, report.bad
    finally:
        m.close()


# --- smart HTTP: git's own http-backend behind a loopback HTTP server ------------------------------
class _GitHttpHandler(BaseHTTPRequestHandler):
    """Serves ``git http-backend`` (CGI) for the repositories under ``server.git_root``."""

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _cgi(self) -> None:
        path, _, query = self.path.partition("?")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(
            GIT_PROJECT_ROOT=self.server.git_root,  # type: ignore[attr-defined]
            GIT_HTTP_EXPORT_ALL="1",
            GATEWAY_INTERFACE="CGI/1.1",
            REQUEST_METHOD=self.command,
            PATH_INFO=unquote(path),
            QUERY_STRING=query,
            CONTENT_TYPE=self.headers.get("Content-Type", ""),
            CONTENT_LENGTH=str(len(body)),
            REMOTE_USER="signer",  # http-backend serves receive-pack only to an authenticated user
            REMOTE_ADDR="127.0.0.1",
        )
        for header, var in (
            ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
            ("Git-Protocol", "GIT_PROTOCOL"),
        ):
            if self.headers.get(header):
                env[var] = self.headers[header]
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def smart_http(project_mirror: World) -> Iterator[str]:
    """The project's mirror served over git's smart HTTP protocol; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GitHttpHandler)
    server.git_root = os.path.dirname(project_mirror.path)  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{os.path.basename(project_mirror.path)}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_sign_over_smart_http(project_mirror: World, smart_http: str) -> None:
    w = project_mirror
    res = w.sign("a", PENDING_SF, remote=smart_http)
    assert (res.code, res.lines) == (0, ["Success! Signature submitted"]), res.stderr
    signed = w.tip()
    # the hook's reason travels back over HTTP too
    git(w.path, "config", "asfaload.maxFileSize", "64")
    res = w.sign("b", PENDING_SF, remote=smart_http)
    assert res.code == 1
    (line,) = res.stderr.splitlines()
    assert line.startswith("Error: asfaload: push rejected: commit "), line
    assert w.tip() == signed
    verified(w)


def test_a_mirror_that_swaps_the_bytes_at_the_path_is_refused_before_signing(
    project_mirror: World,
) -> None:
    """A hostile git server puts other bytes at the path the signer named (here, another
    release index): no rule derives that commit, so the replay refuses the mirror and nothing
    is signed or pushed."""
    from tests.support.mirror import forge_commit

    w = project_mirror
    released(w)
    assert w.sign("a", INDEX).code == 0  # the genuine history, verified and signed on
    forged = forge_commit(w.mirror, Change("swap", {INDEX: index_bytes("evil.tgz")}))
    res = w.sign("b", INDEX)
    assert res.code == 1 and res.stdout == ""
    (line,) = res.stderr.splitlines()
    assert line.startswith(f"Error: Refused the mirror {w.path}: commit {forged}: "), line
    assert w.tip() == forged  # nothing pushed on top of it


def test_dumb_http_fetches_but_cannot_push(project_mirror: World) -> None:
    """A read-only (dumb HTTP) mirror serves the fetch; the push fails with a clear line and
    nothing changes."""
    w = project_mirror
    handler = functools.partial(_QuietFiles, directory=os.path.dirname(w.path))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{os.path.basename(w.path)}"
        tip = w.tip()
        res = w.sign("a", PENDING_SF, remote=url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert res.code == 1
    assert res.stderr.splitlines() == [
        "Error: Cannot push to the mirror: this URL does not accept pushes (dumb HTTP is "
        "read-only); use the mirror's path, an ssh URL or a smart-HTTP URL"
    ]
    assert w.tip() == tip


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


# --- the live server sees git-pushed signatures -----------------------------------------------------
def test_live_server_sees_git_pushed_signatures(tmp_path: Path, cheap_kdf: None) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, env={"ASFALOAD_ALLOW_PRIVATE_URLS": "1"}).start()
    try:
        w = make_world(tmp_path, data / "mirror.git")
        try:
            released(w)

            def http(who: str, *args: str) -> Result:
                return cli(
                    *args[:1], "-u", server.base_url, "-K", str(w.key_files[who]), "-p",
                    PASSWORD, *args[1:],
                )  # fmt: skip

            assert http("a", "list-pending").lines == [
                "Files requiring your signature:",
                f"  - {INDEX} (pending)",
            ]
            assert w.sign("a", INDEX).code == 0
            assert http("a", "list-pending").lines == ["No pending signatures found."]
            assert http("b", "signature-status", INDEX).lines[0] == f"{INDEX}: pending"
            # b finishes over HTTP on top of a's git-pushed signature
            res = http("b", "sign-pending", INDEX)
            assert res.lines == ["Success! Signature submitted (complete)"], res.stderr
            assert http("a", "signature-status", INDEX).lines[0] == f"{INDEX}: complete"
            w.verify()
        finally:
            w.mirror.close()
    finally:
        server.stop()


# --- pure parts ---------------------------------------------------------------------------------------
def test_resolve_remote(tmp_path: Path) -> None:
    assert resolve_remote("https://example.org/m.git") == "https://example.org/m.git"
    assert resolve_remote("git@example.org:m.git") == "git@example.org:m.git"
    assert resolve_remote("file:///srv/m.git") == "file:///srv/m.git"
    assert resolve_remote("m.git") == os.path.abspath("m.git")
    odd = tmp_path / "a:b"
    odd.mkdir()
    assert resolve_remote(str(odd)) == str(odd)
    with pytest.raises(RuleViolation):
        resolve_remote("")
    for hostile in (
        "--upload-pack=touch${IFS}pwned;:",
        "-oProxyCommand=touch pwned",
        "ext::sh -c touch% pwned",
        "fd::0",
        "ftp://example.org/m.git",
    ):
        with pytest.raises(RuleViolation):
            resolve_remote(hostile)


def test_a_git_location_that_is_an_option_runs_nothing(
    project_mirror: World, tmp_path: Path
) -> None:
    """The --git location reaches git after ``--`` and is checked first: what git would take for
    an option (and so run a command) is refused, before any fetch."""
    w = project_mirror
    released(w)
    marker = tmp_path / "PWNED"
    hostile = f"--upload-pack=touch${{IFS}}{marker};:"
    res = cli("sign-pending", "--git", hostile, "-K", str(w.key_files["a"]), "-p", PASSWORD, INDEX)
    assert res.code == 1 and "looks like an option" in res.stderr, res
    assert not marker.exists()


@pytest.mark.parametrize(
    ("summary", "ok", "lost"),
    [
        ("[up to date]", True, False),
        ("[rejected] (fetch first)", False, True),
        ("[rejected] (non-fast-forward)", False, True),
        ("[remote rejected] (failed to update ref)", False, True),
        ("[remote rejected] (pre-receive hook declined)", False, False),
    ],
)
def test_parse_push_output(summary: str, ok: bool, lost: bool) -> None:
    flag = "=" if ok else "!"
    stdout = f"To /srv/m.git\n{flag}\tabc:{MAIN}\t{summary}\nDone\n"
    stderr = "remote: asfaload: push rejected: commit 1234567: nope\x1b[K\nerror: failed\n"
    status = parse_push_output(stdout, stderr)
    assert status is not None
    assert (status.ok, status.lost_race) == (ok, lost)
    if "hook" in summary:
        assert status.reason == "asfaload: push rejected: commit 1234567: nope"
    assert parse_push_output("", "fatal: unable to access\n") is None


@given(st.text(), st.text())
def test_parse_push_output_never_raises(stdout: str, stderr: str) -> None:
    status = parse_push_output(stdout, stderr)
    if f":{MAIN}\t" not in stdout:
        assert status is None
    else:
        assert status is None or isinstance(status.reason, str)


@given(st.sampled_from(["fetch first", "non-fast-forward", "failed to update ref"]), st.text())
def test_lost_races_are_never_refusals(word: str, noise: str) -> None:
    line = f"!\tdeadbeef:{MAIN}\t[rejected] ({word})".replace("\n", " ")
    status = parse_push_output(line + "\n", noise)
    assert status is not None and status.lost_race and not status.ok
