"""Load and faults: many clients sign over REST and by git push, list what is pending and read
files, while the whole server (master, workers, writer process, git) is SIGKILLed at random and
started again on the same data dir.

Afterwards: every acknowledged signature is in the history exactly once and no signature twice;
every release completed at most once, and exactly when all its signatures are in; no half-applied
transition (each release is pending or complete, never both nor neither; ``mirror verify``
replays every commit); ``git fsck --strict`` is clean; the server's pending answers equal a
fresh rebuild of the pending index; and every request acknowledged before a kill, replayed after
it, is refused 401 (its nonce survived).

Bounded for ``make test`` (16 clients, 3 kills); ``make soak`` sets ``ASFALOAD_SOAK_CLIENTS``
(64), ``ASFALOAD_SOAK_KILLS`` (20+) and ``ASFALOAD_SOAK_RELEASES``.
"""

from __future__ import annotations

import collections
import http.client
import json
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from asfaload import layout
from asfaload.auth import sign_request
from asfaload.client.gitsign import sign_pending_by_git
from asfaload.crypto import SecretKey, sha512
from asfaload.errors import AsfaloadError, ConflictError, NetworkError
from asfaload.model import SignaturesFile
from asfaload.rules import RegisterRelease
from asfaload.service.pending import RulesPendingPolicy
from asfaload.store import Mirror
from asfaload.store.pending import PendingIndex
from tests.reliability.support import (
    HANG_SECONDS,
    KillableServer,
    assert_mirror_sound,
    history_messages,
    pending_from_server,
    report,
    setting,
)
from tests.support.http import raw_request
from tests.support.rules import P, register_and_activate, signers_bytes

CLIENTS = setting("CLIENTS", 16)
KILLS = setting("KILLS", 3)
RELEASES = setting("RELEASES", 24)
KEYS = 4  # every key needed: a release completes with its fourth signature
REPLAYS_PER_KILL = 8
MAX_ATTEMPTS = 400  # per signature; only a server that never comes back uses them up


def release_index(n: int) -> bytes:
    from asfaload.model.index import PublishedFile, ReleaseIndex

    url = f"https://github.com/acme/tool/releases/download/r{n}/tool-{n}.tgz"
    return ReleaseIndex.create(
        [PublishedFile(f"tool-{n}.tgz", "Sha256", url, f"{n:064x}")], 1_700_000_000
    ).to_bytes()


def applied_before(refusal: str) -> bool:
    """The refusal of a signature that an earlier attempt, whose answer was lost, applied: the
    key already signed, or its signature was the last one and completed the release."""
    return "already collected" in refusal or "already complete" in refusal


@dataclass
class Replayable:
    """A request the server acknowledged (200), with the exact bytes to send again."""

    method: str
    target: str
    body: bytes
    headers: dict[str, str]
    kills_before: int  # kills done when the answer arrived


@dataclass
class Outcome:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acked: set[tuple[str, int]] = field(default_factory=set)
    applied_unacked: set[tuple[str, int]] = field(default_factory=set)
    uncertain: int = 0
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    unexpected: list[str] = field(default_factory=list)
    write_latencies: list[float] = field(default_factory=list)
    reads: int = 0
    replayable: list[Replayable] = field(default_factory=list)
    replays: list[tuple[str, int, bytes]] = field(default_factory=list)
    replayed: list[Replayable] = field(default_factory=list)
    kills: int = 0


def test_load_with_whole_server_sigkills(tmp_path: Path) -> None:
    rnd = random.Random(20261117)
    keys = [SecretKey.generate("ed25519") for _ in range(KEYS)]
    server = KillableServer(tmp_path / "data", workers=2).start()
    repo = str(server.data_dir / "mirror.git")
    mirror = Mirror.open(repo)
    try:
        signers = signers_bytes(artifact=[(keys, KEYS)], admin=[([keys[0]], 1)])
        register_and_activate(mirror, P, signers, keys)
        indexes: dict[str, bytes] = {}
        for n in range(RELEASES):
            x = layout.github_release_index_path(P, f"r{n}")
            indexes[x] = release_index(n)
            mirror.submit(RegisterRelease(x, indexes[x], keys[0].public_key))
        releases = sorted(indexes)
        # Every third release never gets the last key's signature: pending listings stay
        # non-empty and the index has something to disagree about.
        pairs = [
            (x, k)
            for i, x in enumerate(releases)
            for k in range(KEYS)
            if not (i % 3 == 2 and k == KEYS - 1)
        ]
        rnd.shuffle(pairs)
        out = run_load(server, keys, indexes, pairs, rnd)
        check_outcome(server, mirror, keys, releases, pairs, out, tmp_path)
    finally:
        mirror.close()
        server.stop()


