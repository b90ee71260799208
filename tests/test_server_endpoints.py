"""Every signing endpoint against the real server process, in the manual's order:
pending list, files to sign, signature submission and completion, status, signers, chain,
release signing, revocation — with the 400/401/403/404/409 answers the manual lists.

Registration and releases are seeded by submitting the rules engine's operations to the same
mirror from this process (the store coordinates writers across processes); the forge-backed
endpoints that create them are tested in test_server_forge.py.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from asfaload import layout
from asfaload.auth import HEADER_PK, sign_request
from asfaload.crypto import SecretKey, sha512
from asfaload.devtools.server import ServerProcess
from asfaload.model.index import PublishedFile, ReleaseIndex
from asfaload.rules.ops import Register, RegisterRelease
from asfaload.store import Mirror
from tests.support.http import raw_request, signed_json, signed_request
from tests.support.rules import metadata_bytes, signers_bytes

P = "https/github.com/443/acme/tool"
SIGNERS = layout.signers_file_path(P, pending=True)
METADATA = layout.metadata_path(P, pending=True)
INDEX = layout.github_release_index_path(P, "v1.0")


@pytest.fixture(scope="module")
def project_server(tmp_path_factory):
    keys = [SecretKey.generate("ed25519") for _ in range(3)]
    outsider = SecretKey.generate("ed25519")
    signers = signers_bytes(
        artifact=[(keys, 2)],
        admin=[([keys[0]], 1)],
        revocation=[([keys[1], keys[2]], 2)],
    )
    server = ServerProcess(tmp_path_factory.mktemp("srv") / "data").start()
    mirror = Mirror.open(str(server.data_dir / "mirror.git"))
    mirror.submit(Register(P, signers, metadata_bytes(signers), keys[0].public_key))
    try:
        yield server, mirror, keys, outsider
    finally:
        mirror.close()
        server.stop()


def _get(server: ServerProcess, key: SecretKey, target: str):
    return signed_request(server.base_url, key, "GET", target)


def _pending(server: ServerProcess, key: SecretKey) -> list[str]:
    """The caller's pending list; each file listed once more with its state, pending."""
    reply = _get(server, key, "/v1/pending_signatures")
    assert reply.status == 200, reply.body
    doc = reply.json()
    assert doc["files"] == [{"file_path": p, "status": "pending"} for p in doc["file_paths"]]
    return list(doc["file_paths"])


def _sign_all(server: ServerProcess, key: SecretKey, subject: str):
    reply = _get(server, key, "/v1/files-to-sign/" + subject)
    assert reply.status == 200, reply.body
    files = {p: base64.b64decode(b) for p, b in reply.json()["files"].items()}
    return _submit(server, key, subject, files)


def _submit(server: ServerProcess, key: SecretKey, subject: str, files: dict[str, bytes]):
    sigs = {p: key.sign(sha512(data)).to_wire() for p, data in files.items()}
    body = {"file_path": subject, "public_key": str(key.public_key), "signatures": sigs}
    return signed_json(server.base_url, key, "POST", "/v1/signatures", body)


def _error(reply, status: int) -> str:
    assert reply.status == status, (reply.status, reply.body)
    doc = reply.json()
    assert set(doc) == {"error"}
    return str(doc["error"])


def test_01_pending_lists_the_new_signers_file_for_every_signer(project_server):
    server, _, keys, outsider = project_server
    for k in keys:
        assert _pending(server, k) == [SIGNERS]
    assert _pending(server, outsider) == []


def test_02_files_to_sign_includes_metadata_and_refuses_outsiders(project_server):
    server, mirror, keys, outsider = project_server
    reply = _get(server, keys[1], "/v1/files-to-sign/" + SIGNERS)
    assert reply.status == 200
    files = reply.json()["files"]
    assert sorted(files) == sorted([SIGNERS, METADATA])
    view = mirror.view()
    assert base64.b64decode(files[SIGNERS]) == view.read(SIGNERS)
    assert base64.b64decode(files[METADATA]) == view.read(METADATA)
    _error(_get(server, outsider, "/v1/files-to-sign/" + SIGNERS), 403)
    _error(_get(server, keys[0], "/v1/files-to-sign/" + P + "/missing.json"), 404)
    _error(_get(server, keys[0], "/v1/files-to-sign/../x"), 400)


