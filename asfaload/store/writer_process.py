"""The writer process: one writer for all of a server's workers, and its supervisor.

``asfaload serve`` starts this process beside gunicorn (:class:`WriterProcess`), and starts it
again if it dies. Workers send each operation over a Unix socket (:mod:`.writer_link`) and wait
for its commit; here ONE thread batches all that arrived together with one
:class:`~asfaload.store.writer.BatchWriter`: the serial part of every write (the rules, the
trees, the pack, the barrier) runs in one place, away from the workers' request threads, and a
batch holds every worker's operations. The claims of a batch are recorded in the server's nonce
store in one transaction before the batch is applied. An operation that cannot be pickled, or a
worker that cannot reach this process, still writes through the worker's own writer, under the
same cross-process lock and compare-and-swap.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol

from ..auth import NonceClaim, replay_error
from ..errors import DiskFullError, StoreError
from ..rules.tree import Operation
from .durable import lock_path_for
from .mirror import check_mirror
from .nonces import SqliteNonceStore
from .objects import ENV_OBJECTS, check_objects
from .settings import WriterSettings
from .writer import BatchWriter, CommitResult
from .writer_link import LENGTH, READY, dumps

log = logging.getLogger(__name__)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling (our errors do), else a StoreError in its place."""
    try:
        pickle.loads(dumps(exc))
    except Exception:
        log.error("operation failed with an exception that cannot be sent: %r", exc)
        return StoreError("The mirror could not be written")
    return exc


class _Peer:
    """One worker connection: bytes received that are not yet a whole frame, and replies not
    yet taken by the socket."""

    __slots__ = ("sock", "inbox", "outbox")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.inbox = bytearray()
        self.outbox = bytearray()

    def frames(self) -> list[bytes]:
        out = []
        box = self.inbox
        while len(box) >= LENGTH.size:
            (n,) = LENGTH.unpack_from(box)
            if len(box) < LENGTH.size + n:
                break
            out.append(bytes(box[LENGTH.size : LENGTH.size + n]))
            del box[: LENGTH.size + n]
        return out


# How stale the dumb-HTTP files may get while operations keep arriving (seconds).
INFO_DELAY = 0.05

_ACCEPT = object()
_STOP = object()


class BatchSink(Protocol):
    """What the loop writes through: a :class:`~.writer.BatchWriter` (or a whole Mirror)."""

    def write_batch(self, ops: Sequence[Operation]) -> list[CommitResult | Exception]: ...

    @property
    def server_info_pending(self) -> bool: ...

    def publish_server_info(self) -> None: ...

    def close(self) -> None: ...


