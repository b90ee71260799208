"""FaynoSync-compatible TUF endpoints: ``POST /login`` and ``/tuf/v1/*`` (``docs/contracts.md``).

Shapes, messages and status codes follow FaynoSync and the Asfaload manual, with these fixes
(a valid partial signature is a 200 with progress, roots python-tuf cannot read are refused,
published roots re-sign snapshot and timestamp) and one addition: the server re-signs online
metadata before it expires (:func:`start_refresher`) and ``GET /tuf/v1/metadata/expiry`` shows
when. The work itself is in :mod:`asfaload.tuf`.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request

from ..errors import AuthenticationError, FormatError, TufError
from ..model import parse_json
from ..tuf.accounts import User
from ..tuf.documents import AppRef, Expirations, validate_app_name
from ..tuf.expiry import RefreshPolicy
from ..tuf.refresher import OnlineRefresher
from ..tuf.service import MirrorLike, TufService
from .config import ServerConfig
from .context import state
from .responses import json_response as _json

tuf_blueprint = Blueprint("tuf", __name__)

_SERVICE_KEY = "asfaload.tuf"
_REFRESHER_KEY = "asfaload.tuf.refresher"
_lock = threading.Lock()


def service() -> TufService:
    svc: TufService | None = current_app.extensions.get(_SERVICE_KEY)
    if svc is None:
        with _lock:
            svc = current_app.extensions.get(_SERVICE_KEY)
            if svc is None:
                st = state()
                svc = TufService(st.mirror, st.config.private_dir)
                current_app.extensions[_SERVICE_KEY] = svc
    return svc


# --- re-signing online metadata before it expires -------------------------------------------------
def refresh_policy(config: ServerConfig) -> RefreshPolicy | None:
    """How this server re-signs online metadata; None when it does not (read-only, or off)."""
    if config.read_only or config.tuf_refresh_interval == 0:
        return None
    return RefreshPolicy(config.tuf_refresh_margin, config.tuf_refresh_interval)


def start_refresher(app: Flask, mirror: MirrorLike, config: ServerConfig) -> None:
    """Run the scheduler in this process; of all the server's processes, the one holding its
    lock re-signs (asfaload.tuf.refresher)."""
    policy = refresh_policy(config)
    if policy is None:
        return
    log = logging.getLogger("asfaload.server.tuf")
    refresher = OnlineRefresher(mirror, config.private_dir, policy, log=log)
    app.extensions[_REFRESHER_KEY] = refresher.start()


def stop_refresher(app: Flask) -> None:
    refresher: OnlineRefresher | None = app.extensions.pop(_REFRESHER_KEY, None)
    if refresher is not None:
        refresher.stop()


# --- plumbing -------------------------------------------------------------------------------------
# Other AsfaloadErrors fall through to the app's handler (asfaload.server.responses): one place
# decides what a failure may say.
@tuf_blueprint.errorhandler(TufError)
def _tuf_error(err: TufError) -> Response:
    return _json(err.body(), err.http_status)


def _body(required: bool = True) -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip() and not required:
        return {}
    try:
        doc = parse_json(raw, FormatError)
    except FormatError as exc:
        raise TufError(f"Invalid payload format: {exc}") from None
    if not isinstance(doc, dict):
        raise TufError("Invalid payload format: expected a JSON object")
    return doc


def _role(body: Any) -> str:
    role = body.get("role")
    if not isinstance(role, str) or not role:
        raise TufError("Invalid payload format: role is required")
    return role.lower()


def _app_ref(name: str | None = None) -> AppRef:
    app = request.args.get("appName") if name is None else name
    if not app:
        raise TufError("appName query parameter is required")
    validate_app_name(app)
    user: User = g.tuf_user
    return AppRef(user.username, app)


@tuf_blueprint.before_request
def _admin_gate() -> None:
    if request.endpoint == "tuf.login":
        return
    g.tuf_user = service().accounts.authenticate(request.headers.get("Authorization"))


# --- login -----------------------------------------------------------------------------------------
@tuf_blueprint.post("/login")
def login() -> Response:
    try:
        body = parse_json(request.get_data(cache=True), FormatError)
    except FormatError:
        body = None
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("username"), str)
        or not isinstance(body.get("password"), str)
    ):
        return _json({"error": "invalid request body"}, 400)
    accounts = service().accounts
    try:
        user = accounts.check_password(body["username"], body["password"])
    except AuthenticationError:
        return _json({"error": "invalid username or password"}, 401)
    return _json({"token": accounts.issue_token(user)})


# --- bootstrap -------------------------------------------------------------------------------------
@tuf_blueprint.get("/tuf/v1/bootstrap")
def bootstrap_status() -> Response:
    ref = _app_ref()
    data = service().bootstrap_status(ref)
    message = (
        "Bootstrap already completed for this admin."
        if data["bootstrap"]
        else "System available for bootstrap."
    )
    return _json({"data": data, "message": message})


@tuf_blueprint.post("/tuf/v1/bootstrap")
def bootstrap() -> Response:
    body = _body()
    name = body.get("appName")
    if not isinstance(name, str) or not name:
        raise TufError("Invalid payload format: appName is required")
    ref = _app_ref(name)
    svc = service()
    if svc.is_bootstrapped(ref):
        status = svc.bootstrap_status(ref)
        raise TufError(
            "Bootstrap already completed for this admin and app",
            status=409,
            data={
                "task_id": status["id"],
                "admin": ref.admin,
                "app": ref.app,
                "status": "completed",
            },
        )
    expirations = Expirations.from_settings(body.get("settings"))
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        raise TufError("Missing required field: metadata")
    if metadata.get("root") is None:
        raise TufError("Missing required field: metadata.root")
    done = svc.bootstrap(ref, metadata["root"], expirations)
    return _json(
        {"data": done.data(), "message": "Bootstrap accepted and started in background"}, 202
    )


# --- root rotation ---------------------------------------------------------------------------------
def _require_bootstrapped(ref: AppRef) -> None:
    if not service().is_bootstrapped(ref):
        raise TufError(
            "Requires bootstrap finished. State: ", status=404, message="Task not accepted."
        )


@tuf_blueprint.post("/tuf/v1/metadata")
def rotate() -> Response:
    ref = _app_ref()
    _require_bootstrapped(ref)
    body = _body()
    metadata = body.get("metadata")
    if not isinstance(metadata, dict):
        raise TufError("Invalid payload format: metadata is required and must be an object")
    if metadata.get("root") is None:
        raise TufError("Root metadata is required")
    done = service().rotate(ref, metadata["root"])
    return _json({"data": done.data(), "message": "Metadata Update Processed"})


@tuf_blueprint.get("/tuf/v1/metadata/sign")
def pending() -> Response:
    ref = _app_ref()
    data = service().pending(ref, int(time.time()))
    if data is None:
        return _json({"data": None, "message": "No metadata pending signing available"})
    return _json({"data": data, "message": "Metadata role(s) pending signing"})


@tuf_blueprint.post("/tuf/v1/metadata/sign")
def sign() -> Response:
    ref = _app_ref()
    body = _body()
    role = _role(body)
    sig = body.get("signature")
    if (
        not isinstance(sig, dict)
        or not isinstance(sig.get("keyid"), str)
        or not isinstance(sig.get("sig"), str)
    ):
        raise TufError("Invalid payload format: signature must be {keyid, sig}")
    done = service().sign(ref, role, sig["keyid"], sig["sig"])
    if done.published:
        message = "Metadata update finished"
    else:
        assert done.progress is not None
        message = "Signature accepted, threshold not reached. " + done.progress.summary()
    return _json({"data": done.data(), "message": message})


@tuf_blueprint.post("/tuf/v1/metadata/sign/delete")
def delete_draft() -> Response:
    ref = _app_ref()
    body = _body()
    done = service().delete_draft(ref, _role(body))
    return _json({"data": done.data(), "message": "Metadata sign delete accepted."}, 202)


@tuf_blueprint.post("/tuf/v1/metadata/online")
def online() -> Response:
    ref = _app_ref()
    body = _body(required=False)
    roles = body.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise TufError("Invalid payload format: roles must be a list of role names")
    done = service().refresh_online(ref, [r.lower() for r in roles])
    return _json({"data": done.data(), "message": "Force online metadata update accepted."}, 202)


@tuf_blueprint.get("/tuf/v1/metadata/root")
def trusted_root() -> Response:
    ref = _app_ref()
    return _json({"data": {"trusted_root": service().trusted_root(ref, int(time.time()))}})


@tuf_blueprint.get("/tuf/v1/metadata/expiry")
def expiry() -> Response:
    """Each published role's version and expiry, and when this server re-signs it."""
    ref = _app_ref()
    config = state().config
    policy = refresh_policy(config)
    roles = service().expiries(ref, policy)
    now = int(time.time())
    refresh = {
        "enabled": policy is not None,
        "margin": config.tuf_refresh_margin,
        "interval": config.tuf_refresh_interval,
    }
    return _json(
        {
            "data": {"roles": [r.to_dict(now) for r in roles], "refresh": refresh},
            "message": "Metadata expiry.",
        }
    )


@tuf_blueprint.get("/tuf/v1/task")
def task() -> Response:
    task_id = request.args.get("task_id")
    if not task_id:
        raise TufError("task_id query parameter is required")
    user: User = g.tuf_user
    found = service().tasks.get(task_id, user.username)
    return _json({"data": found.to_dict(), "message": "Task state."})
