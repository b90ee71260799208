"""Benchmark: verified ``asfaload download`` of a 1 GiB file vs ``curl -s -o f URL && sha256sum f``.

Both fetch the same file from the same local file server (the forge emulator, which streams from
disk with sendfile) in the same run. ``asfaload download`` additionally fetches and verifies the
signers copy, index and signatures from a real backend, hashes while writing, fsyncs and renames.
Target: ≤ 1.25× the baseline's wall time, with constant memory (peak RSS of the client process).
Prints one Markdown section on stdout (``bench/run.py`` assembles BENCHMARKS.md).
"""

from __future__ import annotations

import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asfaload.devtools.harness import ASFALOAD, World, register_and_activate  # noqa: E402

SIZE = int(os.environ.get("ASFALOAD_BENCH_DOWNLOAD_BYTES", str(1 << 30)))
RUNS = int(os.environ.get("ASFALOAD_BENCH_DOWNLOAD_RUNS", "3"))
TARGET = 1.25


def make_file(path: Path, size: int) -> str:
    h = hashlib.sha256()
    block = os.urandom(1 << 20)
    with path.open("wb") as fh:
        left = size
        i = 0
        while left:
            # Vary each MiB cheaply so the file is not one repeated block.
            chunk = (i.to_bytes(8, "big") + block[8:])[: min(left, len(block))]
            fh.write(chunk)
            h.update(chunk)
            left -= len(chunk)
            i += 1
    return h.hexdigest()


def timed(
    cmd: list[str], env: dict[str, str] | None = None, shell: bool = False
) -> tuple[float, int]:
    """Wall time and peak RSS (KiB, the largest process of the command) of one run."""
    t = time.perf_counter()
    proc = subprocess.Popen(
        cmd if not shell else ["/bin/sh", "-c", cmd[0]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, int(usage.ru_maxrss)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="asfaload-bench-dl-") as tmp, World(Path(tmp)) as w:
        work = Path(tmp)
        big = work / "big.bin"
        digest = make_file(big, SIZE)
        signer = w.new_keys("bench")
        raw = w.new_signers_file("signers.json", [signer], 1)
        url = w.forge.put_fileserver_file("bench/asfaload.signers/signers.json", raw)
        register_and_activate(w, signer, url, [signer])
        w.forge.put_fileserver_file("bench/v1/big.bin", big)
        sums = w.forge.put_fileserver_file("bench/v1/SHA256SUMS", f"{digest}  big.bin\n".encode())
        out = w.as_signer(signer, "register-assets", "--csum-file", sums)
        index = out.lines[-1].split(": ", 1)[1]
        w.as_signer(signer, "sign-pending", index)

        public = "https://files.example.com/bench/v1/big.bin"
        local = w.forge.local_url(public)
        dest_curl, dest_ours = work / "curl.bin", work / "ours.bin"
        baseline_cmd = f"curl -s -o {dest_curl} {local} && sha256sum {dest_curl}"
        ours_cmd = [ASFALOAD, "download", "-o", str(dest_ours), public]
        env = w.env()

        base_t: list[float] = []
        ours_t: list[float] = []
        ours_rss: list[int] = []
        base_rss: list[int] = []
        for _ in range(RUNS):  # interleaved, so load from other processes hits both alike
            t, rss = timed([baseline_cmd], shell=True)
            base_t.append(t)
            base_rss.append(rss)
            dest_curl.unlink()
            t, rss = timed(ours_cmd, env=env)
            ours_t.append(t)
            ours_rss.append(rss)
            if dest_ours.stat().st_size != SIZE:
                raise AssertionError("asfaload download wrote a file of the wrong size")
            dest_ours.unlink()

    b, o = statistics.median(base_t), statistics.median(ours_t)
    ratio = o / b
    mib = SIZE / (1 << 20)
    verdict = "met" if ratio <= TARGET else "NOT met"
    print("## Verified download (`asfaload download`) vs `curl && sha256sum`\n")
    print(
        f"A {mib:.0f} MiB file from the local file server (forge emulator, sendfile), "
        f"{RUNS} interleaved runs each, median wall time. `asfaload download` includes the "
        "backend round trips, signature verification, hashing while writing, fsync and the "
        "atomic rename.\n"
    )
    print("| | median s | runs (s) | MiB/s | peak RSS |")
    print("|---|---|---|---|---|")
    print(
        f"| `curl -s -o f URL && sha256sum f` (baseline) | {b:.2f} | "
        f"{', '.join(f'{x:.2f}' for x in base_t)} | {mib / b:.0f} | {max(base_rss) / 1024:.0f} MiB |"
    )
    print(
        f"| `asfaload download` | {o:.2f} | {', '.join(f'{x:.2f}' for x in ours_t)} | "
        f"{mib / o:.0f} | {max(ours_rss) / 1024:.0f} MiB |"
    )
    print(f"\nRatio: **{ratio:.2f}×** the baseline (target ≤ {TARGET}×: {verdict}).")
    print(
        f"Memory: the client's peak RSS is {max(ours_rss) / 1024:.0f} MiB for a {mib:.0f} MiB "
        "file (bounded queue of 1 MiB chunks: constant in the file size)."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
