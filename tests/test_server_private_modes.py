"""Everything the server keeps under ``<data-dir>/private`` is its user's alone: files 0600,
directories 0700, SQLite's -wal/-shm/-journal files included, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import requests

from asfaload.crypto import SecretKey
from asfaload.private import private_dirs, private_file, private_sqlite
from asfaload.tuf.accounts import Accounts
from tests.support.http import signed_request
from tests.support.rules import P
from tests.support.server import (
    post_signatures,
    seed_release,
    server_with_project,
    signed_submission,
)
from tests.support.tuf import key, make_root, signed_doc
from tests.support.tuf_server import CHEAP, NOW, online_keys


def _modes(base: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(base.stat().st_mode)}
    for dirpath, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            out[str(path.relative_to(base))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def test_every_file_under_private_is_owner_only(tmp_path):
    old_umask = os.umask(0o022)  # the usual one: what the server must not rely on
    try:
        keys = [SecretKey.generate("ed25519") for _ in range(2)]
        data = tmp_path / "data"
        with server_with_project(data, P, keys) as (server, mirror):
            private = data / "private"
            # A read (its nonce recorded by the worker) and a write (by the writer process).
            reply = signed_request(server.base_url, keys[0], "GET", "/v1/pending_signatures")
            assert reply.status == 200, reply.body
            index, raw = seed_release(mirror, keys[0], "v1")
            reply = post_signatures(server, *signed_submission(keys[1], index, raw))
            assert reply.status == 200, reply.body
            # TUF: an admin, the online keys, a login and a bootstrap (tasks, app settings).
            Accounts(private).add_user("alice", "alice-password", **CHEAP)
            online = online_keys(data)
            login = requests.post(
                server.url("/login"),
                json={"username": "alice", "password": "alice-password"},
                timeout=60,
            )
            assert login.status_code == 200, login.text
            A = key()
            root = signed_doc(make_root(1, [A], 1, online, now=NOW), [A])
            settings = {"roles": {"root": {"expiration": 365}}}
            r = requests.post(
                server.url("/tuf/v1/bootstrap"),
                json={"appName": "app", "settings": settings, "metadata": {"root": root}},
                headers={"Authorization": f"Bearer {login.json()['token']}"},
                timeout=60,
            )
            assert r.status_code == 202, r.text
            modes = _modes(private)  # while the server runs: SQLite's -wal and -shm exist
        modes.update(_modes(private))
    finally:
        os.umask(old_umask)
    for name in ("nonces.sqlite3", "nonces.sqlite3-wal", "nonces.sqlite3-shm", "tuf/tasks.sqlite3"):
        assert name in modes, sorted(modes)
    assert any(n.startswith("tuf/apps/alice/app/") for n in modes), sorted(modes)
    wrong = {
        name: oct(mode)
        for name, mode in modes.items()
        if mode != (0o700 if (private / name).is_dir() or name == "." else 0o600)
    }
    assert wrong == {}


def test_files_and_directories_an_older_version_left_open_are_tightened(tmp_path):
    base = tmp_path / "private"
    base.mkdir(mode=0o755)
    os.chmod(base, 0o755)
    for name in ("n.sqlite3", "n.sqlite3-wal", "lock"):
        (base / name).write_bytes(b"")
        os.chmod(base / name, 0o644)
    private_sqlite(base / "n.sqlite3")
    os.close(private_file(base / "lock"))
    private_dirs(base / "a" / "b", base)
    modes = _modes(base)
    assert modes == {
        ".": 0o700,
        "n.sqlite3": 0o600,
        "n.sqlite3-wal": 0o600,
        "lock": 0o600,
        "a": 0o700,
        "a/b": 0o700,
    }