def run_load(
    server: KillableServer,
    keys: list[SecretKey],
    indexes: dict[str, bytes],
    pairs: list[tuple[str, int]],
    rnd: random.Random,
) -> Outcome:
    out = Outcome()
    work: queue.Queue[tuple[str, int, int]] = queue.Queue()
    for x, k in pairs:
        work.put((x, k, 0))
    left = [len(pairs)]  # signatures not yet settled (acknowledged or known applied)
    killer_done = threading.Event()

    def settle(pair: tuple[str, int], acked: bool) -> None:
        with out.lock:
            (out.acked if acked else out.applied_unacked).add(pair)
            left[0] -= 1

    def finished() -> bool:
        with out.lock:
            return left[0] == 0 and killer_done.is_set()

    def retry(x: str, k: int, attempts: int) -> None:
        with out.lock:
            out.uncertain += 1
        assert attempts + 1 < MAX_ATTEMPTS, f"the signature of {x} by key {k} never got through"
        time.sleep(0.1 + rnd.random() * 0.2)
        work.put((x, k, attempts + 1))

    def rest_signer() -> None:
        while not finished():
            try:
                x, k, attempts = work.get(timeout=0.2)
            except queue.Empty:
                continue
            key = keys[k]
            doc = {
                "file_path": x,
                "public_key": str(key.public_key),
                "signatures": {x: key.sign(sha512(indexes[x])).to_wire()},
            }
            body = json.dumps(doc).encode()
            headers = sign_request(key, "POST", "/v1/signatures", body)
            t0 = time.monotonic()
            try:
                reply = raw_request(server.base_url, "POST", "/v1/signatures", body, headers)
            except (OSError, http.client.HTTPException):
                # Cut by a kill or refused during a restart: not acknowledged.
                assert time.monotonic() - t0 < HANG_SECONDS, "a request hung"
                retry(x, k, attempts)
                continue
            took = time.monotonic() - t0
            with out.lock:
                out.statuses[reply.status] += 1
            if reply.status == 200:
                with out.lock:
                    out.write_latencies.append(took)
                    out.replayable.append(
                        Replayable("POST", "/v1/signatures", body, headers, out.kills)
                    )
                settle((x, k), True)
            elif reply.status == 409 and attempts > 0 and applied_before(reply.body.decode()):
                settle((x, k), False)  # an earlier attempt was applied, its answer lost
            elif reply.status == 503:
                retry(x, k, attempts)  # a worker refusing while the server stops or starts
            else:
                with out.lock:
                    out.unexpected.append(f"POST {x} by {k}: {reply.status} {reply.body[:200]!r}")
                settle((x, k), False)

    def git_signer() -> None:
        while not finished():
            try:
                x, k, attempts = work.get(timeout=0.2)
            except queue.Empty:
                continue
            t0 = time.monotonic()
            try:
                sign_pending_by_git(server.url("/mirror.git"), keys[k], x)
            except ConflictError as e:
                if attempts > 0 and applied_before(str(e)):
                    settle((x, k), False)
                else:
                    with out.lock:
                        out.unexpected.append(f"push {x} by {k}: {e}")
                    settle((x, k), False)
            except AsfaloadError as e:
                # A push cut by a kill (NetworkError, or git's own account of the cut): retry.
                assert time.monotonic() - t0 < HANG_SECONDS, f"a push hung: {e}"
                if not isinstance(e, NetworkError | ConflictError):
                    with out.lock:
                        out.statuses[-1] += 1  # a push refused mid-kill, counted apart
                retry(x, k, attempts)
            else:
                settle((x, k), True)

    def reader(n: int) -> None:
        mine = random.Random(n)
        names = sorted(indexes)
        while not finished():
            x = mine.choice(names)
            what = mine.randrange(3)
            try:
                if what == 0:
                    key = keys[mine.randrange(KEYS)]
                    target = "/v1/pending_signatures"
                    headers = sign_request(key, "GET", target)
                    reply = raw_request(server.base_url, "GET", target, b"", headers)
                    if reply.status == 200:
                        with out.lock:
                            out.replayable.append(
                                Replayable("GET", target, b"", headers, out.kills)
                            )
                elif what == 1:
                    reply = raw_request(server.base_url, "GET", "/v1/files/" + x)
                    if reply.status == 200 and reply.body != indexes[x]:
                        with out.lock:
                            out.unexpected.append(f"GET /v1/files/{x}: other bytes")
                else:
                    reply = raw_request(server.base_url, "GET", "/v1/signatures/" + x)
            except (OSError, http.client.HTTPException):
                time.sleep(0.1)
                continue
            with out.lock:
                out.reads += 1
                out.statuses[reply.status] += 1
                if reply.status != 200 and reply.status != 503:
                    out.unexpected.append(f"read {what} {x}: {reply.status} {reply.body[:200]!r}")
            time.sleep(0.02)

    def killer() -> None:
        try:
            for _ in range(KILLS):
                time.sleep(0.5 + rnd.random() * 1.5)
                server.kill()
                with out.lock:
                    out.kills += 1
                time.sleep(rnd.random() * 0.3)
                server.start()
                # Replay, on the restarted server, the latest reads and writes acknowledged
                # before the kill (well inside their timestamp window: only the nonce can
                # refuse them).
                with out.lock:
                    before = [r for r in out.replayable if r.kills_before < out.kills]
                    replayed = {id(r) for r in out.replayed}
                chosen = [
                    r
                    for method in ("GET", "POST")
                    for r in [r for r in before if r.method == method][-REPLAYS_PER_KILL // 2 :]
                    if id(r) not in replayed
                ]
                for r in chosen:
                    reply = raw_request(server.base_url, r.method, r.target, r.body, r.headers)
                    with out.lock:
                        out.replayed.append(r)
                        out.replays.append((r.method, reply.status, reply.body[:200]))
        finally:
            killer_done.set()

    roles = []
    for i in range(CLIENTS):
        kind = i % 4
        if kind == 0:
            roles.append(threading.Thread(target=git_signer, name=f"git-{i}"))
        elif kind == 3:
            roles.append(threading.Thread(target=reader, args=(i,), name=f"read-{i}"))
        else:
            roles.append(threading.Thread(target=rest_signer, name=f"rest-{i}"))
    started = time.monotonic()
    kill_thread = threading.Thread(target=killer, name="killer")
    for t in [*roles, kill_thread]:
        t.start()
    kill_thread.join()
    for t in roles:
        t.join(timeout=900)
        assert not t.is_alive(), f"{t.name} hung"
    wall = time.monotonic() - started
    lat = sorted(out.write_latencies)
    report(
        "load_faults",
        {
            "clients": CLIENTS,
            "kills": out.kills,
            "releases": len(indexes),
            "signatures": len(pairs),
            "acknowledged": len(out.acked),
            "applied_unacknowledged": len(out.applied_unacked),
            "retried_attempts": out.uncertain,
            "reads": out.reads,
            "replays_refused": sum(1 for _, st, _ in out.replays if st == 401),
            "replays": len(out.replays),
            "seconds": round(wall, 2),
            "writes_per_second": round(len(out.acked) / wall, 2),
            "rest_write_p50_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
            "rest_write_p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 1) if lat else None,
        },
    )
    return out


def check_outcome(
    server: KillableServer,
    mirror: Mirror,
    keys: list[SecretKey],
    releases: list[str],
    pairs: list[tuple[str, int]],
    out: Outcome,
    tmp_path: Path,
) -> None:
    assert out.kills == KILLS
    assert not out.unexpected, out.unexpected[:5]
    assert not [s for s in out.statuses if s >= 500 and s != 503], out.statuses
    assert out.acked, "nothing was acknowledged"
    assert len(out.acked) + len(out.applied_unacked) == len(pairs)

    # Each signature at most once in the history, each acknowledged one exactly once; each
    # release completed at most once.
    parts = collections.Counter(
        part for message in history_messages(mirror.path) for part in message.split("; ")
    )
    pk = {str(k.public_key): n for n, k in enumerate(keys)}
    for x in releases:
        for n, k in enumerate(keys):
            count = parts[f"sign {x} by {k.public_key}"]
            assert count <= 1, (x, n, count)
            if (x, n) in out.acked:
                assert count == 1, (x, n)
        assert parts[f"complete {x}"] <= 1, x

    # No half-applied transition: pending or complete, with the signatures it should hold.
    view = mirror.view()
    for x in releases:
        pending = view.read(layout.pending_signatures_path(x))
        done = view.read(layout.signatures_path(x))
        assert (pending is None) != (done is None), x
        env = SignaturesFile.from_bytes(pending if done is None else done)
        signed = {pk[str(key)] for key in env.entries}
        expected = {n for (y, n) in out.acked | out.applied_unacked if y == x}
        assert signed == expected, (x, signed, expected)
        if done is not None:
            assert signed == set(range(KEYS)), x
            assert view.read(layout.local_signers_path(x)) is not None, x
            assert parts[f"complete {x}"] == 1, x

    assert_mirror_sound(mirror.path)

    # The server's pending answers equal a fresh rebuild of the pending index.
    index = PendingIndex(mirror.path, str(tmp_path / "rebuilt.json"), RulesPendingPolicy())
    index.rebuild()
    for key in keys:
        assert pending_from_server(server.base_url, key) == index.for_signer(str(key.public_key))
    assert index.for_signer(str(keys[-1].public_key)), "nothing left pending: a weak check"

    # Nonces survive the kills: requests acknowledged before a kill, replayed after it.
    assert {m for m, _, _ in out.replays} == {"GET", "POST"}, out.replays
    refused = [(m, st) for m, st, body in out.replays if st == 401 and b"Replay" in body]
    assert len(refused) == len(out.replays), out.replays