class WriterService:
    """The writer process's side: ONE thread accepts the workers, reads their operations, commits
    all that arrived together as one batch (``mirror.write_batch``) and answers each.

    One thread, no hand-offs: with a thread per connection the writer thread would compete for
    the GIL with one reader thread per worker thread, and each operation would cost two thread
    switches and a Future wake-up.
    """

    def __init__(
        self, mirror: BatchSink, socket_path: str, nonces: SqliteNonceStore | None = None
    ) -> None:
        self._mirror = mirror
        self._nonces = nonces
        self._sel = selectors.DefaultSelector()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(socket_path)
        os.chmod(socket_path, 0o600)
        self._sock.listen(256)
        self._sock.setblocking(False)
        self._sel.register(self._sock, selectors.EVENT_READ, _ACCEPT)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, _STOP)
        self._stopping = False
        self._done = threading.Event()
        self._info_deadline = 0.0

    def stop_on_eof(self, fd: int) -> None:
        """Stop when ``fd`` (the pipe from the server that started us) reaches end of file."""
        self._sel.register(fd, selectors.EVENT_READ, _STOP)

    def stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler or another thread)."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"x")

    def serve_forever(self) -> None:
        try:
            while not self._stopping:
                self._step()
            self._step(final=True)  # what already arrived is still committed and answered
        finally:
            self._shutdown()
            self._done.set()

    def close(self, timeout: float = 30.0) -> None:
        """Stop accepting, finish what arrived, answer it (the loop runs in another thread)."""
        self.stop()
        self._done.wait(timeout)

    def _step(self, *, final: bool = False) -> None:
        events = self._sel.select(0)
        # The dumb-HTTP files (info/refs, objects/info/packs) are rewritten when nothing waits,
        # or once they are INFO_DELAY stale: under load, once for several batches.
        if self._mirror.server_info_pending and (
            not events or time.monotonic() >= self._info_deadline
        ):
            self._mirror.publish_server_info()
        if not self._mirror.server_info_pending:
            self._info_deadline = time.monotonic() + INFO_DELAY
        if not events and not final:
            events = self._sel.select(None)
        arrived: list[tuple[_Peer, bytes]] = []
        for key, mask in events:
            what = key.data
            if what is _ACCEPT:
                self._accept()
            elif what is _STOP:
                try:
                    data = os.read(key.fd, 4096)
                except BlockingIOError:
                    continue
                if key.fd == self._wake_r or not data:
                    self._stopping = True
            elif isinstance(what, _Peer):
                if mask & selectors.EVENT_WRITE:
                    self._flush(what)
                if mask & selectors.EVENT_READ:
                    arrived.extend((what, frame) for frame in self._receive(what))
        if arrived:
            self._answer(arrived)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            self._sel.register(conn, selectors.EVENT_READ, _Peer(conn))

    def _receive(self, peer: _Peer) -> list[bytes]:
        try:
            data = peer.sock.recv(1 << 16)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if not data:
            self._drop(peer)
            return []
        peer.inbox += data
        return peer.frames()

    def _answer(self, arrived: list[tuple[_Peer, bytes]]) -> None:
        peers: list[_Peer] = []
        ops: list[Operation] = []
        claims: list[NonceClaim | None] = []
        for peer, frame in arrived:
            try:
                claim, op = pickle.loads(frame)
                if claim is not None and not isinstance(claim, NonceClaim):
                    raise StoreError("The mirror writer process received nonsense")
            except Exception as e:
                self._reply(peer, (False, _portable(e)))
                continue
            # Anything that is not an operation fails in the writer, for its caller only.
            ops.append(op)
            claims.append(claim)
            peers.append(peer)
        if any(claims):
            peers, ops = self._claim(peers, ops, claims)
        if not ops:
            return
        results: list[CommitResult | Exception]
        try:
            results = self._mirror.write_batch(ops)
        except Exception:  # write_batch answers each operation: this is a bug, not an answer
            log.exception("the writer loop failed")
            results = [StoreError("The mirror could not be written")] * len(ops)
        for peer, result in zip(peers, results, strict=True):
            if isinstance(result, CommitResult):
                self._reply(peer, (True, result))
            else:
                self._reply(peer, (False, _portable(result)))

    def _claim(
        self, peers: list[_Peer], ops: list[Operation], claims: list[NonceClaim | None]
    ) -> tuple[list[_Peer], list[Operation]]:
        """Record the batch's nonces (one transaction); refuse the operations whose nonce was
        already used, or all that carry one if they cannot be recorded."""
        wanted = [c for c in claims if c is not None]
        refusal: BaseException = replay_error()
        if self._nonces is None:
            refusal = StoreError("The mirror writer process has no nonce store")
            won = iter([False] * len(wanted))
        else:
            try:
                won = iter(self._nonces.remember_all(wanted))
            except DiskFullError as e:
                log.warning("recording the batch's nonces failed: the disk is full")
                refusal = e
                won = iter([False] * len(wanted))
            except Exception:
                log.exception("recording the batch's nonces failed")
                refusal = StoreError("The request could not be recorded")
                won = iter([False] * len(wanted))
        kept_peers: list[_Peer] = []
        kept_ops: list[Operation] = []
        for peer, op, claim in zip(peers, ops, claims, strict=True):
            if claim is None or next(won):
                kept_peers.append(peer)
                kept_ops.append(op)
            else:
                self._reply(peer, (False, refusal))
        return kept_peers, kept_ops

    def _reply(self, peer: _Peer, reply: tuple[bool, object]) -> None:
        payload = dumps(reply)
        peer.outbox += LENGTH.pack(len(payload)) + payload
        self._flush(peer)

    def _flush(self, peer: _Peer) -> None:
        try:
            sent = peer.sock.send(peer.outbox)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._drop(peer)
            return
        del peer.outbox[:sent]
        # A reply the socket could not take whole waits for it to drain (never, in practice:
        # one small reply per connection at a time).
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if peer.outbox else 0)
        if self._sel.get_key(peer.sock).events != events:
            self._sel.modify(peer.sock, events, peer)

    def _drop(self, peer: _Peer) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(peer.sock)
        peer.sock.close()

    def _shutdown(self) -> None:
        for key in list(self._sel.get_map().values()):
            if isinstance(key.data, _Peer):
                self._drop(key.data)
        self._sel.close()
        self._sock.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._mirror.close()
        if self._nonces is not None:
            self._nonces.close()


