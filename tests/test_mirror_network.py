"""A network of mirrors over git smart HTTP, with real servers on loopback.

The primary is a real ``asfaload serve`` (the harness's world); mirror A syncs from the
primary's ``/mirror.git`` and is served by ``asfaload serve --read-only``; mirror B syncs from
A's ``/mirror.git`` and is served read-only too. Releases are made with the real CLI against the
primary, and read back through B's REST API while every server keeps running. A commit forged
straight into A's repository (pygit2, no rules) must be refused by B's sync.

Also here: ``mirror status`` on a primary and on a mirror, and clients failing over between
backends (a dead URL first, a live server second).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest
import requests

from asfaload.client.api import BackendClient, _fails_over, parse_backend_urls
from asfaload.devtools.harness import (
    ASFALOAD,
    Run,
    World,
    free_port,
    register_and_activate,
    register_release,
)
from asfaload.errors import FormatError, NetworkError, NotFoundError
from asfaload.replication.status import STATUS_FILE
from asfaload.rules.tree import Change
from asfaload.store import MAIN
from tests.support.mirror import forge_onto

APP = b"mirror network release\n" * 500
DEAD = "http://127.0.0.1:1"


def cli(*args: str, ok: bool = True, env: dict[str, str] | None = None) -> Run:
    """The real ``asfaload`` console script, with no ASFALOAD_* settings of the caller's."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
    full.update(env or {})
    proc = subprocess.run(
        [ASFALOAD, *args], capture_output=True, text=True, env=full, timeout=300, check=False
    )
    res = Run(tuple(args), proc.returncode, proc.stdout, proc.stderr)
    assert not ok or proc.returncode == 0, str(res)
    return res


def main_of(repo: Path) -> str:
    return str(pygit2.Repository(str(repo)).references[MAIN].target)


@contextlib.contextmanager
def read_only_server(world: World, data_dir: Path) -> Iterator[str]:
    """``asfaload serve --read-only`` on ``data_dir``; yields its base URL."""
    port = free_port()
    log = data_dir.parent / f"{data_dir.name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [ASFALOAD, "serve", "--read-only", "--data-dir", str(data_dir)]
            + ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=world.env(),
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError(log.read_text())
            with contextlib.suppress(requests.RequestException):
                if requests.get(url + "/v1/ping", timeout=1).status_code == 200:
                    break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.05)
        else:
            raise RuntimeError("read-only server did not start:\n" + log.read_text())
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def status(data_dir: Path) -> dict[str, object]:
    doc = json.loads(cli("mirror", "status", "--data-dir", str(data_dir), "--json").stdout)
    assert isinstance(doc, dict)
    return doc


def release(world: World, signers: list, tag: str, body: bytes) -> tuple[str, str]:
    """A release signed by every signer; returns (index path, download URL)."""
    rel = world.forge.add_github_release("acme", "app", tag, {"app.bin": body})
    index = register_release(world, signers[0], "--github-release-url", rel)
    world.sign_all_pending(signers, index)
    return index, f"https://github.com/acme/app/releases/download/{tag}/app.bin"


