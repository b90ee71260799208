"""``GET /openapi.json``: the /v1 API described as OpenAPI 3.0 (request and response schemas).

Kept beside the handlers and checked against the live server by the tests (every route of the
app is described, every described route exists, responses match their schemas).
"""

from __future__ import annotations

from typing import Any

from ..auth import HEADER_NONCE, HEADER_PK, HEADER_SIG, HEADER_TIMESTAMP

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    names = {
        400: "Bad request (invalid path, body, key or signature)",
        401: "Missing or invalid authentication headers",
        403: "The key is not authorised for this file",
        404: "Not found",
        409: "Conflict with the current state",
        413: "Request body too large",
        500: "Internal server error",
        502: "The forge could not be reached or answered badly",
    }
    return {str(c): _json_response(names[c], _ERROR) for c in codes}


_PATH_PARAM = {
    "name": "file_path",
    "in": "path",
    "required": True,
    "description": "Mirror-relative path; slashes are preserved.",
    "schema": {"type": "string"},
}


def _auth_params(*, required: bool = True) -> list[dict[str, Any]]:
    params = [
        {
            "name": HEADER_TIMESTAMP,
            "in": "header",
            "required": True,
            "description": "Unix time in seconds (accepted 5 minutes old to 10 s ahead).",
            "schema": {"type": "string", "pattern": "^(0|[1-9][0-9]{0,11})$"},
        },
        {
            "name": HEADER_NONCE,
            "in": "header",
            "required": True,
            "description": "UUID v4, canonical lowercase hyphenated form; single use.",
            "schema": {"type": "string", "format": "uuid"},
        },
        {
            "name": HEADER_PK,
            "in": "header",
            "required": True,
            "description": "Caller's public key (minisign:… or ed25519:…).",
            "schema": {"type": "string"},
        },
        {
            "name": HEADER_SIG,
            "in": "header",
            "required": True,
            "description": (
                'Signature over SHA-512 of "{timestamp}##{nonce}##{METHOD}##{target}##{body}".'
            ),
            "schema": {"type": "string"},
        },
    ]
    return [dict(p, required=required) for p in params]


