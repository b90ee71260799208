"""Start and stop a real ``asfaload serve`` process: one helper for the demos, the e2e harness and
the test fixtures (all of them run the server the way an operator does, as a subprocess)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import requests

ASFALOAD = str(Path(sys.executable).parent / "asfaload")
START_TIMEOUT = 30.0


class ServerStartError(RuntimeError):
    """The server exited or did not answer /v1/ping in time (the message holds its log)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_args(data_dir: Path, port: int, workers: int = 1) -> list[str]:
    """The ``asfaload serve`` arguments (without the program name), for display and for running."""
    return [
        "serve",
        "--data-dir",
        str(data_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def read_log(path: Path, tail: int | None = None) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-tail:] if tail else text


def start_server(
    data_dir: Path,
    port: int,
    *,
    env: Mapping[str, str],
    log_path: Path,
    workers: int = 1,
    cwd: Path | None = None,
    timeout: float = START_TIMEOUT,
) -> subprocess.Popen[bytes]:
    """Run ``asfaload serve`` and return once it answers ``GET /v1/ping``."""
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [ASFALOAD, *serve_args(data_dir, port, workers)],
            cwd=cwd,
            env=dict(env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a stuck stop can kill the workers too
        )
    url = f"http://127.0.0.1:{port}/v1/ping"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerStartError(f"server exited early:\n{read_log(log_path, 4000)}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.1)
    stop_server(proc)
    raise ServerStartError(f"server did not start:\n{read_log(log_path, 4000)}")


def stop_server(proc: subprocess.Popen[bytes] | None, timeout: float = 30.0) -> int | None:
    """Graceful stop (SIGTERM to gunicorn's master, which drains its workers); after ``timeout``
    the whole process group is killed."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return proc.wait()
    return proc.returncode
