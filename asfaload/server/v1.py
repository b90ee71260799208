"""The /v1 endpoints of the REST manual: HTTP in, a Backend use-case, HTTP out.

Every authenticated handler calls :func:`authenticate` before it looks at the body, so a request
that does not verify is answered 401 whatever it carries.
"""

from __future__ import annotations

import base64

from flask import Blueprint, Response, request

from ..auth import HEADERS
from ..errors import FormatError
from ..rules.status import REVOKE_MESSAGES
from ..service import RegistrationResult
from ..service.backend import check_submitter
from .bodies import AssetsBody, RevokeBody, SignaturesBody, SignersFileBody
from .context import authenticate, nonce_for_write, state
from .openapi import openapi_document
from .responses import json_response as _json

v1 = Blueprint("v1", __name__, url_prefix="/v1")

SIGNATURE_SUBMISSION_URL = "/v1/signatures"


def _raw(data: bytes, content_type: str) -> Response:
    return Response(data, status=200, content_type=content_type)


def _body() -> bytes:
    return request.get_data(cache=True)


def _signers_request_response(result: RegistrationResult, message: str) -> Response:
    return _json(
        {
            "success": True,
            "project_id": result.project_id,
            "message": message,
            "required_signers": list(result.required_signers),
            "signature_submission_url": SIGNATURE_SUBMISSION_URL,
        }
    )


@v1.get("/ping")
def ping() -> Response:
    return _json({"status": "ok"})


# --- registration --------------------------------------------------------------------------------
@v1.post("/register_repo")
def register_repo() -> Response:
    caller = authenticate()
    body = SignersFileBody.parse(_body())
    result = state().backend.register_repo(
        body.signers_file_url, body.public_key, caller.public_key
    )
    return _signers_request_response(
        result, "Project registered successfully. Collect signatures to activate."
    )


@v1.post("/update_signers")
def update_signers() -> Response:
    caller = authenticate()
    body = SignersFileBody.parse(_body())
    result = state().backend.update_signers(
        body.signers_file_url, body.public_key, caller.public_key
    )
    return _signers_request_response(
        result, "Signers update proposed successfully. Collect signatures to activate."
    )


# --- signatures ----------------------------------------------------------------------------------
@v1.post("/signatures")
def submit_signatures() -> Response:
    caller = authenticate(nonce_with_write=True)
    body = SignaturesBody.parse(_body())
    check_submitter(body.public_key, caller.public_key)
    backend = state().backend
    complete = backend.add_signatures(
        body.file_path, caller.public_key, body.signatures, nonce=nonce_for_write()
    )
    return _json({"is_complete": complete})


@v1.get("/signatures/<anypath:file_path>")
def signature_status(file_path: str) -> Response:
    # Public facts (the mirror shows them to anyone); a request that carries the X-asfld-*
    # headers is still held to them, so a bad signature stays a 401.
    if any(name in request.headers for name in HEADERS):
        authenticate()
    return _json(state().backend.signature_status(file_path).to_dict())


@v1.get("/pending_signatures")
def pending_signatures() -> Response:
    caller = authenticate()
    backend = state().backend
    states = backend.file_states(backend.pending_for(caller.public_key))
    return _json(
        {
            "file_paths": [p for p, _ in states],
            "files": [{"file_path": p, "status": s.value} for p, s in states],
        }
    )


# --- files ---------------------------------------------------------------------------------------
@v1.get("/files/<anypath:file_path>")
def get_file(file_path: str) -> Response:
    return _raw(state().backend.read_file(file_path), "application/octet-stream")


@v1.get("/files-to-sign/<anypath:file_path>")
def files_to_sign(file_path: str) -> Response:
    caller = authenticate()
    files = state().backend.files_to_sign(file_path, caller.public_key)
    return _json(
        {"files": {p: base64.b64encode(data).decode("ascii") for p, data in files.items()}}
    )


# --- signers -------------------------------------------------------------------------------------
@v1.get("/get_signers/<anypath:file_path>")
def get_signers(file_path: str) -> Response:
    return _raw(state().backend.get_signers(file_path), "application/json")


@v1.get("/get_signers_chain/<anypath:artifact_path>")
def get_signers_chain(artifact_path: str) -> Response:
    return _json(state().backend.signers_chain(artifact_path))


# --- revocation and assets -----------------------------------------------------------------------
@v1.post("/revoke")
def revoke() -> Response:
    caller = authenticate()
    body = RevokeBody.parse(_body())
    check_submitter(body.public_key, caller.public_key)
    backend = state().backend
    status = backend.revoke(body.file_path, body.revocation_json, body.signature, caller.public_key)
    return _json({"success": True, "message": REVOKE_MESSAGES[status], "status": status})


@v1.post("/assets")
def register_assets() -> Response:
    caller = authenticate()
    body = AssetsBody.parse(_body())
    backend = state().backend
    if body.csum_files:
        index_path = backend.register_checksum_files(list(body.csum_files), caller.public_key)
        message = "Assets registered successfully"
    elif body.gitlab_release_url is not None:
        index_path = backend.register_release(body.gitlab_release_url, caller.public_key, "gitlab")
        message = "Release registered successfully"
    elif body.github_release_url is not None:
        index_path = backend.register_release(body.github_release_url, caller.public_key, "github")
        message = "Release registered successfully"
    else:  # AssetsBody.parse guarantees one source
        raise FormatError("github_release_url and csum_files are mutually exclusive")
    return _json({"success": True, "message": message, "index_file_path": index_path})


# --- the API description -----------------------------------------------------------------------
openapi_bp = Blueprint("openapi", __name__)


@openapi_bp.get("/openapi.json")
def openapi_json() -> Response:
    return _json(openapi_document())