def _body(schema_ref: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


_REGISTRATION_RESPONSE = {
    "type": "object",
    "required": [
        "success",
        "project_id",
        "message",
        "required_signers",
        "signature_submission_url",
    ],
    "properties": {
        "success": {"type": "boolean"},
        "project_id": {"type": "string"},
        "message": {"type": "string"},
        "required_signers": {"type": "array", "items": {"type": "string"}},
        "signature_submission_url": {"type": "string"},
    },
}

_SIGNER = {"$ref": "#/components/schemas/Signer"}
_GROUP = {"$ref": "#/components/schemas/Group"}
_STATUS = {"type": "string", "enum": ["pending", "complete", "revoked"]}

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
        "additionalProperties": False,
    },
    "SignersFileRequest": {
        "type": "object",
        "required": ["signers_file_url", "public_key"],
        "properties": {
            "signers_file_url": {"type": "string", "format": "uri"},
            "public_key": {"type": "string"},
        },
    },
    "RegistrationResponse": _REGISTRATION_RESPONSE,
    "SignaturesRequest": {
        "type": "object",
        "required": ["file_path", "public_key", "signatures"],
        "properties": {
            "file_path": {"type": "string"},
            "public_key": {"type": "string"},
            "signatures": {
                "type": "object",
                "description": "Mirror path -> signature wire string (signers file + metadata).",
                "additionalProperties": {"type": "string"},
            },
        },
    },
    "SignaturesResponse": {
        "type": "object",
        "required": ["is_complete"],
        "properties": {"is_complete": {"type": "boolean"}},
    },
    "Signer": {
        "type": "object",
        "description": "A key: its minisign-style key id and its key string.",
        "required": ["key_id", "public_key"],
        "properties": {"key_id": {"type": "string"}, "public_key": {"type": "string"}},
    },
    "Group": {
        "type": "object",
        "description": (
            "One group of the completion rule. missing: its keys that have not signed while the "
            "requirement it belongs to is unmet (any `needed` of them suffice); empty once met."
        ),
        "required": ["role", "threshold", "size", "signed", "missing", "needed", "met"],
        "properties": {
            "role": {"type": "string"},
            "threshold": {"type": "integer", "minimum": 1},
            "size": {"type": "integer", "minimum": 1},
            "signed": {"type": "array", "items": _SIGNER},
            "missing": {"type": "array", "items": _SIGNER},
            "needed": {"type": "integer", "minimum": 0},
            "met": {"type": "boolean"},
        },
    },
    "Revocation": {
        "type": "object",
        "description": "A revocation: complete (the file is revoked) or pending.",
        "required": ["file_path", "status", "initiator", "timestamp", "reason", "signed", "groups"],
        "properties": {
            "file_path": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "complete"]},
            "initiator": _SIGNER,
            "timestamp": {"type": "string", "description": "The document's, RFC 3339 UTC."},
            "reason": {"type": "string", "nullable": True},
            "signed": {"type": "array", "items": _SIGNER},
            "groups": {"type": "array", "items": _GROUP},
        },
    },
    "SignatureStatus": {
        "type": "object",
        "required": [
            "file_path",
            "is_complete",
            "status",
            "kind",
            "rule",
            "groups",
            "signed",
            "missing",
            "revocation",
        ],
        "properties": {
            "file_path": {"type": "string"},
            "is_complete": {"type": "boolean"},
            "status": _STATUS,
            "kind": {
                "type": "string",
                "enum": ["artifact", "revocation", "signers-initial", "signers-update"],
            },
            "rule": {"type": "string"},
            "groups": {"type": "array", "items": _GROUP},
            "signed": {"type": "array", "items": _SIGNER},
            "missing": {
                "type": "array",
                "items": _SIGNER,
                "description": "Every key still needed (empty unless pending).",
            },
            "revocation": {
                "allOf": [{"$ref": "#/components/schemas/Revocation"}],
                "nullable": True,
            },
        },
    },
    "PendingSignatures": {
        "type": "object",
        "required": ["file_paths", "files"],
        "properties": {
            "file_paths": {"type": "array", "items": {"type": "string"}},
            "files": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["file_path", "status"],
                    "properties": {"file_path": {"type": "string"}, "status": _STATUS},
                },
            },
        },
    },
    "FilesToSign": {
        "type": "object",
        "required": ["files"],
        "properties": {
            "files": {
                "type": "object",
                "description": "Mirror path -> base64 of the file's bytes.",
                "additionalProperties": {"type": "string", "format": "byte"},
            }
        },
    },
    "SignersChain": {
        "type": "object",
        "required": ["chain", "history"],
        "properties": {
            "chain": {
                "type": "object",
                "required": ["history_entries", "current_signers_info"],
                "properties": {
                    "history_entries": {"type": "array", "items": {"type": "object"}},
                    "current_signers_info": {"type": "object", "nullable": True},
                },
            },
            "history": {
                "type": "object",
                "required": ["entries"],
                "properties": {"entries": {"type": "array", "items": {"type": "object"}}},
            },
        },
    },
    "RevokeRequest": {
        "type": "object",
        "required": ["file_path", "revocation_json", "signature", "public_key"],
        "properties": {
            "file_path": {"type": "string"},
            "revocation_json": {
                "type": "string",
                "description": "The exact revocation document text that is signed.",
            },
            "signature": {"type": "string"},
            "public_key": {"type": "string"},
        },
    },
    "SuccessMessage": {
        "type": "object",
        "required": ["success", "message"],
        "properties": {"success": {"type": "boolean"}, "message": {"type": "string"}},
    },
    "RevokeResponse": {
        "type": "object",
        "required": ["success", "message", "status"],
        "properties": {
            "success": {"type": "boolean"},
            "message": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["revoked", "pending"],
                "description": "revoked: the file is revoked now (a revocation threshold of 1); "
                "pending: the revocation awaits more revocation keys (sign-pending on "
                "FILE.revocation.json.pending).",
            },
        },
    },
    "AssetsRequest": {
        "type": "object",
        "description": "Exactly one of github_release_url, gitlab_release_url, csum_files.",
        "properties": {
            "github_release_url": {"type": "string", "format": "uri"},
            "gitlab_release_url": {"type": "string", "format": "uri"},
            "csum_files": {"type": "array", "items": {"type": "string", "format": "uri"}},
        },
    },
    "AssetsResponse": {
        "type": "object",
        "required": ["success", "message", "index_file_path"],
        "properties": {
            "success": {"type": "boolean"},
            "message": {"type": "string"},
            "index_file_path": {"type": "string"},
        },
    },
    "Ping": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["ok"]}},
    },
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _post(
    summary: str, body: str, response: str, codes: tuple[int, ...], op_id: str
) -> dict[str, Any]:
    return {
        "post": {
            "operationId": op_id,
            "summary": summary,
            "parameters": _auth_params(),
            "requestBody": _body(body),
            "responses": {"200": _json_response("OK", _ref(response)), **_errors(*codes)},
        }
    }


