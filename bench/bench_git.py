"""Benchmark (not a test): the git half, each figure a ratio against a baseline of the same run.

- clone of a 100k-file mirror over smart HTTP from ``asfaload serve`` ÷ from git's own
  ``git http-backend`` behind a plain CGI server (Python's ``http.server``), same repository,
  same protocol (v0, which the plain CGI server can pass on);
- ``mirror verify``: full-history replay in commits/s, and its cost per commit on a 100k-file
  mirror ÷ on a 1k-file one;
- incremental ``mirror sync`` of 100 new commits on a 100k-file mirror ÷ on a 1k-file one;
- ``GET /v1/files`` throughput on a read-only mirror ÷ on the primary (same data);
- a signature acknowledged through ``git push`` over HTTP ÷ through REST, latency (reported).

Prints one Markdown section on stdout for ``bench/run.py``.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pygit2
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asfaload import layout  # noqa: E402
from asfaload.client.api import BackendClient  # noqa: E402
from asfaload.client.gitsign import (  # noqa: E402
    VERIFIED_REF,
    sign_pending_by_git,
    signing_clone_path,
)
from asfaload.client.signing import sign_pending  # noqa: E402
from asfaload.crypto import SecretKey, sha512  # noqa: E402
from asfaload.devtools.server import ServerProcess, free_port  # noqa: E402
from asfaload.replication.replay import verify_range  # noqa: E402
from asfaload.replication.sync import create_readonly_mirror, sync  # noqa: E402
from asfaload.rules import AddSignatures, pending_request  # noqa: E402
from asfaload.store import MAIN, Mirror  # noqa: E402
from bench.support import Ops, build_mirror, template_project, wait_for_index  # noqa: E402

SIZES = (1_000, 100_000)
HISTORY_RELEASES = 400  # 3 commits each: registration, two signatures (the second completes)
SYNC_COMMITS = 100
ROUNDS = 5
FILES_SECONDS = 3.0
FILES_CLIENTS = 8
LATENCY_SAMPLES = 15
CLONE_TARGET = 1.1
REPLAY_TARGET = 1000.0
SYNC_TARGET = 1.2
READ_ONLY_TARGET = 0.9


def sign_op(m: Mirror, subject: str, sk: SecretKey) -> AddSignatures:
    view = m.view()
    req = pending_request(view, subject)
    sigs = {f: sk.sign(sha512(view.read(f) or b"")) for f in req.files}
    return AddSignatures(subject, sk.public_key, sigs)


class World:
    """A mirror of about ``n_files`` files in a data dir, with a history of real operations."""

    def __init__(
        self, workdir: Path, n_files: int, filler: dict[str, bytes], keys: list[SecretKey]
    ):
        self.keys = keys
        self.data_dir = workdir / f"data-{n_files}"
        self.data_dir.mkdir()
        self.repo_path = str(self.data_dir / "mirror.git")
        m, self.files, project = build_mirror(
            self.repo_path, n_files, filler, template_project(*keys)
        )
        self.mirror = m
        self.ops = Ops(project, keys[0])
        self.base = str(pygit2.Repository(self.repo_path).references[MAIN].target)
        self.add_releases(HISTORY_RELEASES)
        self.tip = self.mirror.head()
        self.commits = 3 * HISTORY_RELEASES

    def add_releases(self, n: int) -> None:
        a, b, _ = self.keys
        for _ in range(n):
            op = self.ops.next()
            self.mirror.submit(op)
            self.mirror.submit(sign_op(self.mirror, op.index_path, a))
            self.mirror.submit(sign_op(self.mirror, op.index_path, b))

    def add_commits(self, n: int) -> None:
        a, _, _ = self.keys
        for _ in range(n // 2):
            op = self.ops.next()
            self.mirror.submit(op)
            self.mirror.submit(sign_op(self.mirror, op.index_path, a))

    def replay(self) -> float:
        repo = pygit2.Repository(self.repo_path)
        t = time.perf_counter()
        report = verify_range(repo, self.base, self.tip)
        elapsed = time.perf_counter() - t
        assert report.ok and report.checked == self.commits, report
        return elapsed


def seed_signing_clone(remote: str, world: World) -> None:
    """The signing clone of a signer who verified this mirror before, up to the commit under
    the measured history (the filler commit below it is no operation the rules derive, so a
    first replay from the root would refuse it): ``sign-pending --git`` then replays only the
    history since, as it does for any signer in steady use."""
    path = signing_clone_path(remote)
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "clone", "-q", "--bare", world.repo_path, str(path)], check=True)
    repo = pygit2.Repository(str(path))
    repo.references.create(VERIFIED_REF, pygit2.Oid(hex=world.base), force=True)


def median_alternating(fns: list[Callable[[], float]], rounds: int) -> list[float]:
    """Each function's median over ``rounds``, run in turn, so the machine's noise falls on all."""
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            samples[i].append(fn())
    return [statistics.median(s) for s in samples]


def seed_read_only(path: str, primary: str) -> None:
    """A read-only mirror holding the primary's main as it is, by a plain fetch: the filler
    commit that makes a mirror big in a second is no real operation, so a first sync (which
    replays all history) would refuse it. Later syncs verify every new commit."""
    create_readonly_mirror(path, primary)
    subprocess.run(
        ["git", "fetch", "-q", primary, f"{MAIN}:{MAIN}"], cwd=path, check=True, timeout=600
    )


# --- clone ---------------------------------------------------------------------------------------
class PlainCgiServer:
    """``git http-backend`` behind Python's CGI server: git's own program with nothing around it."""

    def __init__(self, workdir: Path, project_root: Path) -> None:
        self.dir = workdir / "cgi"
        (self.dir / "cgi-bin").mkdir(parents=True)
        backend = subprocess.run(
            ["git", "--exec-path"], capture_output=True, text=True, check=True
        ).stdout.strip()
        os.symlink(os.path.join(backend, "git-http-backend"), self.dir / "cgi-bin" / "git")
        self.port = free_port()
        env = {
            **os.environ,
            "GIT_PROJECT_ROOT": str(project_root),
            "GIT_HTTP_EXPORT_ALL": "1",
        }
        code = (
            "import functools, http.server, os, sys\n"
            # As root it would run scripts as nobody, who may not read the repository.
            "http.server.nobody_uid = os.getuid\n"
            "h = functools.partial(http.server.CGIHTTPRequestHandler, directory=sys.argv[1])\n"
            "http.server.CGIHTTPRequestHandler.log_message = lambda *a: None\n"
            "http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[2])), h).serve_forever()\n"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(self.dir), str(self.port)],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError("the CGI server did not start")

    def url(self, repo_name: str) -> str:
        return f"http://127.0.0.1:{self.port}/cgi-bin/git/{repo_name}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def clone_seconds(url: str, workdir: Path, tip: str) -> float:
    target = workdir / "clone.git"
    shutil.rmtree(target, ignore_errors=True)
    t = time.perf_counter()
    subprocess.run(
        ["git", "-c", "protocol.version=0", "clone", "-q", "--bare", url, str(target)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    elapsed = time.perf_counter() - t
    # Both sides must have cloned the whole mirror, or the comparison means nothing.
    head = pygit2.Repository(str(target)).references[MAIN].target
    assert str(head) == tip, (url, head, tip)
    shutil.rmtree(target)
    return elapsed


# --- reads ---------------------------------------------------------------------------------------
def files_per_second(base_url: str, path: str) -> float:
    """``GET /v1/files/<path>`` from ``FILES_CLIENTS`` keep-alive clients for a few seconds."""
    count = [0] * FILES_CLIENTS
    stop = time.monotonic() + FILES_SECONDS

    def client(i: int) -> None:
        with requests.Session() as s:
            while time.monotonic() < stop:
                r = s.get(f"{base_url}/v1/files/{path}", timeout=30)
                assert r.status_code == 200, r.text
                count[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(FILES_CLIENTS)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sum(count) / (time.perf_counter() - t)


def ms(x: float) -> str:
    return f"{x * 1000:.1f} ms"


def met(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def main() -> int:
    keys = [SecretKey.generate("ed25519") for _ in range(3)]
    filler = template_project(*(SecretKey.generate("ed25519") for _ in range(3)))
    with tempfile.TemporaryDirectory(prefix="bench-git-") as tmp:
        workdir = Path(tmp)
        os.environ["ASFALOAD_CACHE_DIR"] = str(workdir / "cache")  # not the user's own cache
        small, big = (World(workdir, n, filler, keys) for n in SIZES)

        # mirror verify: the same 1,200-commit history on top of each mirror
        replay_small, replay_big = median_alternating([small.replay, big.replay], ROUNDS)

        # incremental sync from the primary's repository, 100 new commits at a time
        ro = {w.files: str(workdir / f"ro-{w.files}" / "mirror.git") for w in (small, big)}
        for w in (small, big):
            seed_read_only(ro[w.files], w.repo_path)

        def sync_round(w: World) -> Callable[[], float]:
            def run() -> float:
                w.add_commits(SYNC_COMMITS)
                t = time.perf_counter()
                result = sync(ro[w.files], w.repo_path)
                elapsed = time.perf_counter() - t
                assert result.commits == SYNC_COMMITS, result
                return elapsed

            return run

        sync_small, sync_big = median_alternating([sync_round(small), sync_round(big)], ROUNDS)
        for w in (small, big):
            w.mirror.close()

        # clone of the 100k mirror: asfaload serve vs a plain CGI git http-backend
        big_tip = str(pygit2.Repository(big.repo_path).references[MAIN].target)
        server = ServerProcess(big.data_dir).start()
        wait_for_index(server, 1)  # its worker indexes pending work once, in the background
        cgi = PlainCgiServer(workdir, big.data_dir)
        try:
            ours, plain = median_alternating(
                [
                    lambda: clone_seconds(server.url("/mirror.git"), workdir, big_tip),
                    lambda: clone_seconds(cgi.url("mirror.git"), workdir, big_tip),
                ],
                ROUNDS,
            )
        finally:
            cgi.stop()
            server.stop()

        # reads: a read-only mirror against its primary, same data
        primary = ServerProcess(small.data_dir).start()
        read_only = ServerProcess(
            Path(ro[small.files]).parent, env={"ASFALOAD_READ_ONLY": "1"}
        ).start()
        try:
            # Both serve the same tip (the last sync round left the mirror current) and have
            # indexed it, so no background catch-up runs while the reads are measured.
            wait_for_index(primary, 1)
            wait_for_index(read_only, 1)
            path = layout.signatures_path(
                layout.github_release_index_path(small.ops.project, "bench-1")
            )
            rate_primary, rate_ro = median_alternating(
                [
                    lambda: files_per_second(primary.base_url, path),
                    lambda: files_per_second(read_only.base_url, path),
                ],
                ROUNDS,
            )

            # a signature acknowledged through git push over HTTP vs through REST
            m = Mirror.open(small.repo_path)
            a = keys[0]
            remote = primary.url("/mirror.git")
            seed_signing_clone(remote, small)
            git_lat: list[float] = []
            rest_lat: list[float] = []
            warm_up = small.ops.next()  # the signing clone catches up (fetch and replay) once
            m.submit(warm_up)
            sign_pending_by_git(remote, a, warm_up.index_path)
            for _ in range(LATENCY_SAMPLES):
                for sink, submit in (
                    (rest_lat, lambda x: _rest_sign(primary.base_url, a, x)),
                    (git_lat, lambda x: sign_pending_by_git(remote, a, x)),
                ):
                    op = small.ops.next()
                    m.submit(op)
                    t = time.perf_counter()
                    submit(op.index_path)
                    sink.append(time.perf_counter() - t)
            m.close()
        finally:
            read_only.stop()
            primary.stop()

    per_commit_small = replay_small / small.commits
    per_commit_big = replay_big / big.commits
    rate_small = small.commits / replay_small
    rate_big = big.commits / replay_big
    clone_ratio = ours / plain
    replay_ratio = per_commit_big / per_commit_small
    sync_ratio = sync_big / sync_small
    ro_ratio = rate_ro / rate_primary
    git_med, rest_med = statistics.median(git_lat), statistics.median(rest_lat)
    print(
        f"""## bench_git — git over HTTP, history replay, mirror sync, read-only reads