def test_mirror_chain_over_http_picks_up_syncs_and_refuses_a_forged_commit(
    tmp_path: Path,
) -> None:
    with World(tmp_path / "world", algorithm="ed25519") as w:
        a, b = w.new_keys("alice"), w.new_keys("bob")
        raw = w.new_signers_file("signers.json", [a, b], 2)
        url = w.forge.put_github_file("acme", "app", "main", "asfaload.signers/index.json", raw)
        register_and_activate(w, a, url, [a, b])
        index1, dl1 = release(w, [a, b], "v1.0", APP)
        primary_repo = w.data_dir / "mirror.git"

        # primary -> A over HTTP, then A -> B over HTTP from A's read-only server
        data_a, data_b = tmp_path / "ro-a", tmp_path / "ro-b"
        first = w.run(
            "mirror", "sync", "--from", f"{w.backend_url}/mirror.git", "--data-dir", str(data_a)
        )
        assert first.stdout.startswith("Created read-only mirror "), first
        with read_only_server(w, data_a) as url_a:
            w.run("mirror", "sync", "--from", f"{url_a}/mirror.git", "--data-dir", str(data_b))
            assert main_of(data_b / "mirror.git") == main_of(primary_repo)
            with read_only_server(w, data_b) as url_b:
                got = requests.get(f"{url_b}/v1/files/{index1}", timeout=10)
                assert got.status_code == 200
                assert got.content == requests.get(f"{w.backend_url}/v1/files/{index1}").content

                # A release made on the primary after both syncs: B does not have it yet ...
                index2, dl2 = release(w, [a, b], "v2.0", APP + b"2")
                assert requests.get(f"{url_b}/v1/files/{index2}", timeout=10).status_code == 404
                # ... until A and then B sync; B's running server serves it, no restart.
                for data in (data_a, data_b):
                    synced = w.run("mirror", "sync", "--data-dir", str(data), "--json")
                    assert json.loads(synced.stdout)["status"] == "updated"
                got = requests.get(f"{url_b}/v1/files/{index2}", timeout=10)
                assert got.status_code == 200, got.text
                chain = requests.get(f"{url_b}/v1/get_signers_chain/{index2}", timeout=10)
                assert chain.status_code == 200
                # A verified download through B, with a dead backend listed first.
                out = tmp_path / "app2.bin"
                res = w.download(dl2, "-u", DEAD, "-u", url_b, "-o", str(out), "--full-check")
                assert out.read_bytes() == APP + b"2"
                assert res.lines[-1] == "✓ All done! Verified 2 signature(s)"
                # verify-file with no --mirror asks the backends (-u) the same questions.
                checked = w.run(
                    "verify-file", str(out), "--url", dl2, "-u", DEAD, "-u", url_b, "--json"
                )
                doc = json.loads(checked.stdout)
                assert doc["success"] is True and doc["source"] == "backend"
                assert doc["index_file_path"] == index2 and doc["valid_signatures"] == 2
                out.write_bytes(APP)  # not the v2.0 bytes
                bad = w.run("verify-file", str(out), "--url", dl2, "-u", url_b, ok=False)
                assert bad.returncode == 1 and bad.stderr.startswith("Error: Hash mismatch")
                assert len(bad.stderr.splitlines()) == 1
                # The same failover from a comma list in ASFALOAD_BACKEND_URL.
                out1 = tmp_path / "app1.bin"
                w.run(
                    "download",
                    dl1,
                    "-o",
                    str(out1),
                    env={"ASFALOAD_BACKEND_URL": f"{DEAD},{url_b}"},
                )
                assert out1.read_bytes() == APP

                st = status(data_b)
                tip = main_of(primary_repo)
                assert st["tip"] == tip and st["upstream"] == f"{url_a}/mirror.git"
                assert st["read_only"] is True and st["last_error"] is None
                verified = st["last_verified"]
                assert isinstance(verified, dict)
                assert verified["tip"] == tip and verified["by"] == "sync"

                # An intruder writes a commit straight into A's repository: B refuses it.
                forged = forge_onto(
                    data_a / "mirror.git", Change("register release x", {"evil.txt": b"x"})
                )
                refused = w.run("mirror", "sync", "--data-dir", str(data_b), ok=False)
                assert refused.returncode == 1 and refused.stdout == ""
                assert refused.stderr.splitlines() == [refused.stderr.rstrip("\n")]
                assert refused.stderr.startswith(
                    f"REFUSED: commit {forged} ('register release x'): "
                )
                assert refused.stderr.rstrip().endswith(f"; main unchanged at {tip}")
                assert main_of(data_b / "mirror.git") == tip
                assert forged not in pygit2.Repository(str(data_b / "mirror.git"))
                as_json = w.run("mirror", "sync", "--data-dir", str(data_b), "--json", ok=False)
                assert as_json.returncode == 1 and as_json.stdout == ""
                assert json.loads(as_json.stderr)["first_bad_commit"]["commit"] == forged
                # B keeps serving its verified state.
                assert requests.get(f"{url_b}/v1/files/{index2}", timeout=10).status_code == 200
                assert requests.get(f"{url_b}/v1/files/evil.txt", timeout=10).status_code == 404

                after = status(data_b)
                assert after["tip"] == tip and after["last_verified"] == verified
                error = after["last_error"]
                assert isinstance(error, dict) and error["by"] == "sync"
                assert forged in str(error["message"]) and error["at"]
                text = w.run("mirror", "status", "--data-dir", str(data_b)).lines
                assert f"tip: {tip}" in text and f"upstream: {url_a}/mirror.git" in text
                assert "read_only: yes" in text
                assert any(ln.startswith("last_error: ") and forged in ln for ln in text)


