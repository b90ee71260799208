"""Start and stop a real ``asfaload serve`` process: one helper for the demos, the e2e harness,
the tests and the benchmarks (all of them run the server the way an operator does, as a
subprocess).

``start_server``/``stop_server`` are the bare functions; :class:`ServerProcess` wraps them for a
server on a free loopback port (``.base_url``, ``.data_dir``, ``.restart()``, ``.stop()``);
:func:`process_tree` reads a server's processes and their CPU time from /proc.
"""

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


class ServerProcess:
    def __init__(
        self,
        data_dir: Path,
        env: Mapping[str, str] | None = None,
        workers: int = 1,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.env = dict(env or {})
        self.workers = workers
        self.port = free_port()
        self.log_path = log_path or self.data_dir.parent / f"{self.data_dir.name}-server.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The server's main process (gunicorn's master)."""
        if self._proc is None:
            raise RuntimeError("the server is not running")
        return self._proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, target: str) -> str:
        return self.base_url + target

    def start(self) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
        env.update(self.env)
        self._proc = start_server(
            self.data_dir, self.port, env=env, log_path=self.log_path, workers=self.workers
        )
        return self

    def stop(self) -> int | None:
        proc, self._proc = self._proc, None
        return stop_server(proc)

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def log(self) -> str:
        return read_log(self.log_path)


def process_tree(root: int) -> dict[int, tuple[str, float]]:
    """``root`` and its descendants as ``pid -> (command line, CPU seconds so far)``, from
    /proc (a server's master, its workers, its writer process, git). A process's CPU includes
    that of its children it has reaped (a git it ran), so the tree's sum counts every second
    once, whether the child is still running or not."""
    tick = os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[int, str, float]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            continue
        cpu = sum(int(f) for f in fields[11:15]) / tick  # utime, stime, cutime, cstime
        procs[int(name)] = (int(fields[1]), cmd, cpu)
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, (ppid, _, _) in procs.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    return {p: (procs[p][1], procs[p][2]) for p in tree if p in procs}