**What.** Mirrors of valid projects sharded as the layout places them ({small.files:,} and
{big.files:,} files), each with the same history of {small.commits:,} real commits on top
(release registrations and signatures, every second signature completing a release). Medians
of {ROUNDS} rounds, the compared sides run in turn in each round.

| | measured | baseline (same run) | ratio | target | result |
|---|---:|---:|---:|---:|---|
| clone of the 100k mirror, `asfaload serve` ÷ plain `git http-backend` (CGI) | {ours:.2f} s | {plain:.2f} s | {clone_ratio:.2f} | ≤ {CLONE_TARGET} | {met(clone_ratio <= CLONE_TARGET)} |
| `mirror verify` replay, commits/s (1k mirror) | {rate_small:,.0f}/s | — | — | ≥ {REPLAY_TARGET:,.0f}/s | {met(rate_small >= REPLAY_TARGET)} |
| `mirror verify` replay, commits/s (100k mirror) | {rate_big:,.0f}/s | — | — | ≥ {REPLAY_TARGET:,.0f}/s | {met(rate_big >= REPLAY_TARGET)} |
| replay cost per commit, 100k ÷ 1k | {ms(per_commit_big)} | {ms(per_commit_small)} | {replay_ratio:.2f} | — | — |
| incremental sync of {SYNC_COMMITS} commits, 100k ÷ 1k | {sync_big:.2f} s | {sync_small:.2f} s | {sync_ratio:.2f} | ≤ {SYNC_TARGET} | {met(sync_ratio <= SYNC_TARGET)} |
| `GET /v1/files`, read-only mirror ÷ primary ({FILES_CLIENTS} clients) | {rate_ro:,.0f}/s | {rate_primary:,.0f}/s | {ro_ratio:.2f} | ≥ {READ_ONLY_TARGET} | {met(ro_ratio >= READ_ONLY_TARGET)} |
| signature acknowledged, `git push` over HTTP ÷ REST (median latency) | {ms(git_med)} | {ms(rest_med)} | {git_med / rest_med:.1f} | report | — |

**How.** The clone baseline is git's own `git http-backend` behind Python's `http.server`
CGI handler (one process per request, as ours); both clones use git protocol v0, which the
plain CGI server can carry. Replay goes through the one commit check the hook and sync share
(`replication/commits.py`): each commit's operation is re-derived by the rules engine (its
signatures verified) and the parent's tree with the derived change must have the commit's tree
id; trees are edited along the changed paths only, so the cost per commit does not grow with
the mirror. Sync fetches into a scratch repository that borrows the mirror's objects, replays
the new commits the same way, then moves `main`. A git-pushed signature costs a fetch, a local
derivation and a push with the hook's check (two git round trips and a hook process) against
one signed HTTP request; it is measured in steady use, once the signer's clone has replayed the
mirror's history (it replays only the commits new since its last signature).
"""
    )
    return 0


def _rest_sign(base_url: str, sk: SecretKey, path: str) -> None:
    with BackendClient(base_url, sk) as client:
        sign_pending(client, sk, path)


if __name__ == "__main__":
    raise SystemExit(main())