def test_03_signature_status_is_public(project_server):
    server, _, keys, outsider = project_server
    reply = _get(server, keys[0], "/v1/signatures/" + SIGNERS)
    assert reply.status == 200
    doc = reply.json()
    assert (doc["file_path"], doc["is_complete"], doc["status"]) == (SIGNERS, False, "pending")
    assert doc["kind"] == "signers-initial"
    assert {m["public_key"] for m in doc["missing"]} == {str(k.public_key) for k in keys}
    assert {m["key_id"] for m in doc["missing"]} == {k.public_key.key_id for k in keys}
    # The same answer to anyone: without headers, and to a signed request of an outsider.
    assert _status(server, SIGNERS) == doc
    assert _get(server, outsider, "/v1/signatures/" + SIGNERS).json() == doc
    _error(_get(server, keys[0], "/v1/signatures/" + P + "/nothing"), 404)
    _error(_get(server, keys[0], "/v1/signatures/"), 400)
    _error(raw_request(server.base_url, "GET", "/v1/signatures/" + P + "/nothing"), 404)
    _error(raw_request(server.base_url, "GET", "/v1/signatures/a/../b"), 400)
    # Headers that are sent must verify: a forged or partial set is a 401, not a public read.
    forged = sign_request(outsider, "GET", "/v1/signatures/other")
    _error(raw_request(server.base_url, "GET", "/v1/signatures/" + SIGNERS, headers=forged), 401)
    partial = {HEADER_PK: str(outsider.public_key)}
    _error(raw_request(server.base_url, "GET", "/v1/signatures/" + SIGNERS, headers=partial), 401)


def _status(server: ServerProcess, path: str) -> dict:
    reply = raw_request(server.base_url, "GET", "/v1/signatures/" + path)
    assert reply.status == 200, reply.body
    doc: dict = reply.json()
    return doc


def test_04_submission_checks(project_server):
    server, mirror, keys, outsider = project_server
    # Header key and body key must agree.
    body = {
        "file_path": SIGNERS,
        "public_key": str(keys[1].public_key),
        "signatures": {SIGNERS: "x"},
    }
    _error(signed_json(server.base_url, keys[0], "POST", "/v1/signatures", body), 401)
    # No signature for the primary file.
    body = {
        "file_path": SIGNERS,
        "public_key": str(keys[0].public_key),
        "signatures": {METADATA: "x"},
    }
    _error(signed_json(server.base_url, keys[0], "POST", "/v1/signatures", body), 400)
    # Unknown file.
    missing = P + "/releases/tag/v9/asfaload.index.json"
    body = {
        "file_path": missing,
        "public_key": str(keys[0].public_key),
        "signatures": {missing: "x"},
    }
    assert _error(signed_json(server.base_url, keys[0], "POST", "/v1/signatures", body), 400) == (
        f"File not found: {missing}"
    )
    # Garbage signature.
    body = {
        "file_path": SIGNERS,
        "public_key": str(keys[0].public_key),
        "signatures": {SIGNERS: "@@", METADATA: "@@"},
    }
    _error(signed_json(server.base_url, keys[0], "POST", "/v1/signatures", body), 400)
    # Empty path, invalid JSON.
    body = {"file_path": "", "public_key": str(keys[0].public_key), "signatures": {"": "x"}}
    _error(signed_json(server.base_url, keys[0], "POST", "/v1/signatures", body), 400)
    reply = signed_request(server.base_url, keys[0], "POST", "/v1/signatures", b"{not json")
    _error(reply, 400)
    # An outsider's valid signatures: refused, not authorised.
    files = {SIGNERS: mirror.view().read(SIGNERS), METADATA: mirror.view().read(METADATA)}
    _error(_submit(server, outsider, SIGNERS, files), 403)


