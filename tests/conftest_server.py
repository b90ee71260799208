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
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import requests

ASFALOAD = str(Path(sys.executable).parent / "asfaload")
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, target: str) -> str:
        return self.base_url + target

    def start(self) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
        env.update(self.env)
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [
                ASFALOAD,
                "serve",
                "--data-dir",
                str(self.data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if requests.get(self.url("/v1/ping"), timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def stop(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                return proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                return proc.wait()
        return proc.returncode

    def restart(self) -> ServerProcess:
        self.stop()
        return self.start()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data_dir = tmp_path_factory.mktemp("server") / "data"
    server = ServerProcess(data_dir, env={"ASFALOAD_ALLOW_PRIVATE_URLS": "1"}).start()
    try:
        yield server
    finally:
        server.stop()
