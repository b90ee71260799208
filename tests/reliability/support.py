"""Shared parts of the reliability suite: settings from the environment, a server that can be
SIGKILLed as a whole, the checks every run ends with, and the figures a run reports.

The suite is bounded for ``make test``; ``make soak`` runs the same tests longer by setting
``ASFALOAD_SOAK_*`` variables (see :func:`setting`). When ``ASFALOAD_RELIABILITY_REPORT`` names
a directory, each measuring test writes its figures there as JSON (``bench/bench_attacks.py``
turns them into a section of BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from asfaload.crypto import SecretKey
from asfaload.devtools.server import ASFALOAD, ServerProcess
from asfaload.store.durable import WriterLock, lock_path_for

REPORT_ENV = "ASFALOAD_RELIABILITY_REPORT"

# Generous deadline for one client request: it only exists to tell a hang from slowness.
HANG_SECONDS = 120.0


def setting(name: str, ci: int) -> int:
    """``ASFALOAD_SOAK_<name>`` when set (``make soak``), else the bounded ``ci`` value."""
    raw = os.environ.get(f"ASFALOAD_SOAK_{name}", "").strip()
    if not raw:
        return ci
    value = int(raw)
    if value < 1:
        raise ValueError(f"ASFALOAD_SOAK_{name} must be a positive number")
    return value


def report(name: str, figures: Mapping[str, Any]) -> None:
    """Write ``figures`` as ``<report dir>/<name>.json`` when a report directory is set."""
    out = os.environ.get(REPORT_ENV)
    if not out:
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / f"{name}.json").write_text(json.dumps(dict(figures), indent=2, sort_keys=True))


class KillableServer(ServerProcess):
    """A real ``asfaload serve`` that can die all at once: SIGKILL to its process group (the
    gunicorn master, its workers, the writer process, the fold process and any git running),
    as a power cut or the OOM killer would leave it; :meth:`start` brings it up again on the
    same port and data dir."""

    def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            raise RuntimeError("the server is not running")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def git(repo: str | Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=600)


def assert_mirror_sound(repo: str | Path) -> None:
    """``git fsck --strict`` clean and every commit of main derived by the rules
    (``asfaload mirror verify``, the operator's command)."""
    # A fold the killed writer had started runs on to its end; wait for it as an operator would.
    with WriterLock(lock_path_for(str(repo), "repack")):
        pass
    fsck = git(repo, "fsck", "--strict", "--no-dangling")
    assert fsck.returncode == 0 and fsck.stdout == "", fsck.stdout + fsck.stderr
    verify = subprocess.run(
        [ASFALOAD, "mirror", "verify", "--repo", str(repo)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def history_messages(repo: str | Path) -> list[str]:
    """Every commit message of main (canonical for the server's commits and for gitsign's)."""
    out = git(repo, "log", "--format=%B%x00", "refs/heads/main").stdout
    return [m.strip("\n") for m in out.split("\x00") if m.strip("\n")]


def pending_from_server(base_url: str, key: SecretKey) -> list[str]:
    """``GET /v1/pending_signatures`` for ``key``: the file paths it may still sign."""
    from tests.support.http import signed_request

    reply = signed_request(base_url, key, "GET", "/v1/pending_signatures")
    assert reply.status == 200, reply.body
    paths = reply.json()["file_paths"]
    assert isinstance(paths, list)
    return sorted(str(p) for p in paths)


def ping(base_url: str) -> bool:
    try:
        return requests.get(base_url + "/v1/ping", timeout=5).status_code == 200
    except requests.RequestException:
        return False