def _get(
    summary: str,
    response: dict[str, Any],
    codes: tuple[int, ...],
    op_id: str,
    *,
    auth: bool | str,
    path_param: bool = True,
) -> dict[str, Any]:
    """``auth``: True (the X-asfld-* headers are required), "optional" (a public read that
    also takes them: sent, they must verify) or False."""
    auth_params = _auth_params(required=auth is True) if auth else []
    params = ([dict(_PATH_PARAM)] if path_param else []) + auth_params
    return {
        "get": {
            "operationId": op_id,
            "summary": summary,
            "parameters": params,
            "responses": {"200": response, **_errors(*codes)},
        }
    }


_OCTETS = {
    "description": "Raw file bytes",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
}
_RAW_JSON = {
    "description": "The raw signers file, byte for byte",
    "content": {"application/json": {"schema": {"type": "object"}}},
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "asfaload REST API",
            "version": "1",
            "description": (
                "Multi-signature sign-off for software releases. Authenticated endpoints take "
                'the X-asfld-* headers; errors are {"error": message}.'
            ),
        },
        "paths": {
            "/v1/ping": _get(
                "Health check",
                _json_response("OK", _ref("Ping")),
                (),
                "ping",
                auth=False,
                path_param=False,
            ),
            "/v1/register_repo": _post(
                "Register a project from its signers file URL",
                "SignersFileRequest",
                "RegistrationResponse",
                (400, 401, 403, 409, 413, 500, 502),
                "register_repo",
            ),
            "/v1/update_signers": _post(
                "Propose a new signers file for a registered project",
                "SignersFileRequest",
                "RegistrationResponse",
                (400, 401, 403, 409, 413, 500, 502),
                "update_signers",
            ),
            "/v1/signatures": _post(
                "Submit signatures for a pending file",
                "SignaturesRequest",
                "SignaturesResponse",
                (400, 401, 403, 409, 413, 500),
                "submit_signatures",
            ),
            "/v1/signatures/{file_path}": _get(
                "State of a file (pending, complete, revoked), who signed it, who is still "
                "needed per group, and its revocation (public)",
                _json_response("OK", _ref("SignatureStatus")),
                (400, 401, 404, 500),
                "signature_status",
                auth="optional",
            ),
            "/v1/pending_signatures": _get(
                "Files awaiting the caller's signature",
                _json_response("OK", _ref("PendingSignatures")),
                (401, 500),
                "pending_signatures",
                auth=True,
                path_param=False,
            ),
            "/v1/files/{file_path}": _get(
                "Raw content of a mirror file (public)",
                _OCTETS,
                (400, 404, 500),
                "get_file",
                auth=False,
            ),
            "/v1/files-to-sign/{file_path}": _get(
                "Contents of every file to sign for a pending file",
                _json_response("OK", _ref("FilesToSign")),
                (400, 401, 403, 404, 409, 500),
                "files_to_sign",
                auth=True,
            ),
            "/v1/get_signers/{file_path}": _get(
                "Active signers file governing a path (public)",
                _RAW_JSON,
                (400, 404, 500),
                "get_signers",
                auth=False,
            ),
            "/v1/get_signers_chain/{file_path}": _get(
                "Signers history chain of an artifact (public)",
                _json_response("OK", _ref("SignersChain")),
                (400, 404, 500),
                "get_signers_chain",
                auth=False,
            ),
            "/v1/revoke": _post(
                "Revoke a fully signed file",
                "RevokeRequest",
                "RevokeResponse",
                (400, 401, 404, 409, 413, 500),
                "revoke",
            ),
            "/v1/assets": _post(
                "Register a release (GitHub, GitLab) or checksum files for signing",
                "AssetsRequest",
                "AssetsResponse",
                (400, 401, 403, 409, 413, 500, 502),
                "register_assets",
            ),
        },
        "components": {"schemas": _SCHEMAS},
    }