# --- mirror status on a primary ------------------------------------------------------------------
def test_status_of_a_primary_and_what_verify_records(tmp_path: Path) -> None:
    from asfaload.store import Mirror
    from tests.support.mirror import Keys, forge_commit, lifecycle

    repo = tmp_path / "data" / "mirror.git"
    with Mirror.init(str(repo), durable=False) as m:
        lifecycle(m, Keys())
        tip = m.head()
    st = status(tmp_path / "data")
    assert st["tip"] == tip and st["upstream"] is None and st["read_only"] is False
    assert st["last_verified"] is None and st["last_error"] is None
    assert st["commits"] == int(
        subprocess.run(
            ["git", "--git-dir", str(repo), "rev-list", "--count", "main"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    text = cli("mirror", "status", "--repo", str(repo)).lines
    assert "upstream: (none: a primary)" in text and "last_verified: never" in text
    assert "last_error: none" in text

    cli("mirror", "verify", "--repo", str(repo))
    # TARGET is the data dir or the repository; a URL is pointed to `mirror sync`.
    assert cli("mirror", "verify", str(tmp_path / "data")).stdout.startswith(
        f"OK: {st['commits']} "
    )
    url = cli("mirror", "verify", "http://127.0.0.1:1/mirror.git", ok=False)
    assert url.returncode == 2 and "mirror sync --from URL" in url.stderr, url
    verified = status(tmp_path / "data")["last_verified"]
    assert isinstance(verified, dict) and verified["tip"] == tip and verified["by"] == "verify"
    # git never lists the status file: not in the tree, not a ref, not untracked state
    assert (repo / STATUS_FILE).is_file()
    assert subprocess.run(
        ["git", "--git-dir", str(repo), "for-each-ref", "--format=%(refname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split() == [MAIN]

    with Mirror.open(str(repo), durable=False) as m:
        forged = forge_commit(m, Change("x", {"evil.txt": b"x"}))
    assert cli("mirror", "verify", "--repo", str(repo), ok=False).returncode == 1
    after = status(tmp_path / "data")
    assert after["last_verified"] == verified  # the failure did not replace the last success
    error = after["last_error"]
    assert isinstance(error, dict) and error["by"] == "verify" and forged in str(error["message"])


def test_status_of_no_repository_is_one_line(tmp_path: Path) -> None:
    res = cli("mirror", "status", "--repo", str(tmp_path / "none.git"), ok=False)
    assert res.returncode == 1 and res.stdout == ""
    assert res.stderr.splitlines() == [f"Error: No mirror repository at {tmp_path / 'none.git'}"]
    res = cli("mirror", "status", "--repo", str(tmp_path / "none.git"), "--json", ok=False)
    assert res.returncode == 1 and "No mirror repository" in json.loads(res.stderr)["error"]


# --- failover -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from asfaload.devtools.server import ServerProcess

    server = ServerProcess(tmp_path_factory.mktemp("live") / "data").start()
    try:
        yield server.base_url
    finally:
        server.stop()


def test_client_fails_over_from_a_dead_backend_and_stays_on_the_live_one(live: str) -> None:
    with BackendClient([DEAD, live]) as api:
        assert api.ping() and api.base_url == live
        # An HTTP answer is final: a 404 from the live backend never tries the next one.
        with pytest.raises(NotFoundError):
            api.get_file("https/github.com/443/nobody/nothing/asfaload.index.json")
    with BackendClient(f"{DEAD}, {live}/") as api:  # the comma list form
        assert api.base_urls == (DEAD, live) and api.ping()
    # The live backend's 404 is final even with a dead one after it.
    with BackendClient([live, DEAD]) as api, pytest.raises(NotFoundError):
        api.get_file("nothing/here.json")


def test_every_backend_dead_is_one_error_naming_each(tmp_path: Path) -> None:
    dead2 = f"http://127.0.0.1:{free_port()}"
    with BackendClient([DEAD, dead2]) as api, pytest.raises(NetworkError) as err:
        api.ping()
    assert str(err.value).startswith("Cannot reach any backend: ")
    assert f"{DEAD}: Connection refused" in str(err.value) and dead2 in str(err.value)
    dl = "https://github.com/a/b/releases/download/v1/x"
    res = cli("download", dl, "-u", DEAD, "-u", dead2, "-o", str(tmp_path / "x"), ok=False)
    assert res.returncode == 1 and len(res.stderr.splitlines()) == 1
    assert res.stderr.startswith("Error: Cannot reach any backend: ")
    assert not (tmp_path / "x").exists()


def test_which_failures_fail_over() -> None:
    # Nothing was sent: try the next backend, whatever the method.
    for exc in (requests.ConnectionError(), requests.ConnectTimeout()):
        assert _fails_over(exc, "GET") and _fails_over(exc, "POST")
    # A read timeout may come after the server acted: only a GET is retried elsewhere.
    assert _fails_over(requests.ReadTimeout(), "GET")
    assert not _fails_over(requests.ReadTimeout(), "POST")
    assert not _fails_over(requests.TooManyRedirects(), "GET")


def test_backend_url_lists() -> None:
    assert parse_backend_urls(["http://a:1/, http://b:2", "http://a:1"]) == (
        "http://a:1",
        "http://b:2",
    )
    for bad in ("", " , ", "ftp://x", "a.example", "http://:80", "http://x:notaport"):
        with pytest.raises(FormatError):
            parse_backend_urls(bad)


def test_cli_refuses_a_bad_backend_url_and_tuf_takes_one() -> None:
    dl = "https://github.com/a/b/releases/download/v1/x"
    res = cli("download", dl, "-u", "ftp://x", ok=False)
    assert res.returncode == 2 and "Invalid backend URL" in res.stderr
    two = ("-u", "http://a:1", "-u", "http://b:2")
    res = cli("tuf", "login", "--username", "a", "-p", "x", *two, ok=False)
    assert res.returncode == 2 and "give a single URL" in res.stderr
