"""The real server process: public reads, JSON errors, path validation, limits."""

from __future__ import annotations

import json

import pytest

from asfaload.devtools.server import ServerProcess
from tests.support.http import raw_request


def _error(reply) -> str:
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    doc = reply.json()
    assert set(doc) == {"error"}
    assert isinstance(doc["error"], str) and doc["error"]
    assert "Traceback" not in doc["error"]
    return str(doc["error"])


def test_ping(live_server: ServerProcess):
    reply = raw_request(live_server.base_url, "GET", "/v1/ping")
    assert reply.status == 200
    assert reply.json() == {"status": "ok"}
    assert reply.headers["x-request-id"]


def test_request_id_is_echoed(live_server: ServerProcess):
    reply = raw_request(live_server.base_url, "GET", "/v1/ping", headers={"X-Request-Id": "abc-1"})
    assert reply.headers["x-request-id"] == "abc-1"


def test_files_serves_mirror_files_and_404s(live_server: ServerProcess):
    reply = raw_request(live_server.base_url, "GET", "/v1/files/https/github.com/443/a/b/x.json")
    assert reply.status == 404
    assert _error(reply) == "File not found: https/github.com/443/a/b/x.json"


@pytest.mark.parametrize(
    "target",
    [
        "/v1/files/../../etc/passwd",
        "/v1/files/%2e%2e/%2e%2e/etc/passwd",
        "/v1/files/a/%2E%2E/b",
        "/v1/files//etc/passwd",
        "/v1/files/%2Fetc%2Fpasswd",
        "/v1/files/.git/config",
        "/v1/files/HEAD/../.git/config",
        "/v1/files/a%5C..%5Cb",
        "/v1/files/a%00b",
        "/v1/files/a/./b",
        "/v1/files/a//b",
        "/v1/files/",
        "/v1/get_signers/../x",
        "/v1/get_signers/.git",
    ],
)
def test_path_traversal_refused(live_server: ServerProcess, target: str):
    reply = raw_request(live_server.base_url, "GET", target)
    assert reply.status == 400, (target, reply.body)
    message = _error(reply)
    assert message.startswith("Invalid file path")
    assert str(live_server.data_dir) not in message


def test_directory_is_not_a_file(live_server: ServerProcess):
    # The mirror root commit holds an empty tree; 'tuf' etc. do not exist yet, so a directory
    # check needs a directory: none exists in a fresh mirror, so a missing path is a 404.
    reply = raw_request(live_server.base_url, "GET", "/v1/files/nothing-here")
    assert reply.status == 404


def test_get_signers_unknown_project(live_server: ServerProcess):
    reply = raw_request(
        live_server.base_url, "GET", "/v1/get_signers/https/github.com/443/unknown/repo/file.txt"
    )
    assert reply.status == 404
    assert _error(reply) == (
        "No signers file found for: https/github.com/443/unknown/repo/file.txt. "
        "Error: No signers file found in parent directories"
    )


@pytest.mark.parametrize(
    ("method", "target", "status"),
    [
        ("GET", "/nothing-here", 404),  # "/" is the web pages' project list
        ("GET", "/v2/ping", 404),
        ("DELETE", "/v1/ping", 405),
        ("GET", "/v1/register_repo", 405),
        ("PUT", "/v1/files/x", 405),
    ],
)
def test_unknown_routes_and_methods_are_json(live_server: ServerProcess, method, target, status):
    reply = raw_request(live_server.base_url, method, target)
    assert reply.status == status
    _error(reply)


def test_body_size_limit(live_server: ServerProcess):
    body = json.dumps({"signers_file_url": "x" * (1024 * 1024 + 10), "public_key": "k"}).encode()
    reply = raw_request(live_server.base_url, "POST", "/v1/register_repo", body)
    assert reply.status == 413
    assert _error(reply).startswith("Request too big")
