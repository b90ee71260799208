"""Both doors at once: signatures of one 4-of-4 release arrive together through REST and through
``git push`` over HTTP. The server's writer and git's receive-pack each move ``main`` only from
the tip they read (compare-and-swap), so neither loses the other's commits."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pygit2

from asfaload import layout
from asfaload.client.api import BackendClient
from asfaload.client.gitsign import sign_pending_by_git
from asfaload.client.signing import sign_pending
from asfaload.crypto import SecretKey
from asfaload.model import SignaturesFile
from asfaload.replication.replay import verify_repository
from asfaload.rules import RegisterRelease
from tests.support.rules import P, index_bytes
from tests.support.server import server_with_project


def test_rest_and_git_push_signatures_of_one_release_complete_it_exactly_once(
    tmp_path: Path,
) -> None:
    keys = [SecretKey.generate("ed25519") for _ in range(4)]
    rounds = 3
    with server_with_project(tmp_path / "data", P, keys) as (server, mirror):
        acknowledged: dict[str, set[str]] = {}
        errors: list[BaseException] = []
        for n in range(rounds):
            index = layout.github_release_index_path(P, f"v{n}")
            mirror.submit(RegisterRelease(index, index_bytes(f"t{n}.tgz"), keys[0].public_key))
            acknowledged[index] = set()
            barrier = threading.Barrier(4)

            def by_rest(sk: SecretKey, index: str = index, barrier=barrier) -> None:
                try:
                    barrier.wait()
                    with BackendClient(server.base_url, sk) as client:
                        sign_pending(client, sk, index)
                    acknowledged[index].add(str(sk.public_key))
                except BaseException as e:  # reported by the main thread
                    errors.append(e)

            def by_git(sk: SecretKey, index: str = index, barrier=barrier) -> None:
                try:
                    barrier.wait()
                    sign_pending_by_git(server.url("/mirror.git"), sk, index)
                    acknowledged[index].add(str(sk.public_key))
                except BaseException as e:
                    errors.append(e)

            threads = [
                threading.Thread(target=by_rest, args=(keys[0],)),
                threading.Thread(target=by_rest, args=(keys[1],)),
                threading.Thread(target=by_git, args=(keys[2],)),
                threading.Thread(target=by_git, args=(keys[3],)),
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=300)
            assert not errors, errors
        repo = pygit2.Repository(mirror.path)
        view = mirror.view()
        messages = [c.message for c in repo.walk(repo.head.target)]
        for index, signed in acknowledged.items():
            assert signed == {str(k.public_key) for k in keys}
            done = SignaturesFile.from_bytes(view.read(layout.signatures_path(index)) or b"")
            assert {str(k) for k in done.entries} == signed  # every acknowledged signature
            assert view.read(layout.pending_signatures_path(index)) is None
            completions = [m for m in messages if f"complete {index}" in m]
            assert len(completions) == 1, completions  # completed exactly once
        fsck = subprocess.run(
            ["git", "fsck", "--strict"], cwd=mirror.path, capture_output=True, text=True
        )
        assert fsck.returncode == 0 and "error" not in fsck.stderr, fsck.stderr
        report = verify_repository(mirror.path)
        assert report.ok, report.bad