def test_05_every_signer_signs_then_activation(project_server):
    server, mirror, keys, _ = project_server
    # A signature by the wrong key for the right file is refused (400, no absolute path).
    files = {SIGNERS: mirror.view().read(SIGNERS), METADATA: mirror.view().read(METADATA)}
    wrong = {p: keys[1].sign(sha512(d)).to_wire() for p, d in files.items()}
    body = {"file_path": SIGNERS, "public_key": str(keys[0].public_key), "signatures": wrong}
    msg = _error(signed_json(server.base_url, keys[0], "POST", "/v1/signatures", body), 400)
    assert str(server.data_dir) not in msg

    first = _sign_all(server, keys[0], SIGNERS)
    assert first.status == 200 and first.json() == {"is_complete": False}
    _error(_sign_all(server, keys[0], SIGNERS), 409)  # same key twice
    assert _pending(server, keys[0]) == []
    assert _sign_all(server, keys[1], SIGNERS).json() == {"is_complete": False}
    assert _sign_all(server, keys[2], SIGNERS).json() == {"is_complete": True}
    active = layout.signers_file_path(P)
    doc = _status(server, active)
    assert (doc["file_path"], doc["is_complete"], doc["status"]) == (active, True, "complete")
    assert {s["public_key"] for s in doc["signed"]} == {str(k.public_key) for k in keys}
    assert doc["missing"] == []
    for k in keys:
        assert _pending(server, k) == []


def test_06_public_reads_after_activation(project_server):
    server, mirror, keys, _ = project_server
    import requests

    raw = mirror.view().read(layout.signers_file_path(P))
    r = requests.get(server.url("/v1/get_signers/" + INDEX), timeout=10)
    assert r.status_code == 200 and r.content == raw
    assert r.headers["Content-Type"] == "application/json"
    r = requests.get(server.url("/v1/files/" + layout.signers_file_path(P)), timeout=10)
    assert r.status_code == 200 and r.content == raw
    assert r.headers["Content-Type"] == "application/octet-stream"
    r = requests.get(server.url("/v1/files/" + P), timeout=10)
    assert r.status_code == 400  # a directory
    chain = requests.get(server.url("/v1/get_signers_chain/" + P), timeout=10).json()
    assert chain["chain"]["history_entries"] == []
    assert base64.b64decode(chain["chain"]["current_signers_info"]["signers_file"]) == raw
    assert len(chain["history"]["entries"]) == 1


def _release(mirror: Mirror, submitter: SecretKey) -> bytes:
    asset = PublishedFile(
        "tool.tar.gz",
        "Sha256",
        "https://github.com/acme/tool/releases/download/v1.0/tool.tar.gz",
        "ab" * 32,
    )
    raw = ReleaseIndex.create([asset], mirrored_on=1_700_000_000).to_bytes()
    mirror.submit(RegisterRelease(INDEX, raw, submitter.public_key))
    return raw


def test_07_release_signing_threshold_and_409(project_server):
    server, mirror, keys, outsider = project_server
    _release(mirror, keys[0])
    for k in keys:
        assert _pending(server, k) == [INDEX]
    # Not fully signed yet: revocation is a conflict.
    doc = b'{"x": 1}'
    body = {
        "file_path": INDEX,
        "revocation_json": doc.decode(),
        "signature": keys[2].sign(sha512(doc)).to_wire(),
        "public_key": str(keys[2].public_key),
    }
    _error(signed_json(server.base_url, keys[2], "POST", "/v1/revoke", body), 409)
    assert _sign_all(server, keys[0], INDEX).json() == {"is_complete": False}
    assert _sign_all(server, keys[1], INDEX).json() == {"is_complete": True}
    # Threshold met: the third signer is not asked any more, and cannot add a signature.
    assert _pending(server, keys[2]) == []
    _error(_get(server, keys[2], "/v1/files-to-sign/" + INDEX), 409)
    doc = _get(server, keys[2], "/v1/signatures/" + INDEX).json()
    assert (doc["file_path"], doc["is_complete"], doc["status"]) == (INDEX, True, "complete")
    assert [s["public_key"] for s in doc["signed"]] == sorted(str(k.public_key) for k in keys[:2])
    assert doc["groups"][0]["met"] is True and doc["revocation"] is None
    assert _get(server, outsider, "/v1/signatures/" + INDEX).json() == doc


