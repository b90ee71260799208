"""The Flask application factory."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid

from flask import Flask, Response, g, request
from werkzeug.routing import PathConverter

from ..auth import AuthenticatedRequest
from ..errors import ConfigError, ReadOnlyError
from ..replication.sync import read_only_refusal
from ..service import Backend
from ..store import Mirror
from ..store.nonces import SqliteNonceStore
from .config import ServerConfig
from .context import STATE_KEY, ServerState, settle_unused_nonce, state
from .git_http import git_blueprint
from .pending_refresher import PendingRefresher
from .responses import install_error_handlers
from .tuf_api import start_refresher, tuf_blueprint
from .v1 import openapi_bp, v1
from .web import web

access_log = logging.getLogger("asfaload.access")

_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class AnyPathConverter(PathConverter):
    """Like ``path`` but also matches '' and leading slashes, so that the handler (not the
    router) rejects bad paths with a JSON 400 instead of an opaque 404 or redirect."""

    regex = ".*"
    part_isolating = False  # Werkzeug would infer True from a regex without '/'


def prepare_data_dir(
    config: ServerConfig,
    writer_socket: str | None = None,
    nonces: SqliteNonceStore | None = None,
) -> Mirror:
    """Create the data dir on first start (``mirror.git`` with its hooks, ``private/``)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    config.private_dir.mkdir(mode=0o700, exist_ok=True)
    if config.mirror_path.exists():
        return Mirror.open(
            str(config.mirror_path),
            writer_socket=writer_socket,
            nonces=nonces,
            objects=config.objects,
        )
    if config.read_only:
        raise ConfigError(
            "A read-only server needs an existing mirror: run `asfaload mirror sync` first"
        )
    return Mirror.init(str(config.mirror_path), objects=config.objects)


def create_app(config: ServerConfig, *, writer_socket: str | None = None) -> Flask:
    """The app of one server process; ``writer_socket``: the server's writer process
    (asfaload.store.writer_process), else this process writes through its own writer."""
    config.private_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    nonces = SqliteNonceStore(config.nonce_db_path)
    mirror = prepare_data_dir(config, writer_socket, nonces)
    backend = Backend.create(mirror, config.private_dir, config.forge_config())

    app = Flask("asfaload.server")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    app.url_map.converters["anypath"] = AnyPathConverter
    refresher = PendingRefresher(mirror.path, backend.pending).start()
    app.extensions[STATE_KEY] = ServerState(config, mirror, nonces, backend, refresher)

    install_error_handlers(app)
    _install_access_log(app)
    # Registered after the access log's hook, so it runs before it (Flask runs them in reverse).
    app.after_request(settle_unused_nonce)
    if config.read_only:
        app.before_request(_refuse_writes)

    # Imported here: both blueprints import this module's helpers.
    app.register_blueprint(v1)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(tuf_blueprint)
    app.register_blueprint(git_blueprint)
    app.register_blueprint(web)
    # TUF online metadata is re-signed before it expires by one of the server's processes.
    start_refresher(app, mirror, config)
    return app


def _refuse_writes() -> None:
    # Git's fetches are POSTs too; /mirror.git refuses pushes itself, in git's own words.
    if request.blueprint == "git":
        return
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        config = state().config
        text = read_only_refusal(
            str(config.mirror_path), "send writes", config.primary_url, rest=True
        )
        raise ReadOnlyError(text[0].upper() + text[1:])


def _install_access_log(app: Flask) -> None:
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.setLevel(logging.INFO)
        access_log.propagate = False
    server_log = logging.getLogger("asfaload.server")
    if not server_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(levelname)s] %(name)s: %(message)s"))
        server_log.addHandler(handler)
        server_log.setLevel(logging.INFO)
        server_log.propagate = False

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        rid = request.headers.get("X-Request-Id", "")
        g.request_id = rid if _REQUEST_ID_RE.fullmatch(rid) else str(uuid.uuid4())

    @app.after_request
    def _log(resp: Response) -> Response:
        rid = g.get("request_id") or str(uuid.uuid4())
        resp.headers["X-Request-Id"] = rid
        started = g.get("started")
        auth: AuthenticatedRequest | None = g.get("auth")
        record = {
            "ts": round(time.time(), 3),
            "request_id": rid,
            "remote": request.remote_addr,
            "method": request.method,
            "path": request.path,
            "status": resp.status_code,
            "bytes": resp.calculate_content_length(),
            "ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "key": str(auth.public_key) if auth else None,
        }
        access_log.info(json.dumps(record, separators=(",", ":")))
        return resp
