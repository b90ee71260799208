"""Reliability figures: the attack corpus and the load-with-SIGKILLs run, as one section.

Runs ``tests/reliability/`` (the whole suite, so the disk-full, gc and parser tests must pass
too) with ``ASFALOAD_RELIABILITY_REPORT`` set, and prints what the measuring tests reported:
attacks tried / refused / accepted by mistake (``test_attack_corpus.py``), and throughput, p99
latency and kills survived under load (``test_load_faults.py``). The run's settings come from
the ``ASFALOAD_SOAK_*`` variables (``make soak``) or the bounded defaults of ``make test``.
Exits non-zero when any test failed, so ``bench/run.py`` marks the section as failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _load(report_dir: Path, name: str) -> dict[str, Any]:
    path = report_dir / f"{name}.json"
    if not path.exists():
        return {}
    doc = json.loads(path.read_text())
    return doc if isinstance(doc, dict) else {}


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="asfaload-reliability-") as out:
        env = {**os.environ, "ASFALOAD_RELIABILITY_REPORT": out}
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/reliability"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        attacks = _load(Path(out), "attacks")
        load = _load(Path(out), "load_faults")
    settings = {k: v for k, v in os.environ.items() if k.startswith("ASFALOAD_SOAK_")}
    lines = [
        "## bench_attacks: attack corpus and load under SIGKILL",
        "",
        "`tests/reliability/` run by `bench/bench_attacks.py` with "
        + (
            ", ".join(f"`{k}={v}`" for k, v in sorted(settings.items()))
            or "the bounded CI settings"
        )
        + f"; pytest exit {proc.returncode}.",
        "",
        "| attacks tried | refused | accepted by mistake | refused otherwise |",
        "|---|---|---|---|",
        f"| {attacks.get('tried', '-')} | {attacks.get('refused', '-')} | "
        f"{attacks.get('accepted_by_mistake', '-')} | {attacks.get('other', '-')} |",
        "",
        "Load: signers over REST and by git push, readers of pending lists, files and states, while"
        " the whole server (master, workers, writer, git) is SIGKILLed and restarted. Throughput"
        " counts acknowledged signatures over the whole run, downtime included; latency is one"
        " REST signature submission.",
        "",
        "| clients | kills survived | signatures acknowledged | applied, answer lost |"
        " writes/s | REST write p50 | p99 | reads | replays refused after kill |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {load.get('clients', '-')} | {load.get('kills', '-')} | "
        f"{load.get('acknowledged', '-')} | {load.get('applied_unacknowledged', '-')} | "
        f"{load.get('writes_per_second', '-')} | {load.get('rest_write_p50_ms', '-')} ms | "
        f"{load.get('rest_write_p99_ms', '-')} ms | {load.get('reads', '-')} | "
        f"{load.get('replays_refused', '-')}/{load.get('replays', '-')} |",
        "",
        "After the run: every acknowledged signature in the history exactly once, each release"
        " completed at most once, `git fsck --strict` and `asfaload mirror verify` clean, the"
        " server's pending answers equal to a rebuilt index (the test fails otherwise).",
    ]
    print("\n".join(lines))
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-2000:])
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
