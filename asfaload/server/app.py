"""The Flask application factory."""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from dataclasses import dataclass

from flask import Flask, Response, g, request
from werkzeug.routing import PathConverter

from ..auth import HEADERS, AuthenticatedRequest, verify_request_signature
from ..errors import ConfigError, DiskFullError, ReadOnlyError
from ..service import Backend
from ..store import Mirror
from ..store.nonces import REPLAY_MESSAGE, NonceClaim, SqliteNonceStore
from .config import ServerConfig
from .errors import error_response, install_error_handlers
from .watch import PendingRefresher

access_log = logging.getLogger("asfaload.access")

STATE_KEY = "asfaload"
_REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


@dataclass(frozen=True)
class ServerState:
    config: ServerConfig
    mirror: Mirror
    nonces: SqliteNonceStore
    backend: Backend
    refresher: PendingRefresher


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
        return Mirror.open(str(config.mirror_path), writer_socket=writer_socket, nonces=nonces)
    if config.read_only:
        raise ConfigError(
            "A read-only server needs an existing mirror: run `asfaload mirror sync` first"
        )
    return Mirror.init(str(config.mirror_path))


def create_app(config: ServerConfig, *, writer_socket: str | None = None) -> Flask:
    """The app of one server process; ``writer_socket``: the server's writer process
    (asfaload.store.remote), else this process writes through its own writer."""
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
    app.after_request(_settle_unused_nonce)
    if config.read_only:
        app.before_request(_refuse_writes)

    # Imported here: both blueprints import this module's helpers.
    from .git_http import git_blueprint
    from .tuf_api import tuf_blueprint
    from .v1 import openapi_bp, v1
    from .web import web

    app.register_blueprint(v1)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(tuf_blueprint)
    app.register_blueprint(git_blueprint)
    app.register_blueprint(web)
    return app


def _refuse_writes() -> None:
    # Git's fetches are POSTs too; /mirror.git refuses pushes itself, in git's own words.
    if request.blueprint == "git":
        return
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        raise ReadOnlyError("This server is a read-only mirror; send writes to the primary")


def state() -> ServerState:
    from flask import current_app

    st: ServerState = current_app.extensions[STATE_KEY]
    return st


def request_target() -> str:
    """The request target exactly as it was on the request line (what the client signed)."""
    env = request.environ
    raw = env.get("RAW_URI") or env.get("REQUEST_URI")
    if isinstance(raw, str) and raw:
        return raw
    # Fallback for servers that do not expose the raw line: rebuild from the decoded parts.
    from urllib.parse import quote

    target = quote(env.get("SCRIPT_NAME", "") + env.get("PATH_INFO", ""), safe="/%:@!$&'()*+,;=")
    query = env.get("QUERY_STRING", "")
    return f"{target}?{query}" if query else target


_HEADER_KEYS = tuple((name, "HTTP_" + name.upper().replace("-", "_")) for name in HEADERS)


def authenticate(*, nonce_with_write: bool = False) -> AuthenticatedRequest:
    """Verify the request's X-asfld-* headers (401 otherwise) and record its nonce; cached for
    the request.

    ``nonce_with_write``: the handler will pass :func:`nonce_for_write` to the one write it
    makes, which records the nonce in the same batch (a replay is refused there, 401). A request
    answered otherwise than by that write's success has its nonce settled on the way out, and
    is answered 401 instead if another request used it: the same answers as recording it here,
    at the cost of a lookup only for those.
    """
    cached: AuthenticatedRequest | None = g.get("auth")
    if cached is not None:
        return cached
    # Straight from the WSGI environ: werkzeug's header lookup walks the whole environ for each
    # name. A header sent twice arrives joined with "," (WSGI), which no X-asfld-* value parses.
    environ = request.environ
    headers = {name: environ[key] for name, key in _HEADER_KEYS if key in environ}
    body = request.get_data(cache=True)
    auth = verify_request_signature(headers, request.method, request_target(), body)
    st = state()
    if nonce_with_write and st.mirror.claims_nonces:
        g.pending_nonce = auth.nonce_claim
    else:
        st.nonces.claim(auth.nonce_claim)
    g.auth = auth
    return auth


def nonce_for_write() -> NonceClaim | None:
    """The nonce :func:`authenticate` left to the request's write, which records it."""
    claim: NonceClaim | None = g.get("pending_nonce")
    g.nonce_written = claim is not None
    return claim


def _settle_unused_nonce(resp: Response) -> Response:
    """Every verified request spends its nonce, whatever its answer.

    A write that succeeded recorded it. Any other answer may come before the claim reached the
    writer or after the writer recorded it: settling records it unless this request already
    did, and a nonce another request recorded makes this one a replay.
    """
    claim: NonceClaim | None = g.pop("pending_nonce", None)
    if claim is None or (g.pop("nonce_written", False) and resp.status_code < 400):
        return resp
    try:
        settled = state().nonces.settle(claim)
    except DiskFullError as e:
        # Nothing could be recorded, this request's write included (it was refused): its answer
        # stands, a success (none here writes) becomes the 507.
        return resp if resp.status_code >= 400 else error_response(e.http_status, str(e))
    if not settled:
        return error_response(401, REPLAY_MESSAGE)
    return resp


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
