"""The link between a server's workers and its writer process: the workers' side.

Operations travel pickled over a Unix socket, one length-prefixed frame per request and per
reply: a request is ``(nonce claim or None, operation)``, a reply ``(ok, CommitResult or the
exception the operation raised)``. The socket lives in a directory only the server's user can
enter, so the only peers are the server's own workers: the same trust as two threads of one
process. The writer's side is :mod:`.writer_process`.
"""

from __future__ import annotations

import pickle
import select
import socket
import struct
import threading
from typing import TYPE_CHECKING

from ..auth import NonceClaim
from ..errors import StoreError
from .writer import CommitResult

if TYPE_CHECKING:
    from ..rules.tree import Operation

LENGTH = struct.Struct(">I")
READY = "READY"
# A write waits for its commit; the writer gives up on a busy mirror well before this.
_REPLY_TIMEOUT = 300.0


class WriterUnreachable(StoreError):
    """No writer process answered the connection: nothing was sent."""


def send_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(LENGTH.pack(len(payload)) + payload)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("the peer closed the connection")
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> bytes:
    (n,) = LENGTH.unpack(_recv_exact(sock, LENGTH.size))
    return _recv_exact(sock, n)


def dumps(obj: object) -> bytes:
    return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def request_payload(op: Operation, nonce: NonceClaim | None = None) -> bytes:
    """What a worker sends for ``op``; raises what pickle raises for an op that cannot be sent."""
    return dumps((nonce, op))


def _open(conn: socket.socket) -> bool:
    """Whether an idle connection's peer is still there (no end of file waiting to be read).
    A zero-timeout select first: a recv on a socket with a timeout would wait for data."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        if not readable:
            return True  # nothing to read: the peer is alive and silent, as it should be
        return conn.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False


class RemoteWriter:
    """The workers' side: one connection per thread, one operation at a time on each."""

    def __init__(self, socket_path: str) -> None:
        self._path = socket_path
        self._local = threading.local()

    def _connection(self) -> socket.socket:
        conn: socket.socket | None = getattr(self._local, "conn", None)
        if conn is not None and not _open(conn):
            # The writer process behind it died while this connection was idle (and was
            # started again): nothing was sent on it, so a fresh connection is safe.
            self._drop()
            conn = None
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
            send_frame(conn, payload)
            ok, value = pickle.loads(recv_frame(conn))
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
