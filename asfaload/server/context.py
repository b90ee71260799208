"""What the server's blueprints share: the per-process state, and a request's authentication.

The app factory (:mod:`.app`) builds the state; the blueprints read it through :func:`state`
and authenticate requests through :func:`authenticate`, so no blueprint imports the factory.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Response, g, request

from ..auth import (
    HEADERS,
    REPLAY_MESSAGE,
    AuthenticatedRequest,
    NonceClaim,
    verify_request_signature,
)
from ..errors import DiskFullError
from ..service import Backend
from ..store import Mirror
from ..store.nonces import SqliteNonceStore
from .config import ServerConfig
from .pending_refresher import PendingRefresher
from .responses import error_response

STATE_KEY = "asfaload"


@dataclass(frozen=True)
class ServerState:
    config: ServerConfig
    mirror: Mirror
    nonces: SqliteNonceStore
    backend: Backend
    refresher: PendingRefresher


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


def settle_unused_nonce(resp: Response) -> Response:
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
