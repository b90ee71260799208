"""16 threads submitting real operations to one store at once.

The store's own concurrency test uses synthetic operations; this one uses the rules engine's
operations, contending on the same pending request, so the writer must apply each on the tree
its predecessor in the batch produced. Every acknowledged operation must be in the history
exactly once, rejected ones not at all, `git fsck --strict` must be clean and the history must
replay through the rules.
"""

from __future__ import annotations

import collections
import subprocess
import threading
from pathlib import Path

import pytest

from asfaload import layout
from asfaload.crypto import SecretKey
from asfaload.errors import AsfaloadError
from asfaload.replication.replay import verify_repository
from asfaload.rules import FileStatus, Register, RegisterRelease, file_status
from asfaload.store import Mirror
from tests.support.mirror import index_bytes
from tests.support.rules import P, metadata_bytes, sign_op, signers_bytes

# Once for each object store of the writer (conftest.object_store).
pytestmark = pytest.mark.usefixtures("object_store")

THREADS = 16


def history_messages(repo: str) -> list[str]:
    out = subprocess.run(
        ["git", "log", "--format=%B%x00", "refs/heads/main"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [m.strip("\n") for m in out.split("\x00") if m.strip("\n")]


def test_sixteen_threads_real_operations(tmp_path: Path) -> None:
    keys = [SecretKey.generate("ed25519") for _ in range(THREADS)]
    # Every thread's key is an artifact signer (threshold: all 16) and an admin.
    raw = signers_bytes([(keys, THREADS)], admin=[(keys, 1)])
    m = Mirror.init(str(tmp_path / "mirror.git"))
    try:
        m.submit(Register(P, raw, metadata_bytes(raw), keys[0].public_key))
        pending_sf = layout.signers_file_path(P, pending=True)
        acked: list[str] = []
        rejected: list[str] = []
        lock = threading.Lock()
        barrier = threading.Barrier(THREADS)

        def worker(t: int) -> None:
            sk = keys[t]
            barrier.wait()
            # 1. all 16 sign the same pending signers request (the last one activates it)
            res = m.submit(sign_op(m.view(), pending_sf, sk))
            with lock:
                acked.append(res.change.message)
            # 2. all 16 race to register the same release: exactly one wins
            shared = layout.github_release_index_path(P, "shared")
            barrier.wait()
            try:
                res = m.submit(RegisterRelease(shared, index_bytes("shared"), sk.public_key))
            except AsfaloadError as e:
                with lock:
                    rejected.append(str(e))
            else:
                with lock:
                    acked.append(res.change.message)
            # 3. each registers its own release, then all sign the shared one concurrently
            own = layout.github_release_index_path(P, f"t{t}")
            res = m.submit(RegisterRelease(own, index_bytes(f"t{t}"), sk.public_key))
            with lock:
                acked.append(res.change.message)
            barrier.wait()
            res = m.submit(sign_op(m.view(), shared, sk))
            with lock:
                acked.append(res.change.message)

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()

        assert len(rejected) == THREADS - 1, rejected
        assert all("already registered" in r for r in rejected)
        assert len(acked) == 3 * THREADS + 1
        counts = collections.Counter(history_messages(m.path))
        assert all(counts[a] == 1 for a in acked), "every acknowledged op exactly once"
        # init + register + the acknowledged ops, nothing else
        assert sum(counts.values()) == 2 + len(acked)
        view = m.view()
        assert view.read(layout.signers_file_path(P)) == raw
        shared = layout.github_release_index_path(P, "shared")
        assert file_status(view, shared) is FileStatus.COMPLETE
        fsck = subprocess.run(
            ["git", "fsck", "--strict"], cwd=m.path, capture_output=True, text=True
        )
        assert fsck.returncode == 0 and "error" not in fsck.stderr, fsck.stderr
        report = verify_repository(m.path)
        assert report.ok, report.bad
        assert report.checked == 2 + len(acked)
    finally:
        m.close()