def test_08_revocation(project_server):
    server, mirror, keys, _ = project_server
    from asfaload.model.revocation import RevocationDocument

    data = mirror.view().read(INDEX)
    assert data is not None

    def revoke(key: SecretKey):
        doc = RevocationDocument.create(sha512(data), key.public_key, 1_712_860_800).to_bytes()
        body = {
            "file_path": INDEX,
            "revocation_json": doc.decode(),
            "signature": key.sign(sha512(doc)).to_wire(),
            "public_key": str(key.public_key),
        }
        return signed_json(server.base_url, key, "POST", "/v1/revoke", body)

    # An artifact signer without the revocation role: refused, 400 as the manual says.
    assert _error(revoke(keys[0]), 400) == "Public key is not authorized to revoke this file"
    reply = revoke(keys[2])
    assert reply.status == 200, reply.body
    assert reply.json() == {  # a threshold of 2: the revocation awaits a co-signer
        "success": True,
        "message": "Revocation initiated; it takes effect once the revocation threshold is met",
        "status": "pending",
    }
    _error(revoke(keys[1]), 409)  # a revocation is already pending: co-sign it instead
    doc = _status(server, INDEX)
    assert (doc["status"], doc["revocation"]["status"]) == ("complete", "pending")
    assert [m["public_key"] for m in doc["revocation"]["groups"][0]["missing"]] == [
        str(keys[1].public_key)
    ]
    pending = layout.pending_revocation_path(INDEX)
    assert _pending(server, keys[1]) == [pending]
    assert _pending(server, keys[2]) == []
    assert _sign_all(server, keys[1], pending).json() == {"is_complete": True}
    assert _pending(server, keys[1]) == []
    _error(revoke(keys[2]), 400)  # already revoked
    doc = _status(server, INDEX)
    assert (doc["is_complete"], doc["status"]) == (False, "revoked")
    rev = doc["revocation"]
    assert rev["status"] == "complete" and rev["timestamp"] == "2024-04-11T18:40:00Z"
    assert rev["initiator"]["public_key"] == str(keys[2].public_key)
    assert {s["public_key"] for s in rev["signed"]} == {str(k.public_key) for k in keys[1:]}
    r = signed_request(
        server.base_url, keys[0], "GET", "/v1/files/" + layout.revocation_path(INDEX)
    )
    assert r.status == 200
    # Revoking a missing file: 404.
    body = {
        "file_path": P + "/nope",
        "revocation_json": "{}",
        "signature": "x",
        "public_key": str(keys[2].public_key),
    }
    _error(signed_json(server.base_url, keys[2], "POST", "/v1/revoke", body), 404)


def test_09_pending_index_survives_restart(project_server, tmp_path: Path):
    server, _, keys, _ = project_server
    server.restart()
    assert _pending(server, keys[0]) == []


@pytest.mark.parametrize(
    "bad", ["../x", "/etc/passwd", ".git/config", "a/../../b", "a\\b", "a\x00b", "a//b", "./a"]
)
def test_10_traversal_in_bodies_refused(project_server, bad):
    server, _, keys, _ = project_server
    body = {"file_path": bad, "public_key": str(keys[0].public_key), "signatures": {bad: "x"}}
    msg = _error(signed_json(server.base_url, keys[0], "POST", "/v1/signatures", body), 400)
    assert msg.startswith("Invalid file path")
    body = {
        "file_path": bad,
        "revocation_json": "{}",
        "signature": "x",
        "public_key": str(keys[0].public_key),
    }
    msg = _error(signed_json(server.base_url, keys[0], "POST", "/v1/revoke", body), 400)
    assert msg.startswith("Invalid file path")
