"""`asfaload mirror sync`: read-only mirrors pull, re-verify every new commit, never rewind.

Primaries are real mirrors written by the real store (`Mirror.submit`, real operations, real
keys); forged primaries are made with pygit2 directly, as an intruder with write access to the
primary's repository (bypassing its hook) would. Syncs run real `git fetch` over a file path,
dumb HTTP (`python -m http.server`) and smart HTTP (`git http-backend` behind a loopback WSGI
server). The last test serves a synced mirror with `asfaload serve` and downloads through it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pygit2
import pytest
import requests
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from asfaload.devtools.harness import (
    ASFALOAD,
    World,
    free_port,
    mirror_server,
    register_and_activate,
    register_release,
)
from asfaload.errors import ConcurrentUpdateError, FormatError
from asfaload.replication.replay import verify_repository
from asfaload.replication.status import STATUS_FILE
from asfaload.replication.sync import (
    QUARANTINE_REF,
    FetchError,
    HistoryRewriteError,
    NoSourceError,
    RejectedHistoryError,
    SyncResult,
    compare_and_swap_main,
    create_readonly_mirror,
    normalise_source,
    primary_of,
    public_upstream,
    read_only_refusal,
    sync,
    watch,
)
from asfaload.rules import RegisterRelease
from asfaload.rules.tree import Change
from asfaload.store import MAIN, Mirror
from cli.main import cli
from tests.support.mirror import Keys, forge_commit, index_bytes, lifecycle, release_path
from tests.support.rules import pk, sign_op

LIFECYCLE_COMMITS = 17


# --- primaries ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Keys]:
    """One real primary with every kind of operation, built once and copied per test."""
    root = tmp_path_factory.mktemp("template")
    keys = Keys()
    with Mirror.init(str(root / "mirror.git"), durable=False) as m:
        lifecycle(m, keys)
    return root / "mirror.git", keys


class Primary:
    def __init__(self, path: Path, keys: Keys) -> None:
        self.path = path
        self.keys = keys
        self.mirror = Mirror.open(str(path), durable=False)
        self._tag = 4

    def head(self) -> str:
        head = self.mirror.head()
        assert head is not None
        return head

    def release(self) -> list[str]:
        """Two genuine commits: a new release registered, then signed by its 1-of-2 group."""
        tag = f"v{self._tag}.0"
        self._tag += 1
        a = self.keys.k["a"]
        path = release_path(tag)
        first = self.mirror.submit(RegisterRelease(path, index_bytes(tag), pk(a)))
        second = self.mirror.submit(sign_op(self.mirror.view(), path, a))
        return [first.commit_id, second.commit_id]

    def forge(self, change: Change) -> str:
        """A commit no rule derives, written straight into the repository (no hook runs)."""
        cid = forge_commit(self.mirror, change)
        git("update-server-info", cwd=self.path)
        return cid

    def reset(self, commit: str) -> None:
        """Move the primary's main to ``commit`` (a force-push, bypassing the hook)."""
        repo = pygit2.Repository(str(self.path))
        repo.references[MAIN].set_target(pygit2.Oid(hex=commit))
        git("update-server-info", cwd=self.path)


@pytest.fixture
def primary(template: tuple[Path, Keys], tmp_path: Path) -> Iterator[Primary]:
    path = tmp_path / "primary" / "mirror.git"
    shutil.copytree(template[0], path)
    p = Primary(path, template[1])
    yield p
    p.mirror.close()


@pytest.fixture
def local(tmp_path: Path) -> Path:
    return tmp_path / "ro-data" / "mirror.git"


def git(*args: str, cwd: Path) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return res.stdout


def main_of(path: Path) -> str | None:
    ref = pygit2.Repository(str(path)).references.get(MAIN)
    return None if ref is None else str(ref.target)


def refs_of(path: Path) -> list[str]:
    return git("for-each-ref", "--format=%(refname)", cwd=path).split()


