"""Run the app under gunicorn: one app per worker process, graceful shutdown.

Each worker is a :class:`~asfaload.server.front.BufferingWorker`: it reads every request whole
(within the size limits and the request timeout) before a thread runs the app, so clients that
stall cannot hold the threads.

On SIGTERM gunicorn stops accepting connections and lets each worker finish its in-flight
requests (up to ``graceful_timeout``). A write is acknowledged only after its commit is
published, so finishing the requests finishes the queued writes; then the writer process
(asfaload.store.writer_process) that the workers write through is stopped.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication

from ..errors import StoreError
from ..store.writer_process import WriterProcess
from .app import create_app, prepare_data_dir
from .config import APP_THREADS, ServerConfig
from .context import STATE_KEY, ServerState
from .front import BufferingWorker, FrontLimits

log = logging.getLogger("asfaload.server")


def _close_state(app: Flask) -> None:
    st: ServerState | None = app.extensions.get(STATE_KEY)
    if st is None:
        return
    from .tuf_api import stop_refresher

    stop_refresher(app)
    st.refresher.stop()
    # The pending index's cache file is written lazily; leave it current for the next start.
    st.backend.pending.close()
    close = getattr(st.mirror, "close", None)
    if callable(close):
        close()


class AsfaloadGunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, config: ServerConfig, writer_socket: str | None = None) -> None:
        self.server_config = config
        self.writer_socket = writer_socket
        self._app: Flask | None = None
        super().__init__()

    def load_config(self) -> None:
        c = self.server_config
        settings: dict[str, Any] = {
            "bind": [_bind(c.host, c.port)],
            "workers": c.workers,
            "worker_class": BufferingWorker,
            # Threads that run the app; requests reach them only once read whole.
            "threads": APP_THREADS,
            "graceful_timeout": c.graceful_timeout,
            "timeout": 120,
            # Seconds an idle kept-alive connection waits for its next request.
            "keepalive": 5,
            "preload_app": False,
            "accesslog": None,  # our structured access log replaces gunicorn's
            "errorlog": "-",
            "loglevel": c.log_level,
            "proc_name": "asfaload",
            # gunicorn's control socket would live in $HOME and be shared by every server.
            "control_socket_disable": True,
            "worker_exit": _worker_exit,
            # The front's request-line and header limits (FrontLimits) are these settings.
            "limit_request_line": 8190,
            "limit_request_fields": 100,
            "limit_request_field_size": 8190,
        }
        for key, value in settings.items():
            self.cfg.set(key, value)

    def front_limits(self) -> FrontLimits:
        """What BufferingWorker accepts before the app sees a request."""
        return FrontLimits(
            request_timeout=float(self.server_config.request_timeout),
            keepalive_timeout=float(self.cfg.keepalive),
            max_body_bytes=self.server_config.max_body_bytes,
            bulk_body_bytes=self.server_config.git_max_push_bytes,
            bulk_timeout=float(self.server_config.git_timeout),
            bulk_spools=self.server_config.git_max_concurrent,
            max_request_line=self.cfg.limit_request_line,
            max_header_fields=self.cfg.limit_request_fields,
            max_header_field=self.cfg.limit_request_field_size,
        )

    def load(self) -> Flask:
        app = create_app(self.server_config, writer_socket=self.writer_socket)
        self._app = app
        return app


def _worker_exit(server: Any, worker: Any) -> None:
    app = getattr(worker, "wsgi", None)
    if isinstance(app, Flask):
        _close_state(app)


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def serve(config: ServerConfig) -> None:
    """Create the data dir once in the master (so workers never race on init), start the
    writer process (asfaload.store.writer_process) the workers write through, then serve.

    gunicorn's master returns (or raises SystemExit) once its workers have finished their
    requests, so every write they queued has been answered before the writer process is
    stopped; it then finishes anything still queued before exiting.
    """
    prepare_data_dir(config).close()
    if config.read_only:
        AsfaloadGunicorn(config).run()
        return
    try:
        writer = WriterProcess(
            str(config.mirror_path), str(config.nonce_db_path), objects=config.objects
        )
    except StoreError as exc:
        # Still correct without it (each worker's own writer, the cross-process lock and the
        # compare-and-swap), only slower under concurrent writes.
        log.warning("%s; the workers will write the mirror themselves", exc)
        AsfaloadGunicorn(config).run()
        return
    with writer:
        AsfaloadGunicorn(config, writer_socket=writer.socket_path).run()
