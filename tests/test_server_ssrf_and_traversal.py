"""Acceptance audit of issue 4 (REST server): the Must-show bullets the other server tests leave
open, against real ``asfaload serve`` processes over HTTP.

- SSRF: every user-supplied URL field (``signers_file_url`` of register and update,
  ``github_release_url``, ``csum_files``) pointing at loopback, link-local/metadata, IPv6 loopback
  or a private address, directly or through a redirect, is refused by a server started WITHOUT
  ``ASFALOAD_ALLOW_PRIVATE_URLS`` (only the operator's rewrite target is trusted); a "victim"
  server on another loopback port proves no request ever reached it. With the allowance, the same
  kind of loopback URL is fetched.
- Path traversal on every path-taking endpoint (URL paths and body fields, including paths the
  server derives from URLs).
- The status codes of the manual not exercised elsewhere (``get_signers_chain`` 400).

Private addresses other than loopback are only ever *named* in requests to our own server, which
must refuse them before connecting; no test expects traffic to leave the machine.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from asfaload import layout
from asfaload.crypto import SecretKey, sha512
from asfaload.devtools.forge import ForgeEmulator
from asfaload.devtools.server import ServerProcess
from tests.support.http import Reply, raw_request, signed_json, signed_request
from tests.support.rules import T0, signers_bytes

FILES = "https://files.example.com"
# Private destinations named in URLs; our server must refuse them before any connection.
PRIVATE_HOSTS = ["127.0.0.1:9", "[::1]:9", "169.254.169.254", "10.0.0.1"]


@dataclass
class World:
    server: ServerProcess
    emu: ForgeEmulator
    victim: ForgeEmulator
    admin: SecretKey
    project: str


def _post(server: ServerProcess, key: SecretKey, target: str, doc: Any) -> Reply:
    return signed_json(server.base_url, key, "POST", target, doc)


def _error(reply: Reply, status: int, data_dir: str | None = None) -> str:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["content-type"].startswith("application/json"), reply.headers
    doc = reply.json()
    assert set(doc) == {"error"}, doc
    message = str(doc["error"])
    assert message and "Traceback" not in message
    if data_dir is not None:
        assert data_dir not in message
    return message


def _refused(reply: Reply) -> None:
    message = _error(reply, 400)
    assert message.startswith("Refusing to fetch from"), message


def _sign_everything(server: ServerProcess, key: SecretKey, subject: str) -> bool:
    reply = signed_request(server.base_url, key, "GET", "/v1/files-to-sign/" + subject)
    assert reply.status == 200, reply.body
    files = {p: base64.b64decode(b) for p, b in reply.json()["files"].items()}
    body = {
        "file_path": subject,
        "public_key": str(key.public_key),
        "signatures": {p: key.sign(sha512(d)).to_wire() for p, d in files.items()},
    }
    reply = _post(server, key, "/v1/signatures", body)
    assert reply.status == 200, reply.body
    return bool(reply.json()["is_complete"])


def _register_active(server: ServerProcess, key: SecretKey, url: str) -> str:
    reply = _post(
        server,
        key,
        "/v1/register_repo",
        {"signers_file_url": url, "public_key": str(key.public_key)},
    )
    assert reply.status == 200, reply.body
    project = str(reply.json()["project_id"])
    assert _sign_everything(server, key, layout.signers_file_path(project, pending=True))
    return project


@pytest.fixture(scope="module")
def forge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("acc4-forge")
    with (
        ForgeEmulator(root / "forge") as emu,
        ForgeEmulator(root / "victim") as victim,
    ):
        # No ASFALOAD_ALLOW_PRIVATE_URLS: the operator's rewrite target is the only trusted
        # private destination.
        server = ServerProcess(
            tmp_path_factory.mktemp("acc4-srv") / "data",
            env={"ASFALOAD_URL_REWRITES": emu.rewrites()},
        ).start()
        try:
            admin = SecretKey.generate("ed25519")
            raw = signers_bytes(artifact=[([admin], 1)], admin=[([admin], 1)])
            gh = emu.put_github_file("acme", "tool", "main", "asfaload.signers.json", raw)
            project = _register_active(server, admin, gh)
            fs = emu.put_fileserver_file("proj/asfaload.signers/signers.json", raw)
            _register_active(server, admin, fs)
            yield World(server, emu, victim, admin, project)
        finally:
            server.stop()


# --- SSRF: direct private URLs -------------------------------------------------------------------
@pytest.mark.parametrize("host", PRIVATE_HOSTS)
def test_ssrf_register_signers_file_url_direct(forge_server: World, host: str) -> None:
    url = f"http://{host}/acme/x/asfaload.signers.json"
    key = forge_server.admin
    _refused(
        _post(
            forge_server.server,
            key,
            "/v1/register_repo",
            {"signers_file_url": url, "public_key": str(key.public_key)},
        )
    )


@pytest.mark.parametrize("host", PRIVATE_HOSTS)
def test_ssrf_update_signers_file_url_direct(forge_server: World, host: str) -> None:
    # The project is registered and active, so the only reason left to refuse is the address.
    # A file-server URL whose project id is the registered one cannot name a private host, so
    # the private URL is refused either as not this project or as a private address: both 400,
    # and the victim is never contacted.
    url = f"http://{host}/asfaload.signers.json"
    key = forge_server.admin
    reply = _post(
        forge_server.server,
        key,
        "/v1/update_signers",
        {"signers_file_url": url, "public_key": str(key.public_key)},
    )
    assert reply.status == 400, reply.body
    _error(reply, 400)


@pytest.mark.parametrize(
    ("endpoint", "repo", "path", "stolen", "timestamp"),
    [
        # a signers update of the registered project, and a first registration
        ("/v1/update_signers", "tool", "redir/asfaload.signers.json", "stolen.json", 1_800_000_000),
        ("/v1/register_repo", "victimized", "asfaload.signers.json", "v.json", T0),
    ],
)
def test_ssrf_signers_file_url_redirected_to_loopback_is_never_followed(
    forge_server: World, endpoint: str, repo: str, path: str, stolen: str, timestamp: int
) -> None:
    raw = signers_bytes(
        artifact=[([forge_server.admin], 1)], admin=[([forge_server.admin], 1)], timestamp=timestamp
    )
    url = forge_server.emu.put_github_file("acme", repo, "main", path, raw)
    forge_server.victim.put_file(f"files/{stolen}", raw)
    forge_server.emu.redirect(
        forge_server.emu.served_path(
            url.replace("github.com", "raw.githubusercontent.com").replace("/blob/", "/")
        ),
        forge_server.victim.url(f"/files/{stolen}"),
    )
    key = forge_server.admin
    _refused(
        _post(
            forge_server.server,
            key,
            endpoint,
            {"signers_file_url": url, "public_key": str(key.public_key)},
        )
    )
    assert forge_server.victim.hits(f"/files/{stolen}") == 0


@pytest.mark.parametrize("host", PRIVATE_HOSTS)
def test_ssrf_github_release_url_direct(forge_server: World, host: str) -> None:
    # Not a GitHub host: refused before anything is fetched (manual: 400).
    url = f"http://{host}/acme/tool/releases/tag/v1"
    _error(
        _post(forge_server.server, forge_server.admin, "/v1/assets", {"github_release_url": url}),
        400,
    )


def test_ssrf_github_release_url_to_victim_port_never_fetched(forge_server: World) -> None:
    url = forge_server.victim.url("/acme/tool/releases/tag/v1")
    _error(
        _post(forge_server.server, forge_server.admin, "/v1/assets", {"github_release_url": url}),
        400,
    )
    assert forge_server.victim.hits("/acme/tool/releases/tag/v1") == 0


@pytest.mark.parametrize(
    "target",
    ["victim", "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/x", "http://10.0.0.1/x"],
)
def test_ssrf_github_release_api_redirected(forge_server: World, target: str) -> None:
    tag = "api-redir-" + hashlib.sha256(target.encode()).hexdigest()[:8]
    page = forge_server.emu.add_github_release("acme", "tool", tag, {"a.bin": b"abc"})
    location = forge_server.victim.url("/files/r.json") if target == "victim" else target
    forge_server.emu.redirect(f"/api/repos/acme/tool/releases/tags/{tag}", location)
    _refused(
        _post(forge_server.server, forge_server.admin, "/v1/assets", {"github_release_url": page})
    )
    assert forge_server.victim.hits("/files/r.json") == 0


def test_ssrf_github_asset_download_redirected(forge_server: World) -> None:
    # Without a digest in the release JSON the server downloads the asset: a redirect of that
    # download to another loopback service must not be followed.
    page = forge_server.emu.add_github_release(
        "acme", "tool", "asset-redir", {"a.bin": b"abc"}, with_digest=False
    )
    forge_server.victim.put_file("files/secret.bin", b"secret")
    forge_server.emu.redirect(
        "/gh/acme/tool/releases/download/asset-redir/a.bin",
        forge_server.victim.url("/files/secret.bin"),
    )
    _refused(
        _post(forge_server.server, forge_server.admin, "/v1/assets", {"github_release_url": page})
    )
    assert forge_server.victim.hits("/files/secret.bin") == 0


@pytest.mark.parametrize("host", PRIVATE_HOSTS)
def test_ssrf_csum_files_direct(forge_server: World, host: str) -> None:
    # No project can live on a private host (its registration is refused), so the request is
    # refused before anything is fetched: 400 either way.
    _error(
        _post(
            forge_server.server,
            forge_server.admin,
            "/v1/assets",
            {"csum_files": [f"http://{host}/proj/v1/SHA256SUMS"]},
        ),
        400,
    )


def test_ssrf_csum_files_victim_port_never_fetched(forge_server: World) -> None:
    forge_server.victim.put_file("files/proj/v1/SHA256SUMS", b"")
    url = forge_server.victim.url("/files/proj/v1/SHA256SUMS")
    _error(_post(forge_server.server, forge_server.admin, "/v1/assets", {"csum_files": [url]}), 400)
    assert forge_server.victim.hits("/files/proj/v1/SHA256SUMS") == 0


@pytest.mark.parametrize(
    "target",
    ["victim", "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/x", "http://10.0.0.1/x"],
)
def test_ssrf_csum_files_redirected(forge_server: World, target: str) -> None:
    tag = "v-" + hashlib.sha256(target.encode()).hexdigest()[:8]
    csum = f"{FILES}/proj/{tag}/SHA256SUMS"
    location = forge_server.victim.url("/files/sums") if target == "victim" else target
    forge_server.emu.redirect(forge_server.emu.served_path(csum), location)
    _refused(_post(forge_server.server, forge_server.admin, "/v1/assets", {"csum_files": [csum]}))
    assert forge_server.victim.hits("/files/sums") == 0


def test_private_urls_are_fetched_when_the_configuration_allows(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # The other side of "unless allowed by configuration": ASFALOAD_ALLOW_PRIVATE_URLS=1, no
    # rewrites, and the forge addressed directly on loopback.
    with ForgeEmulator(tmp_path_factory.mktemp("acc4-allowed")) as emu:
        server = ServerProcess(
            tmp_path_factory.mktemp("acc4-allowed-srv") / "data",
            env={"ASFALOAD_ALLOW_PRIVATE_URLS": "1"},
        ).start()
        try:
            key = SecretKey.generate("ed25519")
            raw = signers_bytes(artifact=[([key], 1)], admin=[([key], 1)])
            emu.put_file("files/p/asfaload.signers.json", raw)
            project = _register_active(server, key, emu.url("/files/p/asfaload.signers.json"))
            assert project == f"http/127.0.0.1/{emu.port}/files/p"
            assert emu.hits("/files/p/asfaload.signers.json") == 1
            data = b"hello"
            emu.put_file("files/p/v1/hello.txt", data)
            emu.put_file(
                "files/p/v1/SHA256SUMS", f"{hashlib.sha256(data).hexdigest()}  hello.txt\n".encode()
            )
            reply = _post(
                server, key, "/v1/assets", {"csum_files": [emu.url("/files/p/v1/SHA256SUMS")]}
            )
            assert reply.status == 200, reply.body
            assert reply.json()["index_file_path"] == f"{project}/v1/asfaload.index.json"
        finally:
            server.stop()


# --- path traversal on every path-taking endpoint ------------------------------------------------
TRAVERSALS = {
    "dotdot": "../../etc/passwd",
    "dotdot-inside": "https/github.com/443/acme/tool/../../../../etc/passwd",
    "pct-dotdot": "%2e%2e/%2e%2e/etc/passwd",
    "pct-dotdot-upper": "a/%2E%2E/%2E%2E/b",
    "pct-dot-mixed": "a/.%2e/b",
    "absolute": "/etc/passwd",
    "pct-absolute": "%2Fetc%2Fpasswd",
    "git-dir": ".git/config",
    "git-inside": "https/github.com/443/acme/tool/.git/config",
    "git-after-dotdot": "HEAD/../.git/config",
    "backslash": "a%5C..%5C..%5Cetc%5Cpasswd",
    "backslash-raw": "a\\..\\b",
    "nul": "a%00b",
    "dot": "a/./b",
    "empty-segment": "a//b",
}
PUBLIC_ENDPOINTS = [
    "/v1/files/",
    "/v1/get_signers/",
    "/v1/get_signers_chain/",
    "/v1/signatures/",
]
AUTH_ENDPOINTS = ["/v1/files-to-sign/", "/v1/signatures/"]


@pytest.mark.parametrize("endpoint", PUBLIC_ENDPOINTS)
@pytest.mark.parametrize("path", list(TRAVERSALS.values()), ids=list(TRAVERSALS))
def test_traversal_refused_on_public_endpoints(
    forge_server: World, endpoint: str, path: str
) -> None:
    reply = raw_request(forge_server.server.base_url, "GET", endpoint + path)
    _error(reply, 400, str(forge_server.server.data_dir))


@pytest.mark.parametrize("endpoint", AUTH_ENDPOINTS)
@pytest.mark.parametrize("path", list(TRAVERSALS.values()), ids=list(TRAVERSALS))
def test_traversal_refused_on_authenticated_endpoints(
    forge_server: World, endpoint: str, path: str
) -> None:
    reply = signed_request(forge_server.server.base_url, forge_server.admin, "GET", endpoint + path)
    _error(reply, 400, str(forge_server.server.data_dir))


BODY_TRAVERSALS = {
    "dotdot": "../x",
    "dotdot-inside": "https/github.com/443/acme/tool/../../../x",
    "absolute": "/etc/passwd",
    "git-dir": ".git/config",
    "git-inside": "https/github.com/443/acme/tool/.git/config",
    "backslash": "a\\..\\b",
    "nul": "a\x00b",
}


@pytest.mark.parametrize("path", list(BODY_TRAVERSALS.values()), ids=list(BODY_TRAVERSALS))
def test_traversal_refused_in_signature_map_keys(forge_server: World, path: str) -> None:
    # The primary file_path is clean; an extra key of the signatures map is not.
    subject = layout.signers_file_path(forge_server.project)
    body = {
        "file_path": subject,
        "public_key": str(forge_server.admin.public_key),
        "signatures": {subject: "x", path: "x"},
    }
    _error(
        _post(forge_server.server, forge_server.admin, "/v1/signatures", body),
        400,
        str(forge_server.server.data_dir),
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/tool/releases/tag/..",
        "https://github.com/acme/tool/releases/tag/%2e%2e",
        "https://github.com/acme/tool/releases/tag/.git",
        "https://github.com/acme/../../releases/tag/v1",
        "https://github.com/acme/tool/releases/tag/a%5Cb",
        "https://github.com/acme/tool/releases/tag/a%00b",
    ],
)
def test_traversal_refused_in_github_release_url(forge_server: World, url: str) -> None:
    # The index path is derived from the URL: a tag of '..' must never become a mirror path.
    _error(
        _post(forge_server.server, forge_server.admin, "/v1/assets", {"github_release_url": url}),
        400,
    )


@pytest.mark.parametrize(
    "url",
    [
        f"{FILES}/proj/../SHA256SUMS",
        f"{FILES}/proj/%2e%2e/SHA256SUMS",
        f"{FILES}/proj/.git/SHA256SUMS",
        f"{FILES}/proj/a%5Cb/SHA256SUMS",
        f"{FILES}/proj/a%00b/SHA256SUMS",
    ],
)
def test_traversal_refused_in_csum_files(forge_server: World, url: str) -> None:
    _error(_post(forge_server.server, forge_server.admin, "/v1/assets", {"csum_files": [url]}), 400)


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/../blob/main/asfaload.signers.json",
        "https://github.com/acme/%2e%2e/blob/main/asfaload.signers.json",
        "https://github.com/.git/x/blob/main/asfaload.signers.json",
        f"{FILES}/../asfaload.signers.json",
        f"{FILES}/a%00b/asfaload.signers.json",
    ],
)
def test_traversal_refused_in_signers_file_url(forge_server: World, url: str) -> None:
    key = forge_server.admin
    body = {"signers_file_url": url, "public_key": str(key.public_key)}
    _error(_post(forge_server.server, key, "/v1/register_repo", body), 400)


def test_nothing_outside_the_projects_was_written(forge_server: World) -> None:
    # After every refused attempt above, the mirror holds only the two registered projects.
    import pygit2

    repo = pygit2.Repository(str(forge_server.server.data_dir / "mirror.git"))
    tree = repo.revparse_single("refs/heads/main").peel(pygit2.Tree)
    assert sorted(str(e.name) for e in tree) == ["https"]
    https = repo[tree["https"].id]
    assert isinstance(https, pygit2.Tree)
    hosts = sorted(str(e.name) for e in https)
    assert hosts == ["files.example.com", "github.com"]


# --- manual status codes not exercised elsewhere -------------------------------------------------
def test_get_signers_chain_invalid_artifact_path_is_400(forge_server: World) -> None:
    # The manual's own example: GET /v1/get_signers_chain/invalid -> 400 "Invalid artifact path".
    reply = raw_request(forge_server.server.base_url, "GET", "/v1/get_signers_chain/invalid")
    message = _error(reply, 400)
    assert message.startswith("Invalid artifact path"), message


def test_get_signers_chain_of_a_registered_project_is_200(forge_server: World) -> None:
    reply = raw_request(
        forge_server.server.base_url, "GET", "/v1/get_signers_chain/" + forge_server.project
    )
    assert reply.status == 200, reply.body
    assert "entries" in reply.json()["history"]


# --- forge failures: the manual lists 500 ------------------------------------------------------
def _raw_path(emu: ForgeEmulator, blob_url: str) -> str:
    return emu.served_path(
        blob_url.replace("github.com", "raw.githubusercontent.com").replace("/blob/", "/")
    )


def test_forge_failure_on_register_is_500(forge_server: World) -> None:
    key = SecretKey.generate("ed25519")
    raw = signers_bytes(artifact=[([key], 1)], admin=[([key], 1)])
    url = forge_server.emu.put_github_file("acme", "down", "main", "asfaload.signers.json", raw)
    forge_server.emu.fail(_raw_path(forge_server.emu, url), 503, times=50)
    body = {"signers_file_url": url, "public_key": str(key.public_key)}
    _error(_post(forge_server.server, key, "/v1/register_repo", body), 500)


def test_forge_failure_on_update_signers_is_500(forge_server: World) -> None:
    raw = signers_bytes(
        artifact=[([forge_server.admin], 1)],
        admin=[([forge_server.admin], 1)],
        timestamp=1_800_000_500,
    )
    url = forge_server.emu.put_github_file(
        "acme", "tool", "main", "down/asfaload.signers.json", raw
    )
    forge_server.emu.fail(_raw_path(forge_server.emu, url), 503, times=50)
    body = {"signers_file_url": url, "public_key": str(forge_server.admin.public_key)}
    _error(_post(forge_server.server, forge_server.admin, "/v1/update_signers", body), 500)


def test_forge_failure_on_assets_is_500(forge_server: World) -> None:
    page = forge_server.emu.add_github_release("acme", "tool", "down", {"a.bin": b"abc"})
    forge_server.emu.fail("/api/repos/acme/tool/releases/tags/down", 503, times=50)
    _error(
        _post(forge_server.server, forge_server.admin, "/v1/assets", {"github_release_url": page}),
        500,
    )
