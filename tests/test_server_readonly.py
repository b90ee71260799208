"""A read-only mirror server: public reads work, every write is refused with 405, and it never
creates a mirror of its own (it must follow a primary through `asfaload mirror sync`)."""

from __future__ import annotations

import json
import subprocess

import requests

from asfaload.crypto import SecretKey
from asfaload.devtools.server import ASFALOAD, ServerProcess
from tests.support.http import signed_request


def test_read_only_server_serves_reads_and_refuses_writes(tmp_path):
    data = tmp_path / "data"
    # A normal start creates the mirror (as a sync would); then serve it read-only.
    primary = ServerProcess(data).start()
    primary.stop()
    server = ServerProcess(data, env={"ASFALOAD_READ_ONLY": "1"}).start()
    try:
        assert requests.get(server.url("/v1/ping"), timeout=30).status_code == 200
        key = SecretKey.generate("ed25519")
        body = json.dumps(
            {
                "signers_file_url": "https://github.com/acme/tool/blob/main/s.json",
                "public_key": str(key.public_key),
            }
        ).encode()
        r = signed_request(server.base_url, key, "POST", "/v1/register_repo", body)
        assert r.status == 405
        assert "read-only" in r.json()["error"]
        r2 = requests.post(
            server.url("/login"), json={"username": "a", "password": "b"}, timeout=30
        )
        assert r2.status_code == 405 and "read-only" in r2.json()["error"]
        # Reads of the mirror tree still answer (404 for a missing file, not 405).
        assert (
            requests.get(server.url("/v1/files/nothing/here.json"), timeout=30).status_code == 404
        )
    finally:
        server.stop()


def test_read_only_server_refuses_to_create_a_mirror(tmp_path):
    proc = subprocess.run(
        [ASFALOAD, "serve", "--read-only", "--data-dir", str(tmp_path / "empty"), "--port", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "mirror sync" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "empty" / "mirror.git").exists()
