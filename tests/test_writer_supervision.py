"""The writer process is supervised: SIGKILLed alone under load, writes go on, it is started
again, and nothing acknowledged is lost."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from asfaload import layout
from asfaload.client.api import BackendClient
from asfaload.client.signing import sign_pending
from asfaload.crypto import SecretKey
from asfaload.devtools.server import process_tree
from asfaload.errors import AsfaloadError
from asfaload.model import SignaturesFile
from asfaload.replication.replay import verify_repository
from asfaload.rules import RegisterRelease
from tests.support.rules import P, index_bytes
from tests.support.server import server_with_project

RELEASES = 60


def writer_pids(root: int) -> set[int]:
    return {
        pid
        for pid, (cmd, _) in process_tree(root).items()
        if "asfaload.store.writer_process" in cmd
    }


def test_sigkilled_writer_process_is_restarted_and_loses_nothing(tmp_path: Path) -> None:
    keys = [SecretKey.generate("ed25519") for _ in range(2)]
    with server_with_project(tmp_path / "data", P, keys) as (server, mirror):
        paths = [layout.github_release_index_path(P, f"w{n}") for n in range(RELEASES)]
        for n, x in enumerate(paths):
            mirror.submit(RegisterRelease(x, index_bytes(f"w{n}.tgz"), keys[0].public_key))
        (first,) = writer_pids(server.pid)
        acknowledged: list[str] = []
        refused: list[str] = []
        lock = threading.Lock()

        def signer(mine: list[str]) -> None:
            with BackendClient(server.base_url, keys[0]) as client:
                for x in mine:
                    t = time.monotonic()
                    try:
                        sign_pending(client, keys[0], x)
                    except AsfaloadError:
                        with lock:
                            refused.append(x)  # in flight when the writer died: not acknowledged
                    else:
                        with lock:
                            acknowledged.append(x)
                    assert time.monotonic() - t < 120, "a request hung"

        threads = [threading.Thread(target=signer, args=(paths[i::4],)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        os.kill(first, signal.SIGKILL)
        for t in threads:
            t.join(timeout=300)
        assert len(acknowledged) + len(refused) == RELEASES
        assert len(acknowledged) >= RELEASES // 2, refused  # writes went on after the kill
        deadline = time.monotonic() + 30
        while not (writer_pids(server.pid) - {first}) and time.monotonic() < deadline:
            time.sleep(0.1)
        (second,) = writer_pids(server.pid)
        assert second != first
        assert "starting it again" in server.log()
        # every acknowledged signature is in the mirror; a refused one may be there or not
        view = mirror.view()
        for x in acknowledged:
            env = SignaturesFile.from_bytes(view.read(layout.pending_signatures_path(x)) or b"")
            assert keys[0].public_key in env, x
        # the restarted writer takes the next writes
        with BackendClient(server.base_url, keys[1]) as client:
            sign_pending(client, keys[1], acknowledged[0])
        assert mirror.view().read(layout.signatures_path(acknowledged[0])) is not None
        assert verify_repository(mirror.path).ok


@pytest.mark.parametrize("kills", [3])
def test_the_writer_is_restarted_every_time(tmp_path: Path, kills: int) -> None:
    keys = [SecretKey.generate("ed25519")]
    with server_with_project(tmp_path / "data", P, keys) as (server, mirror):
        seen: set[int] = set()
        for n in range(kills):
            (pid,) = writer_pids(server.pid)
            assert pid not in seen
            seen.add(pid)
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while not (writer_pids(server.pid) - seen) and time.monotonic() < deadline:
                time.sleep(0.1)
            x = layout.github_release_index_path(P, f"k{n}")
            mirror.submit(RegisterRelease(x, index_bytes(f"k{n}.tgz"), keys[0].public_key))
            with BackendClient(server.base_url, keys[0]) as client:
                assert sign_pending(client, keys[0], x)
        assert len(writer_pids(server.pid) - seen) == 1


def test_an_idle_connection_to_a_dead_writer_is_replaced_before_use(tmp_path: Path) -> None:
    """A worker thread's connection to a writer that died while it was idle is not used for
    the next write (that would answer 500 although nothing was sent): it reconnects."""
    from asfaload.store import Mirror
    from asfaload.store.writer_process import WriterProcess

    path = str(tmp_path / "m.git")
    Mirror.init(path).close()
    keys = [SecretKey.generate("ed25519")]
    with WriterProcess(path) as writer:
        mirror = Mirror.open(path, writer_socket=writer.socket_path)
        try:
            from tests.support.rules import register_and_activate, signers_bytes

            register_and_activate(mirror, P, signers_bytes([(keys, 1)]), keys)
            first = writer.pid
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while writer.pid == first and time.monotonic() < deadline:
                time.sleep(0.05)
            assert writer.pid != first
            x = layout.github_release_index_path(P, "idle")
            result = mirror.submit(RegisterRelease(x, index_bytes("i.tgz"), keys[0].public_key))
            assert mirror.head() == result.commit_id
        finally:
            mirror.close()
