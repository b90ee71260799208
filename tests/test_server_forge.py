"""The forge-backed endpoints (register_repo, update_signers, assets) against the real server
process and the forge emulator, reached through ASFALOAD_URL_REWRITES; plus the SSRF policy."""

from __future__ import annotations

import base64

import pytest

from asfaload import layout
from asfaload.crypto import SecretKey, sha512
from asfaload.devtools.forge import ForgeEmulator
from asfaload.devtools.server import ServerProcess
from tests.support.http import signed_json, signed_request
from tests.support.rules import signers_bytes

P = "https/github.com/443/acme/tool"
FP = "https/files.example.com/443/proj"


@pytest.fixture(scope="module")
def forge_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("forge")
    with ForgeEmulator(root) as emu:
        # No ASFALOAD_ALLOW_PRIVATE_URLS: only the operator's rewrite targets may be private.
        server = ServerProcess(
            tmp_path_factory.mktemp("srv") / "data",
            env={"ASFALOAD_URL_REWRITES": emu.rewrites()},
        ).start()
        keys = [SecretKey.generate("ed25519") for _ in range(4)]
        try:
            yield server, emu, keys
        finally:
            server.stop()


def _post(server, key, target, doc):
    return signed_json(server.base_url, key, "POST", target, doc)


def _error(reply, status: int) -> str:
    assert reply.status == status, (reply.status, reply.body)
    doc = reply.json()
    assert set(doc) == {"error"}
    return str(doc["error"])


def _sign_all(server, key, subject):
    reply = signed_request(server.base_url, key, "GET", "/v1/files-to-sign/" + subject)
    assert reply.status == 200, reply.body
    files = {p: base64.b64decode(b) for p, b in reply.json()["files"].items()}
    sigs = {p: key.sign(sha512(d)).to_wire() for p, d in files.items()}
    body = {"file_path": subject, "public_key": str(key.public_key), "signatures": sigs}
    reply = _post(server, key, "/v1/signatures", body)
    assert reply.status == 200, reply.body
    return reply.json()["is_complete"]


def _reg(key, url):
    return {"signers_file_url": url, "public_key": str(key.public_key)}


def test_01_register_repo(forge_server):
    server, emu, keys = forge_server
    raw = signers_bytes(artifact=[(keys[:3], 2)], admin=[([keys[0]], 1)], timestamp=1_700_000_000)
    url = emu.put_github_file("Acme", "Tool", "main", "asfaload.signers.json", raw)
    # A key that is not in the new signers file cannot register it.
    outsider = SecretKey.generate("ed25519")
    _error(_post(server, outsider, "/v1/register_repo", _reg(outsider, url)), 403)
    # The body's key must be the authenticated key.
    _error(_post(server, keys[1], "/v1/register_repo", _reg(keys[0], url)), 401)
    reply = _post(server, keys[0], "/v1/register_repo", _reg(keys[0], url))
    assert reply.status == 200, reply.body
    assert reply.json() == {
        "success": True,
        "project_id": P,
        "message": "Project registered successfully. Collect signatures to activate.",
        "required_signers": sorted(str(k.public_key) for k in keys[:3]),
        "signature_submission_url": "/v1/signatures",
    }
    stored = signed_request(
        server.base_url, keys[0], "GET", "/v1/files/" + layout.signers_file_path(P, pending=True)
    )
    assert stored.body == raw  # byte for byte as published


def test_02_register_conflicts_and_bad_input(forge_server):
    server, emu, keys = forge_server
    url = "https://github.com/acme/tool/blob/main/asfaload.signers.json"
    assert _error(_post(server, keys[0], "/v1/register_repo", _reg(keys[0], url)), 409) == (
        f"Project '{P}' is already registered or registration is in progress."
    )
    _error(_post(server, keys[0], "/v1/register_repo", _reg(keys[0], "not a url")), 400)
    _error(_post(server, keys[0], "/v1/register_repo", {"public_key": "x"}), 400)
    _error(_post(server, keys[0], "/v1/register_repo", [1, 2]), 400)
    missing = "https://github.com/acme/nothing/blob/main/asfaload.signers.json"
    assert _post(server, keys[0], "/v1/register_repo", _reg(keys[0], missing)).status in (
        400,
        404,
        500,
    )
    bad = emu.put_github_file("acme", "bad", "main", "asfaload.signers.json", b'{"nope": 1}')
    _error(_post(server, keys[0], "/v1/register_repo", _reg(keys[0], bad)), 400)
    # Nothing was written for the failed attempts: the project can still be registered later.
    r = signed_request(
        server.base_url, keys[0], "GET", "/v1/get_signers/https/github.com/443/acme/bad"
    )
    assert r.status == 404