class WriterProcess:
    """``python -m asfaload.store.writer_process`` for one mirror, started, watched and stopped by the
    server.

    The server supervises it: a writer process that dies (killed, out of memory) is started
    again on the same socket, and the workers reconnect on their next write. Meanwhile a worker
    that cannot reach it writes in-process (:meth:`Mirror.submit`), so writes go on; the lock
    and the compare-and-swap of ``main`` keep the two kinds of writer from losing each other's
    commits, and an operation in flight when it died is answered with an error, never
    acknowledged without its commit.
    """

    def __init__(
        self, repo_path: str, nonce_db: str | None = None, *, objects: str | None = None
    ) -> None:
        self._repo_path = repo_path
        self._nonce_db = nonce_db
        # The object store the process writes through (default: ASFALOAD_OBJECTS, inherited).
        self._env = None if objects is None else {**os.environ, ENV_OBJECTS: check_objects(objects)}
        self._stopping = threading.Event()
        self.restarts = 0
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
        self._proc = self._spawn()
        self._watcher = threading.Thread(target=self._supervise, daemon=True, name="writer-watch")
        self._watcher.start()

    def _spawn(self) -> subprocess.Popen[str]:
        with contextlib.suppress(OSError):
            os.unlink(self.socket_path)  # left by a writer that was killed
        # stdin stays a pipe from us: the process ends when we do, even if we are killed.
        try:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "asfaload.store.writer_process",
                    self._repo_path,
                    self.socket_path,
                    *([self._nonce_db] if self._nonce_db else []),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=self._env,
            )
        except OSError as e:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise StoreError("Cannot start the mirror writer process") from e
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if line != READY:
            self._end(proc)
            raise StoreError("The mirror writer process did not start")
        return proc

    def _supervise(self) -> None:
        backoff = 0.1
        while not self._stopping.wait(0.2):
            if self._proc.poll() is None:
                backoff = 0.1
                continue
            if self._stopping.is_set():
                return
            log.warning(
                "the mirror writer process exited (%s); starting it again", self._proc.returncode
            )
            self._close_streams(self._proc)
            try:
                self._proc = self._spawn()
                self.restarts += 1
            except StoreError as e:
                log.error("%s; the workers write in-process meanwhile", e)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    @staticmethod
    def _close_streams(proc: subprocess.Popen[str]) -> None:
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def _end(self, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close_streams(proc)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def stop(self, timeout: float = 60.0) -> None:
        self._stopping.set()
        if self._watcher.is_alive() and self._watcher is not threading.current_thread():
            self._watcher.join(5)
        self._end(self._proc, timeout)
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
    logging.basicConfig(level=logging.INFO, format="%(asctime)s writer %(levelname)s %(message)s")
    repo_path, socket_path, *rest = argv
    nonces = SqliteNonceStore(Path(rest[0])) if rest else None
    # The writer keeps tens of thousands of parsed trees and blobs, which every full cyclic
    # collection walks, pausing its one thread; cycles are rare here, so collect seldom.
    gc.set_threshold(50_000, 20, 100)
    check_mirror(repo_path)
    # Folds written in Python run in a child process: in a thread here they would hold the GIL
    # against this process's one thread.
    writer = BatchWriter(repo_path, lock_path_for(repo_path), WriterSettings(fold_in_child=True))
    service = WriterService(writer, socket_path, nonces)
    signal.signal(signal.SIGTERM, lambda *_: service.stop())
    # Ctrl-C reaches the whole foreground group: gunicorn drains its workers first, then
    # stops us (stdin EOF or SIGTERM).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # stdin is a pipe from the server that started us: its end of file means it is gone.
    service.stop_on_eof(sys.stdin.fileno())
    print(READY, flush=True)
    service.serve_forever()
    # Also when the server was killed and could not clean up after us.
    with contextlib.suppress(OSError):
        os.unlink(socket_path)
        os.rmdir(os.path.dirname(socket_path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
