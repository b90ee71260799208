"""A real ``asfaload serve`` process on a free loopback port, for HTTP tests.

Use it from any test module::

    from tests.conftest_server import ServerProcess, live_server  # noqa: F401  (fixture)

``live_server`` is module-scoped: it yields a started :class:`ServerProcess` (``.base_url``,
``.data_dir``, ``.restart()``, ``.stop()``). Build your own with ``ServerProcess(data_dir,
env={...}).start()`` when a test needs other settings (e.g. ``ASFALOAD_URL_REWRITES`` pointing
at the forge emulator and ``ASFALOAD_ALLOW_PRIVATE_URLS``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from asfaload.crypto import SecretKey
from asfaload.store import Mirror
from examples.serverproc import ASFALOAD, free_port, read_log, start_server, stop_server

__all__ = ["ASFALOAD", "ServerProcess", "free_port", "live_server", "server_with_project"]


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


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("server") / "data"
    server = ServerProcess(data_dir, env={"ASFALOAD_ALLOW_PRIVATE_URLS": "1"}).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def server_with_project(
    data_dir: Path, project: str, keys: Sequence[SecretKey], **server: Any
) -> Iterator[tuple[ServerProcess, Mirror]]:
    """A started server whose mirror holds ``project``, active: every key an artifact signer
    (all of them needed), the first its admin. Yields the server and the mirror opened from
    this process (to seed releases)."""
    from tests.test_rules_support import register_and_activate, signers_bytes

    signers = signers_bytes(artifact=[(list(keys), len(keys))], admin=[([keys[0]], 1)])
    proc = ServerProcess(data_dir, **server).start()
    mirror = Mirror.open(str(proc.data_dir / "mirror.git"))
    try:
        register_and_activate(mirror, project, signers, keys)
        yield proc, mirror
    finally:
        mirror.close()
        proc.stop()


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