def test_03_update_before_registration_and_before_activation(forge_server):
    server, emu, keys = forge_server
    url = "https://github.com/acme/other/blob/main/asfaload.signers.json"
    assert _error(_post(server, keys[0], "/v1/update_signers", _reg(keys[0], url)), 400) == (
        "Project 'https/github.com/443/acme/other' is not registered. Register the repo first."
    )
    url = "https://github.com/acme/tool/blob/main/asfaload.signers.json"
    _error(_post(server, keys[0], "/v1/update_signers", _reg(keys[0], url)), 400)


def test_04_activation_then_release(forge_server):
    server, emu, keys = forge_server
    subject = layout.signers_file_path(P, pending=True)
    assert [_sign_all(server, k, subject) for k in keys[:3]] == [False, False, True]
    release = emu.add_github_release("acme", "tool", "v1.0", {"tool.tar.gz": b"tool bytes"})
    outsider = SecretKey.generate("ed25519")
    _error(_post(server, outsider, "/v1/assets", {"github_release_url": release}), 403)
    reply = _post(server, keys[1], "/v1/assets", {"github_release_url": release})
    assert reply.status == 200, reply.body
    index = f"{P}/releases/tag/v1.0/asfaload.index.json"
    assert reply.json() == {
        "success": True,
        "message": "Release registered successfully",
        "index_file_path": index,
    }
    assert _error(_post(server, keys[1], "/v1/assets", {"github_release_url": release}), 409)
    assert _sign_all(server, keys[0], index) is False
    assert _sign_all(server, keys[2], index) is True


def test_05_assets_body_validation(forge_server):
    server, _, keys = forge_server
    both = {"github_release_url": "https://github.com/a/b/releases/tag/v1", "csum_files": ["x"]}
    assert _error(_post(server, keys[0], "/v1/assets", both), 400) == (
        "github_release_url and csum_files are mutually exclusive"
    )
    assert _error(_post(server, keys[0], "/v1/assets", {}), 400) == (
        "github_release_url and csum_files are mutually exclusive"
    )
    _error(_post(server, keys[0], "/v1/assets", {"csum_files": []}), 400)
    not_github = {"github_release_url": "https://example.com/acme/tool/releases/tag/v1"}
    _error(_post(server, keys[0], "/v1/assets", not_github), 400)
    not_a_release = {"github_release_url": "https://github.com/acme/tool/tree/main"}
    _error(_post(server, keys[0], "/v1/assets", not_a_release), 400)
    spread = {
        "csum_files": [
            "https://files.example.com/proj/v1/SHA256SUMS",
            "https://files.example.com/proj/v2/SHA256SUMS",
        ]
    }
    _error(_post(server, keys[0], "/v1/assets", spread), 400)


def test_06_update_signers(forge_server):
    server, emu, keys = forge_server
    raw = signers_bytes(artifact=[(keys, 2)], admin=[([keys[0]], 1)], timestamp=1_700_000_100)
    url = emu.put_github_file("acme", "tool", "signers", "v2.json", raw)
    served = emu.served_path(
        url.replace("github.com", "raw.githubusercontent.com").replace("/blob/", "/")
    )
    # Only a current admin (or master) may propose, and the refusal comes before any fetch.
    _error(_post(server, keys[3], "/v1/update_signers", _reg(keys[3], url)), 403)
    assert emu.hits(served) == 0
    reply = _post(server, keys[0], "/v1/update_signers", _reg(keys[0], url))
    assert reply.status == 200, reply.body
    assert emu.hits(served) == 1
    doc = reply.json()
    assert doc["message"] == "Signers update proposed successfully. Collect signatures to activate."
    assert doc["project_id"] == P
    assert str(keys[3].public_key) in doc["required_signers"]
    _error(_post(server, keys[0], "/v1/update_signers", _reg(keys[0], url)), 409)
    subject = layout.signers_file_path(P, pending=True)
    assert _sign_all(server, keys[3], subject) is False
    assert _sign_all(server, keys[0], subject) is True
    chain = signed_request(server.base_url, keys[0], "GET", f"/v1/get_signers_chain/{P}").json()
    assert len(chain["chain"]["history_entries"]) == 1
    # The v1.0 release was signed under the first file: its chain stops there.
    index = f"{P}/releases/tag/v1.0/asfaload.index.json"
    chain = signed_request(server.base_url, keys[0], "GET", f"/v1/get_signers_chain/{index}").json()
    assert chain["chain"]["history_entries"] == []
    assert chain["chain"]["current_signers_info"] is not None


