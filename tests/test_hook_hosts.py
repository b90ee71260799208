"""The pre-receive hook run by other git servers: ``git daemon`` in an empty environment, and the
hook directories of git hosts, installed by ``asfaload mirror install-hooks``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asfaload.client.gitsign import sign_pending_by_git
from asfaload.crypto import SecretKey
from asfaload.devtools.server import ASFALOAD, free_port
from asfaload.errors import RuleViolation
from asfaload.rules import RegisterRelease
from asfaload.store import Mirror
from tests.support.rules import INDEX, P, index_bytes, register_and_activate, signers_bytes

EMPTY_ENV = {"PATH": "/usr/bin:/bin"}


def run(
    *args: str, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=120)
    if check:
        assert res.returncode == 0, res.stderr
    return res


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[tuple[Path, list[SecretKey]]]:
    """A bare repository as a git host keeps it: a plain ``git clone --bare`` of a mirror with an
    active project and a pending release (no asfaload hooks yet)."""
    keys = [SecretKey.generate("ed25519"), SecretKey.generate("ed25519")]
    with Mirror.init(str(tmp_path / "origin.git"), durable=False) as m:
        register_and_activate(m, P, signers_bytes([(keys, 2)]), keys)
        m.submit(RegisterRelease(INDEX, index_bytes(), keys[0].public_key))
    base = tmp_path / "srv"
    base.mkdir()
    run("git", "clone", "-q", "--bare", str(tmp_path / "origin.git"), str(base / "mirror.git"))
    yield base / "mirror.git", keys


@pytest.fixture
def daemon(hosted: tuple[Path, list[SecretKey]]) -> Iterator[str]:
    """``git daemon`` serving the hosted repository for pushes, started with an empty env."""
    repo, _ = hosted
    port = free_port()
    proc = subprocess.Popen(
        [
            "env",
            "-i",
            "PATH=/usr/bin:/bin",
            "git",
            "daemon",
            "--enable=receive-pack",
            "--export-all",
            "--reuseaddr",
            "--listen=127.0.0.1",
            f"--port={port}",
            f"--base-path={repo.parent}",
            str(repo.parent),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield f"git://127.0.0.1:{port}/mirror.git"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_install_hooks_then_git_daemon_in_an_empty_environment_runs_them(
    hosted: tuple[Path, list[SecretKey]], daemon: str
) -> None:
    repo, keys = hosted
    res = run(ASFALOAD, "mirror", "install-hooks", str(repo), "--json")
    assert json.loads(res.stdout) == {
        "repo": str(repo),
        "hooks": ["hooks/pre-receive", "hooks/post-update"],
    }
    hook = (repo / "hooks" / "pre-receive").read_text()
    assert "ASFALOAD_PYTHON" not in hook and "/python" in hook
    head = run("git", "rev-parse", "main", cwd=repo).stdout
    # a signature, pushed through git daemon: accepted by the hook
    pushed = sign_pending_by_git(daemon, keys[0], INDEX)
    assert run("git", "rev-parse", "main", cwd=repo).stdout.strip() == pushed.commit_id
    # an edit the rules do not derive: refused with the hook's reason, main unchanged
    clone = repo.parent.parent / "clone"
    run("git", "clone", "-q", daemon, str(clone))
    (clone / "README").write_text("x\n")
    run("git", "add", "README", cwd=clone)
    run("git", "-c", "user.name=x", "-c", "user.email=x@y", "commit", "-qm", "x", cwd=clone)
    res = run("git", "push", "origin", "HEAD:main", cwd=clone, check=False)
    assert res.returncode != 0 and "asfaload: push rejected" in res.stderr, res.stderr
    assert run("git", "rev-parse", "main", cwd=repo).stdout.strip() == pushed.commit_id != head


def test_without_our_hooks_a_host_would_take_anything(
    hosted: tuple[Path, list[SecretKey]], daemon: str
) -> None:
    """The control for the test above: the same push lands when no hook guards the repo."""
    repo, keys = hosted
    clone = repo.parent.parent / "clone"
    run("git", "clone", "-q", daemon, str(clone))
    (clone / "README").write_text("x\n")
    run("git", "add", "README", cwd=clone)
    run("git", "-c", "user.name=x", "-c", "user.email=x@y", "commit", "-qm", "x", cwd=clone)
    assert run("git", "push", "origin", "HEAD:main", cwd=clone, check=False).returncode == 0


@pytest.mark.parametrize("hook_dir", ["hooks/pre-receive.d", "custom_hooks/pre-receive.d"])
def test_install_hooks_uses_the_hosts_hook_directory(
    hosted: tuple[Path, list[SecretKey]], hook_dir: str
) -> None:
    repo, keys = hosted
    (repo / hook_dir).mkdir(parents=True)
    host_hook = repo / "hooks" / "pre-receive"
    host_hook.write_text("#!/bin/sh\n# the host's own dispatcher\n")
    res = run(ASFALOAD, "mirror", "install-hooks", str(repo))
    assert f"Installed {hook_dir}/asfaload" in res.stdout
    assert host_hook.read_text() == "#!/bin/sh\n# the host's own dispatcher\n"
    ours = repo / hook_dir / "asfaload"
    assert os.access(ours, os.X_OK)
    # The installed hook runs in an empty environment and refuses a bad update by itself.
    zero = "0" * 40
    res = subprocess.run(
        [str(ours)],
        input=f"{zero} {zero} refs/heads/other\n",
        env={**EMPTY_ENV, "GIT_DIR": str(repo)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 1
    assert "asfaload: push rejected: only refs/heads/main can be pushed" in res.stderr


def test_install_hooks_refuses_what_is_not_a_bare_repository(tmp_path: Path) -> None:
    res = run(ASFALOAD, "mirror", "install-hooks", str(tmp_path), check=False)
    assert res.returncode != 0 and "Not a git repository" in res.stderr
    with pytest.raises(RuleViolation):
        sign_pending_by_git("", SecretKey.generate("ed25519"), INDEX)


def test_serve_repo_elsewhere_than_the_data_dir(tmp_path: Path) -> None:
    """``serve --repo`` (ASFALOAD_REPO): the mirror lives where a git host keeps it; the server
    reads and writes it there, and private/ stays in the data dir."""
    import requests

    from asfaload.devtools.server import ServerProcess

    keys = [SecretKey.generate("ed25519")]
    repo = tmp_path / "gitea" / "acme" / "asfaload.git"
    with Mirror.init(str(repo), durable=False) as m:
        register_and_activate(m, P, signers_bytes([(keys, 1)]), keys)
        m.submit(RegisterRelease(INDEX, index_bytes(), keys[0].public_key))
    server = ServerProcess(tmp_path / "data", env={"ASFALOAD_REPO": str(repo)}).start()
    try:
        assert requests.get(server.url(f"/v1/files/{INDEX}"), timeout=10).status_code == 200
        pushed = sign_pending_by_git(server.url("/mirror.git"), keys[0], INDEX)
        assert pushed.is_complete
        assert run("git", "rev-parse", "main", cwd=repo).stdout.strip() == pushed.commit_id
        assert (tmp_path / "data" / "private").is_dir()
        assert not (tmp_path / "data" / "mirror.git").exists()
    finally:
        server.stop()
