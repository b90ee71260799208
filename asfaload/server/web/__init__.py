"""Server-rendered HTML pages: ``GET /`` (the projects) and ``GET /projects/<project id>``.

Served by the primary and by every read-only mirror (they only read the mirror). The states
shown are :func:`asfaload.rules.status.file_report`'s, as ``GET /v1/signatures/…`` shows them.

Hostile content is expected: project ids, tags, file names, URLs and revocation reasons come
from forges and signers. Jinja autoescapes every value, links are made only to our own raw mirror
paths and to http(s) URLs, and every answer carries a strict Content-Security-Policy (no script
at all, styles only from our own stylesheet) and ``X-Content-Type-Options: nosniff``. Errors on
these routes are HTML pages; the ``/v1`` API keeps its JSON errors.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, render_template
from werkzeug.exceptions import HTTPException

from ...errors import AsfaloadError, StoreError, one_line
from ...rules.status import signer_dict
from ..context import state

log = logging.getLogger("asfaload.server")

web = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static/web",
)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


@web.after_request
def _security_headers(resp: Response) -> Response:
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    resp.headers["X-Frame-Options"] = "DENY"
    return resp


def raw_url(path: str) -> str:
    """Our own link to the raw bytes of a mirror file."""
    return "/v1/files/" + quote(path, safe="/")


def project_url(project_id: str) -> str:
    return "/projects/" + quote(project_id, safe="/")


def safe_link(url: str | None) -> str | None:
    """``url`` when it is an http(s) URL a browser may follow, else None (shown as text)."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


web.add_app_template_global(signer_dict, "signer")
web.add_app_template_global(raw_url, "raw_url")
web.add_app_template_global(project_url, "project_url")
web.add_app_template_global(safe_link, "safe_link")


@web.get("/")
def index() -> str:
    backend = state().backend
    return render_template(
        "web/index.html", projects=backend.projects(), read_only=state().config.read_only
    )


@web.get("/projects/<anypath:project_id>")
def project(project_id: str) -> str:
    overview = state().backend.project(project_id)
    return render_template("web/project.html", p=overview, read_only=state().config.read_only)


def _error_page(status: int, message: str) -> tuple[str, int]:
    return render_template("web/error.html", status=status, message=message), status


@web.errorhandler(AsfaloadError)
def _asfaload_error(err: AsfaloadError) -> tuple[str, int]:
    status = err.http_status
    if status >= 500:
        log.error("web page failure: %s", err, exc_info=err)
        # Store messages may name files on the server's disk.
        message = "Internal server error" if isinstance(err, StoreError) else one_line(str(err))
        return _error_page(status, message)
    return _error_page(status, one_line(str(err)) or type(err).__name__)


@web.errorhandler(HTTPException)
def _http_error(err: HTTPException) -> tuple[str, int]:
    status = err.code or 500
    return _error_page(status, err.name if status < 500 else "Internal server error")


@web.errorhandler(Exception)
def _unexpected(err: Exception) -> tuple[str, int]:
    log.error("unhandled exception on a web page", exc_info=err)
    return _error_page(500, "Internal server error")
