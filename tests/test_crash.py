"""Crash safety: a process writing real operations through the store is SIGKILLed at random moments.

After every kill the mirror must open, `git fsck --strict` must be clean, the whole history must
replay through the rules engine (`asfaload mirror verify`), and every operation the writer
acknowledged (printed after `submit` returned) must be in the history exactly once.
"""

from __future__ import annotations

import collections
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pygit2
import pytest

from asfaload.replication.replay import verify_range
from asfaload.store import Mirror
from asfaload.store.durable import WriterLock, lock_path_for

# Every test here, once for each object store of the writer (conftest.object_store).
pytestmark = pytest.mark.usefixtures("object_store")

ROOT = Path(__file__).resolve().parent.parent
ASFALOAD = str(ROOT / ".venv" / "bin" / "asfaload")
ROUNDS = 20

# Each run registers its own project (so runs never depend on one another's half-done work),
# activates it, then registers and signs releases forever, three at a time so that the writer
# really groups commits. It prints one ACK line per acknowledged operation.
CHILD = textwrap.dedent(
    """
    import sys
    from asfaload import layout
    from asfaload.crypto import SecretKey
    from asfaload.rules import Register, RegisterRelease
    from asfaload.model.index import PublishedFile, ReleaseIndex
    from asfaload.store import Mirror
    from tests.support.rules import metadata_bytes, sign_op, signers_bytes

    def index_bytes(path):
        url = "https://github.com/acme/tool/releases/download/x/" + path.replace("/", "_")
        return ReleaseIndex.create([PublishedFile("t.tgz", "Sha256", url, "ab" * 32)], 1700000000).to_bytes()

    path, run = sys.argv[1], sys.argv[2]
    project = f"https/github.com/443/acme/crash{run}"
    url = f"https://github.com/acme/crash{run}/blob/main/asfaload.signers.json"
    a, b, ad = (SecretKey.generate("ed25519") for _ in range(3))
    m = Mirror.open(path)
    print("READY", flush=True)

    def ack(futures):
        for f in futures:
            print("ACK", f.result().change.message, flush=True)

    raw = signers_bytes([([a, b], 2)], admin=[([ad], 1)])
    ack([m.submit_async(Register(project, raw, metadata_bytes(raw, url), ad.public_key))])
    pending = layout.signers_file_path(project, pending=True)
    for k in (a, b, ad):
        ack([m.submit_async(sign_op(m.view(), pending, k))])
    i = 0
    while True:
        tags = [layout.github_release_index_path(project, f"v{i + j}") for j in range(3)]
        ack([m.submit_async(RegisterRelease(t, index_bytes(t), a.public_key)) for t in tags])
        for k in (a, b):
            view = m.view()
            ack([m.submit_async(sign_op(view, t, k)) for t in tags])
        i += 3
    """
)


def git(repo: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)


def history_messages(repo: str) -> list[str]:
    out = git(repo, "log", "--format=%B%x00", "refs/heads/main").stdout
    return [m.strip("\n") for m in out.split("\x00") if m.strip("\n")]


def test_sigkill_at_random_moments(tmp_path: Path) -> None:
    path = str(tmp_path / "mirror.git")
    Mirror.init(path).close()
    rnd = random.Random(20261121)
    acked: list[str] = []
    verified = git(path, "rev-parse", "refs/heads/main").stdout.strip()
    for run in range(ROUNDS):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, path, str(run)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == "READY\n"
        # Kill only once the writer is under way (its registration is acknowledged), so every
        # kill lands somewhere in the endless stream of writes, not during start-up.
        first = child.stdout.readline()
        assert first.startswith("ACK register "), first
        acked.append(first[4:].rstrip("\n"))
        time.sleep(rnd.uniform(0.0, 0.5))
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate(timeout=60)
        assert child.returncode == -signal.SIGKILL, "the writer must still be running when killed"
        # A line the kill cut off before its newline was never fully acknowledged: skip it.
        lines = rest.splitlines(keepends=True)
        acked += [ln[4:-1] for ln in lines if ln.startswith("ACK ") and ln.endswith("\n")]

        reopened = Mirror.open(path)
        reopened.close()
        # A repack the killed writer had started runs on to its end (git is crash-safe); fsck
        # run alongside it could see a pack being replaced, so wait for it like a human would.
        with WriterLock(lock_path_for(path, "repack")):
            pass
        fsck = git(path, "fsck", "--strict", "--no-dangling")
        assert fsck.returncode == 0 and fsck.stdout == "", fsck.stdout + fsck.stderr
        # Replay what this run added, on top of the history verified after the previous kill
        # (verify_range also refuses it if that history was rewritten); the whole history is
        # replayed again by the CLI at the end.
        head = git(path, "rev-parse", "refs/heads/main").stdout.strip()
        report = verify_range(pygit2.Repository(path), verified, head)
        assert report.ok, report.bad
        verified = head
        counts = collections.Counter(history_messages(path))
        missing = [m for m in acked if counts[m] != 1]
        assert not missing, f"acknowledged operations not in history exactly once: {missing[:3]}"

    cli = subprocess.run(
        [ASFALOAD, "mirror", "verify", "--repo", path], capture_output=True, text=True
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
