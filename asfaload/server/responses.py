"""Every error leaves the server as ``{"error": "<one line>"}`` with its status.

Never a traceback, never an absolute server path: unexpected failures are logged with their
detail and answered with a generic 500 message.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from ..errors import AsfaloadError, DiskFullError, StoreError, one_line

log = logging.getLogger("asfaload.server")

INTERNAL_ERROR = "Internal server error"
REQUEST_TOO_BIG = "Request too big: length limit exceeded"

_HTTP_MESSAGES = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    413: REQUEST_TOO_BIG,
    415: "Unsupported media type: expected application/json",
}


def json_response(doc: object, status: int = 200) -> Response:
    resp = jsonify(doc)
    resp.status_code = status
    return resp


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(AsfaloadError)
    def _asfaload_error(err: AsfaloadError) -> Response:
        status = err.http_status
        if isinstance(err, DiskFullError):
            # Its message is fixed (no path): the client learns to come back later.
            log.warning("refused a request: the disk is full")
            return error_response(status, str(err))
        if isinstance(err, StoreError) and status >= 500:
            # Store messages may name files on the server's disk.
            log.error("store failure: %s", err, exc_info=err)
            return error_response(status, INTERNAL_ERROR)
        if status >= 500:
            log.warning("%s: %s", type(err).__name__, err)
        return error_response(status, one_line(str(err)) or type(err).__name__)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> Response:
        status = err.code or 500
        message = _HTTP_MESSAGES.get(status) or (err.name if status < 500 else INTERNAL_ERROR)
        resp = error_response(status, message)
        if status == 405:
            allowed = err.get_headers()
            for name, value in allowed:
                if name.lower() == "allow":
                    resp.headers["Allow"] = value
        return resp

    @app.errorhandler(Exception)
    def _unexpected(err: Exception) -> Response:
        log.error("unhandled exception", exc_info=err)
        return error_response(500, INTERNAL_ERROR)
