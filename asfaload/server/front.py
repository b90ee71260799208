"""The HTTP front of ``asfaload serve``: a gunicorn worker that reads each request whole before a
thread runs the app.

gunicorn's threaded worker hands a connection to a thread as soon as it is readable, and the
thread then blocks reading the rest: a few clients that send part of a request and stop hold
every thread, and nobody else is served. Here one event loop per worker process reads every
connection; a request reaches the thread pool only once its head and body are read (in memory, or
for a large git push in a temporary file), within the size limits and before its deadline, so a
thread never waits on a client's upload. Connections that stall are closed (with a 408 if they
had started a request).

h11 parses and frames HTTP/1.1; this module is only the glue between h11, the sockets, the thread
pool and WSGI. It is ours rather than an off-the-shelf ASGI server plus a WSGI adapter because
those would not hold what the app relies on: the exact request target as sent (``RAW_URI``, which
the request signatures cover, while ASGI only carries a re-split path and query), a JSON
``{"error": ...}`` for the failures the HTTP layer itself answers (414, 431, 400, 413, 408), a
deadline on request heads, and gunicorn's process model (``--workers``, graceful stop, the
``worker_exit`` hook that closes the app's state).

Responses are not buffered: the app's iterable is written chunk by chunk as the client reads it
(each chunk waits for the socket to drain), so a streamed response costs one thread while it
lasts and no more memory than a chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import io
import json
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from types import TracebackType
from typing import IO, Any
from urllib.parse import unquote_to_bytes, urlsplit

import h11
from gunicorn.workers.base import Worker

from .responses import INTERNAL_ERROR, REQUEST_TOO_BIG

SPOOL_FAILED = "Cannot take this push body now; try again shortly"
# A connection that answered an error and closes keeps draining what the client still sends for
# this long, so the client reads the answer instead of a reset.
LINGER_SECONDS = 2.0
READ_CHUNK = 65536

ExcInfo = tuple[type[BaseException], BaseException, TracebackType]


@dataclass(frozen=True)
class FrontLimits:
    """What the front accepts before the app sees a request."""

    # Seconds a client has to send one whole request (head and body) once it is due; also the
    # longest wait for the client to take each piece of a response.
    request_timeout: float = 30.0
    # Seconds an idle kept-alive connection waits for the next request.
    keepalive_timeout: float = 5.0
    max_body_bytes: int = 1024 * 1024
    # Requests whose target starts with ``bulk_prefix`` (git pushes to /mirror.git) may carry
    # up to ``bulk_body_bytes``, as slowly as they like while data keeps coming (each piece
    # within ``request_timeout`` of the last), within ``bulk_timeout`` in all.
    bulk_prefix: bytes = b"/mirror.git/"
    bulk_body_bytes: int = 64 * 1024 * 1024
    bulk_timeout: float = 600.0
    # Past ``bulk_in_memory`` bytes such a body goes to an unnamed temporary file (in $TMPDIR),
    # and a worker spools at most ``bulk_spools`` bodies at once (the next gets 503): anyone may
    # push, and bodies held in memory would let a few stalled pushes grow a worker by
    # ``bulk_body_bytes`` each.
    bulk_in_memory: int = 1024 * 1024
    bulk_spools: int = 4
    max_request_line: int = 8190
    max_header_fields: int = 100
    max_header_field: int = 8190
    max_head_bytes: int = 64 * 1024


class _Refused(Exception):
    """Answer the client ``status`` with ``{"error": message}`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Gone(Exception):
    """The client went away or stopped reading: nothing more can be sent."""


class _TimedOut(Exception):
    pass


def _close_body(body: _Body, _done: object) -> None:
    body.close()


class _Body:
    """A request body read whole: in memory, or spooled to a temporary file that holds one of
    the worker's spool slots until :meth:`close`."""

    def __init__(self) -> None:
        self.length = 0
        self._memory = bytearray()
        self._file: IO[bytes] | None = None
        self._release: Callable[[], None] | None = None

    @property
    def spooled(self) -> bool:
        return self._file is not None

    def append(self, data: bytes) -> None:
        self.length += len(data)
        if self._file is None:
            self._memory += data
        else:
            self._file.write(data)

    def spool(self, release: Callable[[], None]) -> None:
        """Move what is held so far into a temporary file; what comes next goes there too."""
        self._release = release
        # Closed by close(), after the app has read it: no ``with`` block spans that.
        self._file = tempfile.TemporaryFile(prefix="asfaload-push-")  # noqa: SIM115
        self._file.write(self._memory)
        self._memory = bytearray()

    def stream(self) -> IO[bytes]:
        if self._file is None:
            return io.BytesIO(self._memory)
        self._file.flush()
        self._file.seek(0)
        return self._file

    def close(self) -> None:
        file, self._file = self._file, None
        release, self._release = self._release, None
        if file is not None:
            file.close()
        if release is not None:
            release()


def error_bytes(status: int, message: str) -> bytes:
    """A complete ``Connection: close`` response with a JSON error body (the front's own
    answers, written without h11 because h11 may be in its error state by then)."""
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


class _Connection:
    """One client connection: read a request whole, run the app in a thread, write the answer,
    and again while the connection is kept alive."""

    def __init__(
        self, worker: BufferingWorker, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.worker = worker
        self.limits = worker.limits
        self.loop = asyncio.get_running_loop()
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_head_bytes)
        # True while waiting for the first byte of a request: a stopping worker closes these.
        self.idle = True
        self.must_close = False

    # --- reading -------------------------------------------------------------------------------
    async def _receive(self, deadline: float) -> None:
        remaining = deadline - self.loop.time()
        if remaining <= 0:
            raise _TimedOut
        try:
            data = await asyncio.wait_for(self.reader.read(READ_CHUNK), remaining)
        except TimeoutError:
            raise _TimedOut from None
        self.idle = False
        self.h11.receive_data(data)  # b"" is the client's end of stream

    def _started(self) -> bool:
        """Whether the client has sent any of the current request."""
        return self.h11.their_state is not h11.IDLE or bool(self.h11.trailing_data[0])

    def _check_request_line(self) -> None:
        # Reported as soon as the line is known to be too long, not when the whole head is.
        buf = self.h11.trailing_data[0]
        limit = self.limits.max_request_line
        if len(buf) > limit + 2 and b"\n" not in buf[: limit + 2]:
            raise _Refused(414, "Request line too long")

    async def _next_event(self, deadline: float, in_head: bool) -> object:
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                if in_head:
                    self._check_request_line()
                    if exc.error_status_hint == 431:
                        raise _Refused(431, "Request header fields too large") from None
                    if exc.error_status_hint == 501:
                        raise _Refused(501, "Unsupported transfer coding") from None
                raise _Refused(400, "Bad request: malformed HTTP request") from None
            if event is not h11.NEED_DATA:
                return event
            if in_head:
                self._check_request_line()
            await self._receive(deadline)

    async def read_request(self, first: bool) -> tuple[h11.Request, _Body] | None:
        """The next request and its whole body; None when the client closed or stayed idle."""
        now = self.loop.time()
        # A new connection gets the whole request timeout; a kept-alive one waits less for
        # its next request, then has the request timeout from its first byte on.
        deadline = now + self.limits.request_timeout
        self.idle = not self._started()
        try:
            if self.idle and not first:
                await self._next_event_or_idle(now + self.limits.keepalive_timeout)
                deadline = self.loop.time() + self.limits.request_timeout
            event = await self._next_event(deadline, in_head=True)
            if not isinstance(event, h11.Request):
                return None  # ConnectionClosed
            self._check_head(event)
            body = await self._read_body(event, deadline)
        except _TimedOut:
            if not self._started():
                return None
            raise _Refused(408, "Request timeout") from None
        return event, body

    async def _next_event_or_idle(self, deadline: float) -> None:
        # Read until the first byte arrives (or the client closes); silence past the deadline
        # closes the connection without an answer.
        while not self._started() and not self.h11.trailing_data[1]:
            await self._receive(deadline)

    def _check_head(self, request: h11.Request) -> None:
        if request.http_version not in (b"1.0", b"1.1"):
            raise _Refused(505, "HTTP version not supported")
        line = len(request.method) + len(request.target) + len(request.http_version) + 7
        if line > self.limits.max_request_line:
            raise _Refused(414, "Request line too long")
        if len(request.headers) > self.limits.max_header_fields:
            raise _Refused(431, "Too many request header fields")
        for name, value in request.headers:
            if len(name) + len(value) + 2 > self.limits.max_header_field:
                raise _Refused(431, "Request header field too large")
        if not request.target.startswith(b"/") and b"://" not in request.target:
            raise _Refused(400, "Bad request: unsupported request target")
        cap = self._body_cap(request)
        length = _content_length(request, cap)
        if length is not None and length > cap:
            raise _Refused(413, REQUEST_TOO_BIG)

    def _is_bulk(self, request: h11.Request) -> bool:
        prefix = self.limits.bulk_prefix
        return bool(prefix) and request.target.startswith(prefix)

    def _body_cap(self, request: h11.Request) -> int:
        return self.limits.bulk_body_bytes if self._is_bulk(request) else self.limits.max_body_bytes

    async def _read_body(self, request: h11.Request, deadline: float) -> _Body:
        body = _Body()
        try:
            await self._read_body_into(body, request, deadline)
        except BaseException:
            body.close()
            raise
        return body

    async def _read_body_into(self, body: _Body, request: h11.Request, deadline: float) -> None:
        cap = self._body_cap(request)
        bulk = self._is_bulk(request)
        last = self.loop.time() + self.limits.bulk_timeout
        while True:
            if bulk:
                deadline = min(last, self.loop.time() + self.limits.request_timeout)
            if self.h11.they_are_waiting_for_100_continue:
                self.writer.write(
                    self.h11.send(h11.InformationalResponse(status_code=100, headers=[])) or b""
                )
            event = await self._next_event(deadline, in_head=False)
            if isinstance(event, h11.Data):
                if body.length + len(event.data) > cap:
                    raise _Refused(413, REQUEST_TOO_BIG)
                try:
                    body.append(event.data)
                    if bulk and not body.spooled and body.length > self.limits.bulk_in_memory:
                        body.spool(self.worker.take_spool_slot())
                except OSError:  # $TMPDIR full or failing: the client may try again later
                    raise _Refused(503, SPOOL_FAILED) from None
            elif isinstance(event, h11.EndOfMessage):
                return
            else:  # ConnectionClosed mid-body
                raise _Gone

    # --- writing (from the app's thread, through _AppCall._send) ----------------------------
    async def send_events(self, events: list[h11.Event]) -> None:
        if self.writer.is_closing():
            raise _Gone
        self.writer.write(b"".join(self.h11.send(e) or b"" for e in events))
        await self._drain()

    async def send_error(self, status: int, message: str) -> None:
        self.must_close = True
        if not self.writer.is_closing():
            self.writer.write(error_bytes(status, message))
            await self._drain()

    async def _drain(self) -> None:
        try:
            await asyncio.wait_for(self.writer.drain(), self.limits.request_timeout)
        except (TimeoutError, ConnectionError):
            self.writer.transport.abort()
            raise _Gone from None

    # --- the connection's life ----------------------------------------------------------------
    async def serve(self) -> None:
        first = True
        try:
            while True:
                got = await self.read_request(first)
                if got is None:
                    return
                first = False
                request, body = got
                call = self.loop.run_in_executor(
                    self.worker.executor, _AppCall(self, request).run, self.environ(request, body)
                )
                # The body (a spooled file and its slot) is released once the app is done with
                # it, also when this task is cancelled at shutdown while the app still reads.
                call.add_done_callback(partial(_close_body, body))
                await asyncio.shield(call)
                self.worker.nr += 1
                if self.worker.nr >= self.worker.max_requests:
                    self.worker.alive = False
                if (
                    self.must_close
                    or not self.worker.alive
                    or self.h11.our_state is not h11.DONE
                    or self.h11.their_state is not h11.DONE
                ):
                    return
                self.h11.start_next_cycle()
        except _Refused as refused:
            await self._refuse(refused)
        except (_Gone, ConnectionError, h11.LocalProtocolError):
            pass
        finally:
            self.writer.close()

    async def _refuse(self, refused: _Refused) -> None:
        try:
            await self.send_error(refused.status, refused.message)
            # Half-close, then drain what the client is still sending so that it gets to read
            # the answer (closing with unread data would reset the connection).
            if self.writer.can_write_eof():
                self.writer.write_eof()
            deadline = self.loop.time() + LINGER_SECONDS
            while self.loop.time() < deadline:
                chunk = await asyncio.wait_for(
                    self.reader.read(READ_CHUNK), deadline - self.loop.time()
                )
                if not chunk:
                    break
        except (_Gone, TimeoutError, ConnectionError):
            pass

    def environ(self, request: h11.Request, body: _Body) -> dict[str, Any]:
        """The WSGI environ; ``RAW_URI`` and ``REQUEST_URI`` hold the target exactly as sent."""
        raw = request.target.decode("latin-1")
        if raw.startswith("/"):
            path, _, query = raw.partition("#")[0].partition("?")
        else:  # absolute form: http://host/path?query
            parts = urlsplit(raw)
            path, query = parts.path or "/", parts.query
        sockname = self.writer.get_extra_info("sockname") or ("", 0)
        peername = self.writer.get_extra_info("peername") or ("", 0)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method.decode("ascii"),
            "SCRIPT_NAME": "",
            "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": raw,
            "REQUEST_URI": raw,
            "SERVER_PROTOCOL": "HTTP/" + request.http_version.decode("ascii"),
            "SERVER_NAME": str(sockname[0]),
            "SERVER_PORT": str(sockname[1]),
            "REMOTE_ADDR": str(peername[0]),
            "REMOTE_PORT": str(peername[1]),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": body.stream(),
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": self.worker.cfg.workers > 1,
            "wsgi.run_once": False,
        }
        if body.length or any(name == b"content-length" for name, _ in request.headers):
            environ["CONTENT_LENGTH"] = str(body.length)
        for name, value in request.headers:  # h11 gives lower-case names
            # A name with "_" would alias one with "-" in the environ (X-Asfld_Signature for
            # X-Asfld-Signature): dropped, as gunicorn does.
            if b"_" in name or name in (b"content-length", b"transfer-encoding"):
                continue  # the body is already whole: its framing is ours to state
            text = value.decode("latin-1")
            if name == b"content-type":
                environ["CONTENT_TYPE"] = text
                continue
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
            environ[key] = f"{environ[key]},{text}" if key in environ else text
        return environ


def _content_length(request: h11.Request, cap: int) -> int | None:
    """The declared length (h11 checked it is one decimal number), or ``cap + 1`` for one too
    long to convert."""
    for name, value in request.headers:
        if name == b"content-length":
            return int(value) if len(value) <= len(str(cap)) else cap + 1
    return None


class _AppCall:
    """One run of the WSGI app in a pool thread; its output goes to the loop chunk by chunk."""

    def __init__(self, conn: _Connection, request: h11.Request) -> None:
        self.conn = conn
        self.head = request.method == b"HEAD"
        self.status: tuple[int, bytes] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_sent = False

    def _send(self, coro: Any) -> None:
        asyncio.run_coroutine_threadsafe(coro, self.conn.loop).result()

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None and self.headers_sent:
            raise exc_info[1].with_traceback(exc_info[2])
        code, _, reason = status.partition(" ")
        self.status = (int(code), reason.encode("latin-1"))
        self.headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        if not self.conn.worker.alive:
            # A stopping worker answers what it has read, then closes.
            self.headers.append((b"connection", b"close"))
        return self.write

    def write(self, data: bytes) -> None:
        events: list[h11.Event] = []
        if not self.headers_sent:
            if self.status is None:
                raise RuntimeError("the app wrote before start_response")
            code, reason = self.status
            events.append(h11.Response(status_code=code, headers=self.headers, reason=reason))
            self.headers_sent = True
        if data and not self.head:
            events.append(h11.Data(data=data))
        if events:
            self._send(self.conn.send_events(events))

    def run(self, environ: dict[str, Any]) -> None:
        app: Callable[..., Iterable[bytes]] = self.conn.worker.wsgi
        try:
            result = app(environ, self.start_response)
            try:
                for chunk in result:
                    if chunk:
                        self.write(chunk)
                self.write(b"")
                self._send(self.conn.send_events([h11.EndOfMessage()]))
            finally:
                close = getattr(result, "close", None)
                if callable(close):
                    close()
        except _Gone:
            self.conn.must_close = True
        except Exception:
            self.conn.worker.log.exception("Error handling request %s", environ.get("RAW_URI"))
            self.conn.must_close = True
            if not self.headers_sent:
                with contextlib.suppress(_Gone):
                    self._send(self.conn.send_error(500, INTERNAL_ERROR))


class BufferingWorker(Worker):  # type: ignore[misc]
    """gunicorn worker: one event loop reads and buffers requests, ``threads`` threads run the
    app. The limits come from the application object's ``front_limits()`` when it has one."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.connections: dict[asyncio.Task[None], _Connection] = {}
        self.quick = False
        self.stopping: asyncio.Event | None = None
        self.executor: ThreadPoolExecutor | None = None
        front_limits = getattr(self.app, "front_limits", None)
        self.limits: FrontLimits = front_limits() if callable(front_limits) else FrontLimits()
        self.spooling = 0  # bodies in temporary files now (only the event loop counts)

    def take_spool_slot(self) -> Callable[[], None]:
        """One of the worker's ``bulk_spools`` slots, and the function that gives it back; a
        503 when none is free."""
        if self.spooling >= self.limits.bulk_spools:
            raise _Refused(503, "Too many git pushes under way; try again shortly")
        self.spooling += 1
        given_back = False

        def give_back() -> None:
            nonlocal given_back
            if not given_back:
                given_back = True
                self.spooling -= 1

        return give_back

    def init_process(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.stopping = asyncio.Event()
        super().init_process()

    def init_signals(self) -> None:
        assert self.loop is not None
        for s in self.SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        self.loop.add_signal_handler(signal.SIGTERM, self._stop, False)
        self.loop.add_signal_handler(signal.SIGQUIT, self._stop, True)
        self.loop.add_signal_handler(signal.SIGINT, self._stop, True)
        self.loop.add_signal_handler(signal.SIGUSR1, self.log.reopen_files)
        self.loop.add_signal_handler(signal.SIGWINCH, lambda: None)
        self.loop.add_signal_handler(signal.SIGABRT, self.handle_abort, signal.SIGABRT, None)

    def _stop(self, quick: bool) -> None:
        """SIGTERM: finish the requests under way; SIGINT/SIGQUIT: drop them."""
        if quick:
            self.quick = True
            self.cfg.worker_int(self)
        self.alive = False
        if self.stopping is not None:
            self.stopping.set()

    def run(self) -> None:
        assert self.loop is not None
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self.executor = ThreadPoolExecutor(self.cfg.threads, thread_name_prefix="asfaload-app")
        servers = [
            await asyncio.start_server(self._accept, sock=listener.sock, backlog=self.cfg.backlog)
            for listener in self.sockets
        ]
        assert self.stopping is not None
        while self.alive:
            self.notify()
            if self.ppid != os.getppid():
                self.log.info("Parent changed, shutting down: %s", self)
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), 1.0)
        for server in servers:
            server.close()
        await self._drain_connections()
        # Any app call still running (its connection was dropped) finishes before the process
        # exits, so a write it queued is answered by the writer process.
        await asyncio.get_running_loop().run_in_executor(
            None, partial(self.executor.shutdown, wait=True, cancel_futures=True)
        )

    async def _drain_connections(self) -> None:
        """Close idle connections at once; give the others until the graceful timeout."""
        for task, conn in list(self.connections.items()):
            if conn.idle or self.quick:
                task.cancel()
        pending = set(self.connections)
        if pending and not self.quick:
            _, pending = await asyncio.wait(pending, timeout=self.cfg.graceful_timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.alive or len(self.connections) >= self.cfg.worker_connections:
            writer.transport.abort()
            return
        conn = _Connection(self, reader, writer)
        task = asyncio.current_task()
        assert task is not None
        self.connections[task] = conn
        try:
            await conn.serve()
        finally:
            del self.connections[task]
