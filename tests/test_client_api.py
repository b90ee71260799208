"""The typed backend client against a real server process: errors keep the server's message."""

from __future__ import annotations

import pytest

from asfaload.client.api import BackendClient, encode_path, error_for_status
from asfaload.crypto import SecretKey
from asfaload.devtools.server import ServerProcess, free_port
from asfaload.errors import (
    AuthenticationError,
    ConflictError,
    NetworkError,
    NotAuthorizedError,
    NotFoundError,
    RuleViolation,
    StoreError,
)


def test_status_mapping() -> None:
    for status, cls in [
        (400, RuleViolation),
        (401, AuthenticationError),
        (403, NotAuthorizedError),
        (404, NotFoundError),
        (409, ConflictError),
        (500, StoreError),
    ]:
        err = error_for_status(status, "the server said so")
        assert type(err) is cls and str(err) == "the server said so"


def test_encode_path_keeps_slashes() -> None:
    assert encode_path("/a b/c%d/e") == "a%20b/c%25d/e"


def test_public_reads_and_error_messages(live_server: ServerProcess) -> None:  # noqa: F811
    api = BackendClient(live_server.base_url)
    assert api.ping()
    missing = "https/github.com/443/acme/repo/releases/tag/v1.0/missing.json"
    with pytest.raises(NotFoundError, match=f"File not found: {missing}"):
        api.get_file(missing)
    assert api.get_file_or_none(missing) is None
    with pytest.raises(NotFoundError, match="No signers file found"):
        api.get_signers("https/github.com/443/unknown/repo/file.txt")


def test_authenticated_calls(live_server: ServerProcess) -> None:  # noqa: F811
    with pytest.raises(AuthenticationError, match="secret key is required"):
        BackendClient(live_server.base_url).pending_signatures()
    api = BackendClient(live_server.base_url, secret_key=SecretKey.generate("ed25519"))
    assert api.pending_signatures() == []
    with pytest.raises(RuleViolation, match="mutually exclusive"):
        api.register_assets()


def test_unreachable_backend() -> None:
    # The OS's words, not requests' nested exception repr.
    with pytest.raises(NetworkError, match=r"Cannot reach the backend at \S+: Connection refused$"):
        BackendClient(f"http://127.0.0.1:{free_port()}").ping()