def assert_clean(path: Path, main: str | None) -> None:
    """main is ``main``, no quarantine ref is left, and dumb-HTTP readers see exactly main."""
    assert main_of(path) == main
    assert QUARANTINE_REF not in refs_of(path)
    assert not Path(str(path) + ".incoming").exists()  # the scratch repository is gone
    assert refs_of(path) == ([] if main is None else [MAIN])
    info = (path / "info" / "refs").read_text() if (path / "info" / "refs").exists() else ""
    assert info == ("" if main is None else f"{main}\t{MAIN}\n")


def run_sync(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(cli, ["mirror", "sync", *args])
    return res.exit_code, res.stdout, res.stderr


# --- syncing real histories ---------------------------------------------------------------------------
def test_first_sync_copies_the_primary_history_root_included(primary: Primary, local: Path) -> None:
    result = sync(str(local), str(primary.path))
    assert result == SyncResult(
        str(primary.path), str(local), None, primary.head(), LIFECYCLE_COMMITS, True
    )
    assert result.status == "created"
    assert_clean(local, primary.head())
    # the same commits, root included: the mirror's history IS the primary's
    assert git("rev-list", "main", cwd=local) == git("rev-list", "main", cwd=primary.path)
    assert pygit2.Repository(str(local)).is_bare
    assert verify_repository(str(local)).ok
    assert primary_of(str(local)) == str(primary.path)
    # the store opens it like any mirror (this is what `asfaload serve` does)
    with Mirror.open(str(local)) as m:
        assert m.head() == primary.head()


def test_incremental_sync_verifies_only_the_new_commits(primary: Primary, local: Path) -> None:
    first = sync(str(local), str(primary.path)).new
    new = primary.release() + primary.release()
    result = sync(str(local))  # the recorded primary
    assert (result.old, result.new, result.commits, result.status) == (first, new[-1], 4, "updated")
    assert_clean(local, new[-1])
    again = sync(str(local))
    assert (again.status, again.commits, again.new) == ("up-to-date", 0, new[-1])
    assert_clean(local, new[-1])


def test_tampered_primary_is_refused_and_main_stays(primary: Primary, local: Path) -> None:
    trusted = sync(str(local), str(primary.path)).new
    primary.release()
    forged = primary.forge(Change("register release x", {"evil.txt": b"malware"}))
    primary.release()  # genuine-looking commits on top do not launder the forged one
    with pytest.raises(RejectedHistoryError) as err:
        sync(str(local))
    assert not isinstance(err.value, HistoryRewriteError)
    assert err.value.bad.commit == forged and "evil.txt" in err.value.bad.reason
    assert err.value.local == trusted and err.value.fetched == primary.head()
    assert_clean(local, trusted)
    # the refused objects never entered the mirror's object store (dumb HTTP serves it)
    assert forged not in pygit2.Repository(str(local))
    assert primary.head() not in pygit2.Repository(str(local))
    # the same through the CLI: first bad commit printed, exit 1, main unchanged
    code, out, errout = run_sync("--repo", str(local))
    assert code == 1 and out == ""
    assert errout.startswith(f"REFUSED: commit {forged} ('register release x'): ")
    assert errout.endswith(f"; main unchanged at {trusted}\n")
    assert len(errout.splitlines()) == 1
    # --json: nothing on stdout, one JSON object on stderr
    code, out, errout = run_sync("--repo", str(local), "--json")
    assert out == "" and len(errout.splitlines()) == 1
    data = json.loads(errout)
    assert code == 1 and "error" in data and data["status"] == "refused"
    assert data["main"] == trusted and data["first_bad_commit"]["commit"] == forged
    assert_clean(local, trusted)


def test_forged_commit_with_a_valid_looking_signature_file(primary: Primary, local: Path) -> None:
    """An edit inside the project (a completed release's signatures replaced) is refused too."""
    sync(str(local), str(primary.path))
    trusted = primary.head()
    repo = pygit2.Repository(str(primary.path))
    sig_paths = git("ls-tree", "-r", "--name-only", "main", cwd=primary.path).splitlines()
    target = next(p for p in sig_paths if p.endswith("asfaload.index.json.signatures.json"))
    forged = primary.forge(Change("sign", {target: b'{"entries": {}}'}))
    assert repo.references[MAIN].target == pygit2.Oid(hex=forged)
    with pytest.raises(RejectedHistoryError) as err:
        sync(str(local))
    assert err.value.bad.commit == forged
    assert_clean(local, trusted)


def test_tampered_primary_on_first_sync_leaves_no_main(primary: Primary, local: Path) -> None:
    forged = primary.forge(Change("x", {"evil.txt": b"x"}))
    with pytest.raises(RejectedHistoryError) as err:
        sync(str(local), str(primary.path))
    assert err.value.bad.commit == forged and err.value.local is None
    assert_clean(local, None)
    # once the primary is repaired, the recorded primary is used and the full history checked
    primary.reset(str(pygit2.Repository(str(primary.path)).revparse_single(forged + "^").id))
    assert sync(str(local)).commits == LIFECYCLE_COMMITS


def test_rewritten_history_is_refused(primary: Primary, local: Path) -> None:
    sync(str(local), str(primary.path))
    trusted = primary.release()[-1]
    sync(str(local))
    # the primary drops the last two commits and writes a different, valid history instead
    primary.reset(str(pygit2.Repository(str(primary.path)).revparse_single(trusted + "~2").id))
    rewritten = primary.release()[-1]
    assert verify_repository(str(primary.path)).ok  # each commit is valid on its own
    with pytest.raises(HistoryRewriteError) as err:
        sync(str(local))
    assert "history was rewritten" in str(err.value)
    assert err.value.fetched == rewritten
    assert_clean(local, trusted)
    code, out, err = run_sync("--repo", str(local), "--json")
    assert code == 1 and out == "" and json.loads(err)["status"] == "rewrite-refused"


def test_rollback_is_refused(primary: Primary, local: Path) -> None:
    sync(str(local), str(primary.path))
    trusted = primary.release()[-1]
    sync(str(local))
    primary.reset(str(pygit2.Repository(str(primary.path)).revparse_single(trusted + "~1").id))
    with pytest.raises(HistoryRewriteError, match="a rollback"):
        sync(str(local))
    assert_clean(local, trusted)


def test_tuf_commits_sync_and_an_unsigned_root_rotation_does_not(
    primary: Primary, local: Path
) -> None:
    from asfaload.tuf import repo as tuf_repo
    from asfaload.tuf.documents import Expirations, dump_json
    from tests.support.tuf import REF, key, make_root, signed_doc

    sync(str(local), str(primary.path))
    now = int(time.time())
    online = {role: key() for role in ("targets", "snapshot", "timestamp")}
    pubs = {r: s.public_key for r, s in online.items()}
    root_key = key()
    doc = signed_doc(make_root(1, [root_key], 1, pubs, now=now), [root_key])
    signers = {s.public_key.keyid: s for s in online.values()}
    primary.mirror.submit(
        lambda v, t: tuf_repo.bootstrap(v, t, REF, doc, Expirations(), signers).change
    )
    trusted = sync(str(local)).new
    assert trusted == primary.head()
    root2 = signed_doc(make_root(2, [key()], 1, pubs, now=now), [key()])
    forged = primary.forge(
        Change(f"tuf: rotate {REF.admin}/{REF.app}", {REF.versioned("root", 2): dump_json(root2)})
    )
    with pytest.raises(RejectedHistoryError) as err:
        sync(str(local))
    assert err.value.bad.commit == forged
    assert "not signed by the root thresholds" in err.value.bad.reason
    assert_clean(local, trusted)


def test_a_mirror_with_its_own_root_cannot_follow_a_primary(primary: Primary, local: Path) -> None:
    """Mirror.init writes its own root commit: such a repo is never silently replaced."""
    Mirror.init(str(local)).close()
    own = main_of(local)
    with pytest.raises(HistoryRewriteError):
        sync(str(local), str(primary.path))
    assert main_of(local) == own


def test_concurrent_syncs_serialise(primary: Primary, local: Path) -> None:
    """Two first syncs at once: one creates the mirror, the other finds it up to date."""
    results: list[SyncResult] = []
    threads = [
        threading.Thread(target=lambda: results.append(sync(str(local), str(primary.path))))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in results) == ["created", "up-to-date"]
    assert_clean(local, primary.head())


def test_lost_compare_and_swap_changes_nothing(primary: Primary, local: Path) -> None:
    head = sync(str(local), str(primary.path)).new
    parent = str(pygit2.Repository(str(local)).revparse_single(head + "^").id)
    with pytest.raises(ConcurrentUpdateError):
        compare_and_swap_main(str(local), parent, parent)  # main is not `parent` any more
    with pytest.raises(ConcurrentUpdateError):
        compare_and_swap_main(str(local), parent, None)  # main exists
    assert main_of(local) == head
    compare_and_swap_main(str(local), parent, head)
    assert main_of(local) == parent


def test_read_only_mirror_refuses_every_push(primary: Primary, local: Path, tmp_path: Path) -> None:
    sync(str(local), str(primary.path))
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(local), str(work)], check=True)
    assert (work / "https").is_dir()  # the clone has the project files
    (work / "note.txt").write_text("x")
    git("add", "note.txt", cwd=work)
    git("-c", "user.name=a", "-c", "user.email=a@b", "commit", "-qm", "x", cwd=work)
    push = subprocess.run(
        ["git", "push", "origin", "main"], cwd=work, capture_output=True, text=True
    )
    assert push.returncode != 0
    assert "read-only mirror; push signatures to the primary" in push.stderr
    assert main_of(local) == primary.head()


