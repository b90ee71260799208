"""One owner for the mirror's packs: git never starts a gc on its own in a mirror, an operator's
gc takes the writer's repack lock, and gc run during writes loses nothing.

The writer folds its packs under ``<repo>.repack.lock`` (``asfaload.store.objects.fast.packs.Consolidator``);
git's ``gc`` repacks and deletes packs too. The mirror's config turns git's automatic gc off
(``gc.auto=0``, ``maintenance.auto=false``, ``receive.autoGc=false``), so only an operator
starts one, as ``flock mirror.git.repack.lock git -C mirror.git gc`` (docs/git.md).
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pygit2

from asfaload import layout
from asfaload.auth import sign_request
from asfaload.crypto import SecretKey, sha512
from asfaload.rules import RegisterRelease
from asfaload.store import Mirror
from asfaload.store.durable import lock_path_for
from asfaload.store.mirror import OWNED_MAINTENANCE_CONFIG
from asfaload.store.objects.fast.info import pack_names
from asfaload.store.objects.fast.packs import Consolidator
from tests.reliability.support import (
    KillableServer,
    assert_mirror_sound,
    git,
    history_messages,
    setting,
)
from tests.support.http import raw_request
from tests.support.rules import P, index_bytes, register_and_activate, sign_op, signers_bytes

RELEASES = setting("GC_RELEASES", 16)


def config(repo: str, key: str) -> str:
    return git(repo, "config", "--get", key).stdout.strip()


def test_git_never_starts_a_gc_on_its_own_in_a_mirror(tmp_path: Path) -> None:
    path = str(tmp_path / "mirror.git")
    Mirror.init(path).close()
    for key, value in OWNED_MAINTENANCE_CONFIG.items():
        assert config(path, key) == value, key
    # A mirror made before this setting gets it when it is opened.
    for key in OWNED_MAINTENANCE_CONFIG:
        git(path, "config", "--unset", key)
    Mirror.open(path).close()
    assert config(path, "gc.auto") == "0"
    assert config(path, "maintenance.auto") == "false"


def test_gc_auto_leaves_the_writers_packs_alone(tmp_path: Path) -> None:
    keys = [SecretKey.generate("ed25519") for _ in range(2)]
    path = str(tmp_path / "mirror.git")
    mirror = Mirror.init(path)
    try:
        register_and_activate(mirror, P, signers_bytes([(keys, 2)], admin=[([keys[0]], 1)]), keys)
        for n in range(4):
            x = layout.github_release_index_path(P, f"g{n}")
            mirror.submit(RegisterRelease(x, index_bytes(f"g{n}.tgz"), keys[0].public_key))
    finally:
        mirror.close()
    before = pack_names(path)
    assert len(before) > 2
    # Even told that one pack is too many, git's automatic gc does nothing in a mirror...
    # (autoDetach off: a detached gc would still be running when the packs are listed)
    auto = git(path, "-c", "gc.autoDetach=false", "-c", "gc.autoPackLimit=2", "gc", "--auto")
    assert auto.returncode == 0, auto.stderr
    assert pack_names(path) == before
    # ... where it would repack otherwise (the check above can fail).
    control = git(
        path,
        "-c",
        "gc.autoDetach=false",
        "-c",
        "gc.auto=1",
        "-c",
        "gc.autoPackLimit=2",
        "gc",
        "--auto",
    )
    assert control.returncode == 0, control.stderr
    assert pack_names(path) != before
    assert_mirror_sound(path)


def test_folds_wait_while_an_operator_gc_holds_the_repack_lock(tmp_path: Path) -> None:
    keys = [SecretKey.generate("ed25519") for _ in range(2)]
    path = str(tmp_path / "mirror.git")
    mirror = Mirror.init(path)
    try:
        register_and_activate(mirror, P, signers_bytes([(keys, 2)], admin=[([keys[0]], 1)]), keys)
        for n in range(6):
            x = layout.github_release_index_path(P, f"h{n}")
            mirror.submit(RegisterRelease(x, index_bytes(f"h{n}.tgz"), keys[0].public_key))
            mirror.submit(sign_op(mirror.view(), x, keys[0]))
    finally:
        mirror.close()
    before = pack_names(path)
    # The operator's documented command, with `sleep` standing for a long gc.
    holder = subprocess.Popen(
        ["flock", lock_path_for(path, "repack"), "sh", "-c", "echo held; exec sleep 60"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # flock and the sleep holding the lock die together
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        folds = Consolidator(path, lambda: None, fan_in=2)
        assert folds.run() is False
        assert pack_names(path) == before
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    # The lock goes when the last process holding it has exited: the sleep may outlive flock's
    # own exit by a moment, so the fold is tried until then.
    ran = False
    for _ in range(100):
        ran = folds.run()
        if ran:
            break
        time.sleep(0.05)
    assert ran
    assert len(pack_names(path)) < len(before)
    assert_mirror_sound(path)


def test_operator_gc_during_writes_loses_nothing(tmp_path: Path) -> None:
    keys = [SecretKey.generate("ed25519") for _ in range(3)]
    server = KillableServer(tmp_path / "data", workers=2).start()
    repo = str(server.data_dir / "mirror.git")
    mirror = Mirror.open(repo)
    try:
        register_and_activate(mirror, P, signers_bytes([(keys, 3)], admin=[([keys[0]], 1)]), keys)
        indexes = {}
        for n in range(RELEASES):
            x = layout.github_release_index_path(P, f"c{n}")
            indexes[x] = index_bytes(f"c{n}.tgz")
            mirror.submit(RegisterRelease(x, indexes[x], keys[0].public_key))
        acked: list[tuple[str, int]] = []
        failures: list[str] = []
        lock = threading.Lock()

        def signer(k: int) -> None:
            for x, data in indexes.items():
                doc = {
                    "file_path": x,
                    "public_key": str(keys[k].public_key),
                    "signatures": {x: keys[k].sign(sha512(data)).to_wire()},
                }
                body = json.dumps(doc).encode()
                headers = sign_request(keys[k], "POST", "/v1/signatures", body)
                reply = raw_request(server.base_url, "POST", "/v1/signatures", body, headers)
                with lock:
                    if reply.status == 200:
                        acked.append((x, k))
                    else:
                        failures.append(f"{x} by {k}: {reply.status} {reply.body[:200]!r}")

        threads = [threading.Thread(target=signer, args=(k,)) for k in range(len(keys))]
        for t in threads:
            t.start()
        gcs: collections.Counter[str] = collections.Counter()
        repack_lock = lock_path_for(repo, "repack")
        commands = [
            ["flock", repack_lock, "git", "-C", repo, "gc", "--quiet"],
            ["flock", repack_lock, "git", "-C", repo, "maintenance", "run", "--task=gc"],
            ["git", "-C", repo, "gc", "--auto"],
        ]
        while any(t.is_alive() for t in threads) or sum(gcs.values()) < len(commands):
            cmd = commands[sum(gcs.values()) % len(commands)]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            assert res.returncode == 0, res.stderr
            gcs[cmd[-1] if cmd[0] == "git" else cmd[4]] += 1
            time.sleep(0.05)
        for t in threads:
            t.join(timeout=600)
            assert not t.is_alive()
        assert not failures, failures[:3]
        assert len(acked) == RELEASES * len(keys)
        parts = collections.Counter(
            part for message in history_messages(repo) for part in message.split("; ")
        )
        for x, k in acked:
            assert parts[f"sign {x} by {keys[k].public_key}"] == 1
        for x in indexes:
            assert parts[f"complete {x}"] == 1
            assert mirror.view().read(layout.signatures_path(x)) is not None
        assert all(gcs.values()), gcs
        # gc packed the refs; the writer kept moving main through them.
        assert pygit2.Repository(repo).references.get("refs/heads/main") is not None
        assert_mirror_sound(repo)
    finally:
        mirror.close()
        server.stop()