def test_06b_oversized_or_invalid_signers_files_are_400(forge_server):
    """A signers file is the user's choice: too big or unreadable is a bad request, on
    registration and on update alike, and nothing is written."""
    server, emu, keys = forge_server
    good = signers_bytes(artifact=[(keys, 2)], admin=[([keys[0]], 1)], timestamp=1_700_000_200)
    files = {
        "huge": b" " * (64 * 1024) + good,
        "binary": b"\xff\xfe",
        "truncated": good[:-5],
        "an array": b"[]",
    }
    head = signed_request(server.base_url, keys[0], "GET", f"/v1/get_signers/{P}").body
    for name, raw in files.items():
        slug = name.replace(" ", "-")
        url = emu.put_github_file("acme", f"bad-{slug}", "main", "asfaload.signers.json", raw)
        msg = _error(_post(server, keys[0], "/v1/register_repo", _reg(keys[0], url)), 400)
        assert msg.startswith("Invalid signers file"), (name, msg)
        url = emu.put_github_file("acme", "tool", "signers", f"{slug}.json", raw)
        msg = _error(_post(server, keys[0], "/v1/update_signers", _reg(keys[0], url)), 400)
        assert msg.startswith("Invalid signers file"), (name, msg)
    big = emu.put_github_file("acme", "tool", "signers", "huge.json", files["huge"])
    msg = _error(_post(server, keys[0], "/v1/update_signers", _reg(keys[0], big)), 400)
    assert msg == f"Invalid signers file: {big} is larger than the limit of 65536 bytes"
    assert signed_request(server.base_url, keys[0], "GET", f"/v1/get_signers/{P}").body == head


def test_06c_signers_file_urls_at_a_commit_id_are_400(forge_server):
    """Registration and update pin a signers file to a branch or tag: a fork's commit is
    served under the parent's URLs. Refused before anything is fetched."""
    server, emu, keys = forge_server
    commit = "89abcdef" * 5
    raw = signers_bytes(artifact=[([keys[0]], 1)], admin=[([keys[0]], 1)])
    for target, url in (
        (
            "/v1/register_repo",
            emu.put_github_file("acme", "pinned", commit, "asfaload.signers.json", raw),
        ),
        (
            "/v1/register_repo",
            emu.put_gitlab_file("group/pinned", commit, "asfaload.signers.json", raw),
        ),
        ("/v1/update_signers", emu.put_github_file("acme", "tool", commit, "v3.json", raw)),
    ):
        msg = _error(_post(server, keys[0], target, _reg(keys[0], url)), 400)
        assert msg.startswith(
            f"Signers file URL must name a branch or tag, not the commit {commit}"
        ), msg
        assert url in msg
    assert emu.hits(f"/raw/acme/pinned/{commit}/asfaload.signers.json") == 0
    assert emu.hits(f"/gl/group/pinned/-/raw/{commit}/asfaload.signers.json") == 0
    assert emu.hits(f"/raw/acme/tool/{commit}/v3.json") == 0


def test_07_checksum_files_mode(forge_server):
    server, emu, keys = forge_server
    raw = signers_bytes(artifact=[([keys[0]], 1)], admin=[([keys[0]], 1)])
    url = emu.put_fileserver_file("proj/asfaload.signers/signers.json", raw)
    reply = _post(server, keys[0], "/v1/register_repo", _reg(keys[0], url))
    assert reply.status == 200, reply.body
    assert reply.json()["project_id"] == FP
    assert _sign_all(server, keys[0], layout.signers_file_path(FP, pending=True)) is True
    data = b"hello"
    import hashlib

    emu.put_fileserver_file("proj/v1/hello.txt", data)
    sums = f"{hashlib.sha256(data).hexdigest()}  hello.txt\n".encode()
    csum = emu.put_fileserver_file("proj/v1/SHA256SUMS", sums)
    reply = _post(server, keys[0], "/v1/assets", {"csum_files": [csum]})
    assert reply.status == 200, reply.body
    assert reply.json() == {
        "success": True,
        "message": "Assets registered successfully",
        "index_file_path": f"{FP}/v1/asfaload.index.json",
    }


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/asfaload.signers.json",
        "http://169.254.169.254/latest/asfaload.signers.json",
        "http://[::1]:9/asfaload.signers.json",
        "http://10.0.0.1/asfaload.signers.json",
    ],
)
def test_ssrf_signers_file_url_refused(forge_server, url):
    server, _, keys = forge_server
    msg = _error(_post(server, keys[0], "/v1/register_repo", _reg(keys[0], url)), 400)
    assert msg.startswith("Refusing to fetch from"), msg


