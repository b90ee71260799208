"""One writer process for all of a server's workers.

Under gunicorn each worker process had its own writer thread, and the writers took turns on the
cross-process lock. The serial part of every write (the rules, the trees, the pack, the barrier)
then ran in whichever worker held the lock, competing for that worker's GIL with its request
threads (2-2.5x its uncontended time under the bench_server load), and each writer's batches
held only its own worker's operations. ``asfaload serve`` therefore starts this process beside
gunicorn: workers send each operation over a Unix socket and wait for its commit, and one
:class:`~asfaload.store.writer.BatchWriter` batches them all.

Operations travel pickled, one length-prefixed frame per request and per reply. The socket lives
in a directory only the server's user can enter, so the only peers are the server's own workers:
the same trust as two threads of one process. An operation that cannot be pickled (the TUF
service's closures), or a worker that cannot reach this process, still writes through the
worker's own writer, under the same cross-process lock and compare-and-swap.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from ..errors import StoreError
from .writer import CommitResult

if TYPE_CHECKING:  # mirror imports this module
    from .mirror import Mirror

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
_READY = "READY"
# A write waits for its commit; the writer gives up on a busy mirror well before this.
_REPLY_TIMEOUT = 300.0


class WriterUnreachable(StoreError):
    """No writer process answered the connection: nothing was sent."""


def _send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(payload)) + payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        buf += chunk
    return bytes(buf)


def _recv_frame(sock: socket.socket) -> bytes:
    (n,) = _LENGTH.unpack(_recv_exact(sock, _LENGTH.size))
    return _recv_exact(sock, n)


def dumps(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


class RemoteWriter:
    """The workers' side: one connection per thread, one operation at a time on each."""

    def __init__(self, socket_path: str) -> None:
        self._path = socket_path
        self._local = threading.local()

    def _connection(self) -> socket.socket:
        conn: socket.socket | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                conn.connect(self._path)
            except OSError as e:
                conn.close()
                raise WriterUnreachable("The mirror writer process is not running") from e
            conn.settimeout(_REPLY_TIMEOUT)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn: socket.socket | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def submit_pickled(self, payload: bytes) -> CommitResult:
        """Send one pickled operation; its CommitResult, or the exception it raised."""
        conn = self._connection()
        try:
            _send_frame(conn, payload)
            ok, value = pickle.loads(_recv_frame(conn))
        except (OSError, EOFError, pickle.UnpicklingError) as e:
            # Sent, but no answer: the operation may or may not have been committed.
            self._drop()
            raise StoreError("The mirror writer process did not answer") from e
        if ok:
            if not isinstance(value, CommitResult):
                raise StoreError("The mirror writer process answered nonsense")
            return value
        if isinstance(value, BaseException):
            raise value
        raise StoreError("The mirror writer process answered nonsense")

    def close(self) -> None:
        self._drop()


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (our errors do), else a StoreError in its place."""
    try:
        pickle.loads(dumps(exc))
    except Exception:
        log.error("operation failed with an exception that cannot be sent: %r", exc)
        return StoreError("The mirror could not be written")
    return exc


class WriterService:
    """The writer process's side: accepts workers and submits their operations to ``mirror``
    (a local :class:`~asfaload.store.mirror.Mirror`), one thread per connection."""

    def __init__(self, mirror: Mirror, socket_path: str) -> None:
        self._mirror = mirror
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(socket_path)
        os.chmod(socket_path, 0o600)
        self._sock.listen(256)
        self._threads: list[threading.Thread] = []
        self._closed = threading.Event()

    def serve_forever(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return  # the listening socket was closed
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            t.start()
            self._threads.append(t)

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    frame = _recv_frame(conn)
                except (OSError, ConnectionError):
                    return
                try:
                    op = pickle.loads(frame)
                    reply: tuple[bool, object] = (True, self._mirror.submit(op))
                except Exception as e:
                    reply = (False, _portable(e))
                try:
                    _send_frame(conn, dumps(reply))
                except OSError:
                    return

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting, finish the queued writes, answer them."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        self._mirror.close()
        for t in self._threads:
            t.join(timeout=0.5)


class WriterProcess:
    """``python -m asfaload.store.remote`` for one mirror, started and stopped by the server."""

    def __init__(self, repo_path: str) -> None:
        # 0700: only this user enters. Under /tmp when $TMPDIR is long: a Unix socket's path
        # must fit in 108 bytes.
        base = tempfile.gettempdir()
        try:
            self._dir = tempfile.mkdtemp(
                prefix="asfaload-writer-", dir=base if len(base) <= 60 else "/tmp"
            )
        except OSError as e:
            raise StoreError("Cannot create the mirror writer's socket directory") from e
        self.socket_path = os.path.join(self._dir, "writer.sock")
        # stdin stays a pipe from us: the process ends when we do, even if we are killed.
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "asfaload.store.remote", repo_path, self.socket_path],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        except OSError as e:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise StoreError("Cannot start the mirror writer process") from e
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if line != _READY:
            self.stop()
            raise StoreError("The mirror writer process did not start")

    def stop(self, timeout: float = 60.0) -> None:
        if self._proc.poll() is None:
            with contextlib.suppress(OSError):
                self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                stream.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> WriterProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    from .mirror import Mirror

    logging.basicConfig(level=logging.INFO, format="%(asctime)s writer %(levelname)s %(message)s")
    repo_path, socket_path = argv
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C reaches the whole foreground group: gunicorn drains its workers first, then
    # stops us (stdin EOF or SIGTERM).
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch_parent() -> None:
        sys.stdin.buffer.read()  # EOF: the server that started us is gone
        stop.set()

    service = WriterService(Mirror.open(repo_path), socket_path)
    threading.Thread(target=watch_parent, daemon=True).start()
    threading.Thread(target=service.serve_forever, daemon=True).start()
    print(_READY, flush=True)
    while not stop.wait(1.0):
        pass
    service.close()
    # Also when the server was killed and could not clean up after us.
    with contextlib.suppress(OSError):
        os.unlink(socket_path)
        os.rmdir(os.path.dirname(socket_path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