# --- transports and sources ---------------------------------------------------------------------------
def test_sync_over_dumb_http(primary: Primary, local: Path) -> None:
    proc, url = mirror_server(primary.path.parent)
    try:
        remote = f"{url}/mirror.git"
        assert sync(str(local), remote).commits == LIFECYCLE_COMMITS
        new = primary.release()
        result = sync(str(local))
        assert (result.source, result.commits, result.new) == (remote, 2, new[-1])
        forged = primary.forge(Change("x", {"evil.txt": b"x"}))
        with pytest.raises(RejectedHistoryError) as err:
            sync(str(local))
        assert err.value.bad.commit == forged
        assert_clean(local, new[-1])
        assert forged not in pygit2.Repository(str(local))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _http_backend(project_root: Path) -> Any:
    """A WSGI app running `git http-backend` (git's smart-HTTP CGI) for each request."""

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        env = {k: v for k, v in environ.items() if isinstance(v, str) and k.isupper()}
        env.update(
            {
                "GIT_PROJECT_ROOT": str(project_root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "PATH": os.environ["PATH"],
            }
        )
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        head, _, payload = out.stdout.partition(b"\r\n\r\n")
        status = "200 OK"
        headers = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(": ")
            if name.lower() == "status":
                status = value
            elif name:
                headers.append((name, value))
        start_response(status, headers)
        return [payload]

    return app


def test_sync_over_smart_http(primary: Primary, local: Path) -> None:
    server = make_server(
        "127.0.0.1", 0, _http_backend(primary.path.parent), WSGIServer, _QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        remote = f"http://127.0.0.1:{server.server_port}/mirror.git"
        assert sync(str(local), remote).commits == LIFECYCLE_COMMITS
        new = primary.release()
        assert sync(str(local)).new == new[-1]
        primary.forge(Change("x", {"evil.txt": b"x"}))
        with pytest.raises(RejectedHistoryError):
            sync(str(local))
        assert_clean(local, new[-1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_unreachable_or_missing_primary(tmp_path: Path, local: Path) -> None:
    with pytest.raises(FetchError, match="Cannot fetch main from the upstream"):
        sync(str(local), f"http://127.0.0.1:{free_port()}/mirror.git")
    assert_clean(local, None)
    empty = tmp_path / "empty.git"
    pygit2.init_repository(str(empty), bare=True)
    with pytest.raises(FetchError, match="Cannot fetch main"):
        sync(str(local), str(empty))
    with pytest.raises(NoSourceError):
        sync(str(tmp_path / "never-synced.git"))


@pytest.mark.parametrize(
    ("source", "shown"),
    [
        (
            "https://user:secret@mirror.example/a/mirror.git?x=1#y",
            "https://mirror.example/a/mirror.git",
        ),
        ("http://[::1]:3000/mirror.git", "http://[::1]:3000/mirror.git"),
        ("git://mirror.example/mirror.git", "git://mirror.example/mirror.git"),
        ("ssh://git@mirror.example/srv/mirror.git", None),
        ("/srv/asfaload/primary/mirror.git", None),
        ("https://mirror.example:99999/mirror.git", None),  # recorded by hand: shown as nothing
    ],
)
def test_refusals_name_the_upstream_only_when_it_may_be_shown(
    tmp_path: Path, source: str, shown: str | None
) -> None:
    """A read-only mirror's refusal of a write names what it follows, never a local path of the
    server or credentials kept in the URL."""
    path = str(tmp_path / "ro.git")
    create_readonly_mirror(path, source)
    assert public_upstream(path) == shown
    text = read_only_refusal(path, "push signatures")
    if shown is None:
        assert text == "this server is a read-only mirror; push signatures to the primary"
    else:
        assert text == (
            f"this server is a read-only mirror following {shown}; push signatures to the "
            f"primary ({shown}, or the primary it follows)"
        )
    assert "secret" not in text and "/srv/" not in text


def test_a_fetch_that_times_out_leaves_no_git_behind(
    local: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A silent upstream: at the timeout the whole fetch goes, git's HTTP helper included (it
    would otherwise live on, holding the connection)."""
    import socket
    import time as _time

    from asfaload.replication import sync as sync_module

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/never.git"
    monkeypatch.setattr(sync_module, "FETCH_TIMEOUT_SECONDS", 2.0)
    try:
        with pytest.raises(FetchError, match="timed out"):
            sync(str(local), url)
        left: list[str] = []
        for _ in range(20):  # a killed process may take a moment to be gone from /proc
            left = [
                cmd
                for pid in os.listdir("/proc")
                if pid.isdigit()
                for cmd in [_cmdline(pid)]
                if url in cmd
            ]
            if not left:
                break
            _time.sleep(0.1)
        assert left == []
    finally:
        silent.close()


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except (OSError, UnicodeDecodeError):
        return ""


def test_a_hostile_upstreams_names_and_messages_never_reach_the_terminal(
    primary: Primary, local: Path
) -> None:
    """A commit whose file name carries terminal escapes and whose message is megabytes: the
    refusal is one short line with the escapes shown, not sent."""
    sync(str(local), str(primary.path))
    repo = pygit2.Repository(str(primary.path))
    tip = repo[primary.head()].peel(pygit2.Commit)
    name = "\x1b[2K\x1b[1G\x1b[32mSynced: OK\x1b]0;owned\x07"
    builder = repo.TreeBuilder(tip.tree)
    builder.insert(name, repo.create_blob(b"x"), pygit2.enums.FileMode.BLOB)
    who = pygit2.Signature("mallory", "m@example.org", tip.commit_time + 1, 0)
    message = "\x1b]0;owned\x07" + "m" * (4 << 20)
    repo.create_commit(MAIN, who, who, message, builder.write(), [tip.id])
    git("update-server-info", cwd=primary.path)
    for args in ([], ["--json"]):
        code, out, err = run_sync("--repo", str(local), *args)
        assert code == 1 and out == ""
        assert "\x1b" not in err and "\x07" not in err, err[:300]
        assert len(err) < 20_000 and err.count("\n") == 1
    assert "\\x1b[2K" in err  # shown, escaped, in the reason


def test_sources_that_could_run_commands_are_refused(local: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for bad in (f"ext::sh -c touch% {marker}", "--upload-pack=touch /tmp/x", "fd::0", "ftp://x/y"):
        with pytest.raises(FormatError):
            sync(str(local), bad)
    for bad_port in ("https://h:abc/mirror.git", "http://h:99999/mirror.git"):
        with pytest.raises(FormatError, match="bad port"):
            sync(str(local), bad_port)
    assert not marker.exists() and not local.exists()


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_normalise_source_accepts_only_urls_and_existing_dirs(text: str) -> None:
    try:
        out = normalise_source(text)
    except FormatError:
        return
    assert out.split("://", 1)[0].lower() in ("file", "http", "https", "ssh", "git") or (
        os.path.isabs(out) and os.path.isdir(out)
    )
    assert not out.startswith("-")


# --- the CLI ------------------------------------------------------------------------------------------
def test_cli_forms(primary: Primary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "ro-data"
    code, out, _ = run_sync("--from", str(primary.path), "--data-dir", str(data))
    assert code == 0 and out.startswith("Created read-only mirror "), out
    assert f"{LIFECYCLE_COMMITS} commits verified, main at {primary.head()}" in out
    new = primary.release()
    monkeypatch.setenv("ASFALOAD_DATA_DIR", str(data))
    code, out, _ = run_sync()
    assert code == 0 and out.startswith("Synced 2 new commit(s)") and new[-1] in out
    code, out, _ = run_sync("--repo", str(data / "mirror.git"), "--json")
    assert code == 0 and json.loads(out) == {
        "success": True,
        "status": "up-to-date",
        "source": str(primary.path),
        "main": new[-1],
        "previous": new[-1],
        "commits_verified": 0,
    }
    code, out, _ = run_sync("--repo", str(data / "mirror.git"), "--data-dir", str(data))
    assert code == 2
    code, _, err = run_sync("--repo", str(tmp_path / "x.git"))
    assert code == 1 and "No primary given" in err


def test_watch_reports_each_round_and_keeps_main_verified(primary: Primary, local: Path) -> None:
    """Between rounds (in the sleep) the primary moves: good commits, then a forged one."""
    seen: list[str] = []
    rounds = iter([primary.release, lambda: [primary.forge(Change("x", {"e": b"x"}))]])

    def between(seconds: float) -> None:
        assert seconds == 5
        seen.append("new: " + next(rounds)()[-1])

    watch(
        str(local),
        str(primary.path),
        5,
        lambda r: seen.append(f"{r.status} {r.new}"),
        lambda e: seen.append(f"error {type(e).__name__}"),
        iterations=3,
        sleep=between,
    )
    first = seen[0].split()[1]
    assert [s.split()[0] for s in seen] == ["created", "new:", "updated", "new:", "error"]
    assert seen[-1] == "error RejectedHistoryError"
    assert seen[2] == f"updated {seen[1].split()[1]}" and first != seen[1].split()[1]
    assert_clean(local, seen[1].split()[1])


def _rounds_done(local: Path, seen: int) -> None:
    """Return once another sync round has finished: each round rewrites the status file by
    an atomic rename, so its inode changes (polled, never a timing assertion)."""
    status = local / STATUS_FILE
    for _ in range(3000):
        with contextlib.suppress(FileNotFoundError):
            if status.stat().st_ino != seen:
                return
        time.sleep(0.01)
    raise AssertionError("the watcher made no further sync round")


@pytest.mark.parametrize("json_output", [True, False])
def test_cli_watch_prints_only_changes_and_errors(
    primary: Primary, local: Path, json_output: bool
) -> None:
    proc = subprocess.Popen(
        [ASFALOAD, "mirror", "sync", "--from", str(primary.path), "--repo", str(local)]
        + ["--watch", "0.05"]
        + (["--json"] if json_output else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()
        # Several up-to-date rounds pass before the primary moves: they print nothing.
        for _ in range(3):
            _rounds_done(local, (local / STATUS_FILE).stat().st_ino)
        new = primary.release()
        second = proc.stdout.readline()
        forged = primary.forge(Change("x", {"evil.txt": b"x"}))
        error = proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert rest == ""  # up-to-date and refused rounds after the last change: nothing on stdout
    if json_output:
        assert json.loads(first)["status"] == "created"
        assert json.loads(second) == {
            "success": True,
            "status": "updated",
            "source": str(primary.path),
            "main": new[-1],
            "previous": json.loads(first)["main"],
            "commits_verified": 2,
        }
        refused = json.loads(error)
        assert refused["status"] == "refused" and refused["first_bad_commit"]["commit"] == forged
        assert all("error" in json.loads(line) for line in err.splitlines())
    else:
        assert first.startswith("Created read-only mirror ")
        assert second.startswith("Synced 2 new commit(s)") and second.rstrip().endswith(new[-1])
        assert error.startswith(f"REFUSED: commit {forged} ('x'): ")
        assert all(line.startswith("REFUSED: ") for line in err.splitlines())
    assert_clean(local, new[-1])


# --- a read-only server on the synced mirror, and a verified download through it ---------------------
def _serve(world: World, data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [ASFALOAD, "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=world.env(),
        )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        if proc.poll() is not None:
            raise RuntimeError(log.read_text())
        try:
            if requests.get(url + "/v1/ping", timeout=1).status_code == 200:
                return proc, url
        except requests.RequestException:
            proc_wait(proc)
    proc.kill()
    raise RuntimeError("read-only server did not start")


def proc_wait(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=0.1)


APP = b"genuine release bytes\n" * 1000


def test_synced_mirror_serves_reads_and_verified_downloads(tmp_path: Path) -> None:
    with World(tmp_path / "world", algorithm="ed25519") as w:
        a, b = w.new_keys("alice"), w.new_keys("bob")
        raw = w.new_signers_file("signers.json", [a, b], 2)
        url = w.forge.put_github_file("acme", "app", "main", "asfaload.signers/index.json", raw)
        register_and_activate(w, a, url, [a, b])
        rel = w.forge.add_github_release("acme", "app", "v1.0", {"app.bin": APP})
        index = register_release(w, a, "--github-release-url", rel)
        w.sign_all_pending([a, b], index)

        ro_data = tmp_path / "ro-data"
        w.run(
            "mirror", "sync", "--from", str(w.data_dir / "mirror.git"), "--data-dir", str(ro_data)
        )
        proc, ro_url = _serve(w, ro_data, tmp_path / "ro.log")
        try:
            for endpoint in ("files", "get_signers", "get_signers_chain"):
                got = requests.get(f"{ro_url}/v1/{endpoint}/{index}", timeout=10)
                want = requests.get(f"{w.backend_url}/v1/{endpoint}/{index}", timeout=10)
                assert got.status_code == want.status_code == 200, got.text
                assert got.content == want.content
            out = tmp_path / "app.bin"
            dl = "https://github.com/acme/app/releases/download/v1.0/app.bin"
            res = w.download(dl, "-u", ro_url, "-o", str(out), "--full-check")
            assert out.read_bytes() == APP
            assert "✓ Signers chain history verified (1 entries)" in res.lines

            # a release signed on the primary after the sync: not on the mirror yet ...
            rel2 = w.forge.add_github_release("acme", "app", "v2.0", {"app.bin": APP + b"2"})
            index2 = register_release(w, a, "--github-release-url", rel2)
            w.sign_all_pending([a, b], index2)
            dl2 = "https://github.com/acme/app/releases/download/v2.0/app.bin"
            out2 = tmp_path / "app2.bin"
            assert w.download(dl2, "-u", ro_url, "-o", str(out2), ok=False).returncode == 1
            assert not out2.exists()
            # ... until the next sync, which the running server serves without a restart
            synced = w.run("mirror", "sync", "--data-dir", str(ro_data), "--json")
            assert json.loads(synced.stdout)["status"] == "updated"
            w.download(dl2, "-u", ro_url, "-o", str(out2))
            assert out2.read_bytes() == APP + b"2"
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