def test_ssrf_redirect_to_private_address_refused(forge_server):
    server, emu, keys = forge_server
    url = emu.put_github_file("acme", "redir", "main", "asfaload.signers.json", b"{}")
    emu.redirect(
        emu.served_path(
            url.replace("github.com", "raw.githubusercontent.com").replace("/blob/", "/")
        ),
        "http://169.254.169.254/x.json",
    )
    msg = _error(_post(server, keys[0], "/v1/register_repo", _reg(keys[0], url)), 400)
    assert msg.startswith("Refusing to fetch from"), msg


def test_ssrf_checksum_redirect_refused(forge_server):
    server, emu, keys = forge_server
    csum = "https://files.example.com/proj/v2/SHA256SUMS"
    emu.redirect(emu.served_path(csum), "http://127.0.0.1:9/SHA256SUMS")
    msg = _error(_post(server, keys[0], "/v1/assets", {"csum_files": [csum]}), 400)
    assert msg.startswith("Refusing to fetch from"), msg


def test_redirect_escaping_the_rewrite_target_is_not_followed(forge_server):
    """A forge redirect whose path climbs out of the operator's target with encoded
    separators: the server never fetches it (the emulator would serve a valid signers file
    there, from outside the raw-files tree the rewrite names)."""
    server, emu, keys = forge_server
    raw = signers_bytes(artifact=[([keys[0]], 1)], admin=[([keys[0]], 1)])
    emu.put_fileserver_file("escape/asfaload.signers.json", raw)
    url = "https://github.com/acme/escape/blob/main/asfaload.signers.json"
    served = emu.served_path(
        "https://raw.githubusercontent.com/acme/escape/main/asfaload.signers.json"
    )
    climb = "..%2F..%2F..%2F..%2Ffiles%2Fescape%2Fasfaload.signers.json"
    emu.redirect(served, f"https://raw.githubusercontent.com/acme/escape/main/{climb}")
    msg = _error(_post(server, keys[0], "/v1/register_repo", _reg(keys[0], url)), 500)
    assert msg == (
        "Forge redirected https://raw.githubusercontent.com/acme/escape/main/"
        "asfaload.signers.json to an invalid URL"
    )
    assert emu.hits(served) == 1
    assert emu.hits(f"/raw/acme/escape/main/{climb}") == 0
    assert emu.hits("/files/escape/asfaload.signers.json") == 0


def test_08_gitlab_release(forge_server):
    server, emu, keys = forge_server
    raw = signers_bytes(artifact=[([keys[1]], 1)], admin=[([keys[1]], 1)])
    url = emu.put_gitlab_file("group/proj", "main", "asfaload.signers.json", raw)
    reply = _post(server, keys[1], "/v1/register_repo", _reg(keys[1], url))
    assert reply.status == 200, reply.body
    gp = "https/gitlab.com/443/group/proj"
    assert reply.json()["project_id"] == gp
    assert _sign_all(server, keys[1], layout.signers_file_path(gp, pending=True)) is True
    release = emu.add_gitlab_release("group/proj", "v1", {"tool.zip": b"zip bytes"})
    wrong = {"gitlab_release_url": "https://github.com/acme/tool/releases/tag/v1.0"}
    _error(_post(server, keys[1], "/v1/assets", wrong), 400)
    both = {"gitlab_release_url": release, "csum_files": ["https://files.example.com/a/S"]}
    _error(_post(server, keys[1], "/v1/assets", both), 400)
    reply = _post(server, keys[1], "/v1/assets", {"gitlab_release_url": release})
    assert reply.status == 200, reply.body
    assert reply.json() == {
        "success": True,
        "message": "Release registered successfully",
        "index_file_path": f"{gp}/-/releases/v1/asfaload.index.json",
    }
