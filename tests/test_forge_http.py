"""The forge HTTP layer against the forge emulator over real loopback HTTP."""

from __future__ import annotations

import hashlib
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from asfaload.devtools.forge import FILESERVER, ForgeEmulator
from asfaload.errors import ForbiddenURLError, ForgeError, FormatError
from asfaload.forge import policy
from asfaload.forge.http import (
    HttpClient,
    HttpConfig,
    Rewrite,
    apply_rewrites,
    check_url,
    parse_rewrites,
)


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[ForgeEmulator]:
    with ForgeEmulator(tmp_path / "forge") as e:
        yield e


def client_for(emu: ForgeEmulator, **kw: object) -> HttpClient:
    values: dict[str, object] = {
        "rewrites": parse_rewrites(emu.rewrites()),
        "connect_timeout": 2.0,
        "backoff": 0.01,
    }
    values.update(kw)
    return HttpClient(HttpConfig(**values))  # type: ignore[arg-type]


# --- rewrites ---------------------------------------------------------------------------------------
def test_parse_rewrites_longest_prefix_wins() -> None:
    rw = parse_rewrites("https://a.example=http://x/1, https://a.example/deep=http://y/2")
    assert apply_rewrites("https://a.example/deep/f", rw) == "http://y/2/f"
    assert apply_rewrites("https://a.example/other", rw) == "http://x/1/other"
    assert apply_rewrites("https://b.example/other", rw) is None


def test_rewrite_prefix_matches_only_at_a_boundary() -> None:
    rw = parse_rewrites("https://github.com=http://127.0.0.1:1/gh")
    assert apply_rewrites("https://github.com", rw) == "http://127.0.0.1:1/gh"
    assert apply_rewrites("https://github.com/o/r", rw) == "http://127.0.0.1:1/gh/o/r"
    assert apply_rewrites("https://github.com?x", rw) == "http://127.0.0.1:1/gh?x"
    # A longer host is another host: it must not be sent to the trusted target.
    assert apply_rewrites("https://github.com.evil.net/o/r", rw) is None
    assert apply_rewrites("https://github.com:444/o", rw) is None


@pytest.mark.parametrize(
    "spec",
    [
        "nonsense",
        "=http://x",
        "https://a=",
        "https://a=ftp://x",
        "https://a=http://x,https://a=http://y",
    ],
)
def test_malformed_rewrites_are_refused(spec: str) -> None:
    with pytest.raises(FormatError):
        parse_rewrites(spec)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("hts:/=,.ab1 \t"), max_size=80), st.text(max_size=40))
def test_rewrite_parsing_never_crashes(spec: str, url: str) -> None:
    try:
        rewrites = parse_rewrites(spec)
    except FormatError:
        return
    out = apply_rewrites(url, rewrites)
    if out is not None:
        assert any(out.startswith(r.replacement) for r in rewrites)


def test_config_from_env() -> None:
    cfg = HttpConfig.from_env(
        {
            "ASFALOAD_URL_REWRITES": "https://a.example=http://127.0.0.1:9/a",
            "ASFALOAD_ALLOW_PRIVATE_URLS": "1",
            "ASFALOAD_HTTP_TIMEOUT": "5",
        }
    )
    assert cfg.rewrites == (Rewrite("https://a.example", "http://127.0.0.1:9/a"),)
    assert cfg.allow_private is True
    assert cfg.total_timeout == 5
    assert HttpConfig.from_env({}).allow_private is False
    with pytest.raises(FormatError):
        HttpConfig.from_env({"ASFALOAD_HTTP_TIMEOUT": "soon"})


def test_fetch_through_rewrite_keeps_the_original_url(emu: ForgeEmulator) -> None:
    url = emu.put_fileserver_file("p/signers.json", b'{"x": 1}')
    fetched = client_for(emu).get(url, max_bytes=1000)
    assert fetched.content == b'{"x": 1}'
    assert fetched.url == url == f"{FILESERVER}/p/signers.json"
    assert emu.hits("/files/p/signers.json") == 1


def test_status_error_names_the_original_url_not_the_target(emu: ForgeEmulator) -> None:
    with pytest.raises(ForgeError) as err:
        client_for(emu).get(f"{FILESERVER}/missing", max_bytes=100)
    assert "404" in str(err.value)
    assert f"{FILESERVER}/missing" in str(err.value)
    assert "127.0.0.1" not in str(err.value)


def test_unreachable_target_is_a_forge_error_without_internal_host() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    cfg = HttpConfig(
        rewrites=parse_rewrites(f"https://down.example=http://127.0.0.1:{port}"),
        max_retries=1,
        backoff=0.01,
    )
    with pytest.raises(ForgeError) as err:
        HttpClient(cfg).get("https://down.example/x", max_bytes=10)
    assert "connection failed" in str(err.value)
    assert str(port) not in str(err.value)


# --- URL syntax ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://files.example.com/x",
        "gopher://x/",
        "https://user:pw@files.example.com/x",
        "https://files.example.com/a/../b",
        "https://files.example.com/a/%2e%2e/b",
        "https://files.example.com/a b",
        "https:///nohost",
        "https://files.example.com:99999/x",
        "relative/path",
    ],
)
def test_bad_urls_are_refused(emu: ForgeEmulator, url: str) -> None:
    with pytest.raises(FormatError):
        client_for(emu).get(url, max_bytes=10)


ESCAPING_PATHS = [
    "a/..%2F..%2Fsecret",
    "a/..%2f..%2fsecret",
    "a/%2e%2e%2Fsecret",
    "a/..%5Csecret",
    "a/..%5csecret",
    "a/x%5Cy",
    "a/%252e%252e%252fsecret",
    "a/%25252e%25252e/secret",
    "a/..;/secret",
    "a/%2e%2e;x/secret",
    "a/..%00/secret",
    "a/%C0%AE%C0%AE/secret",
    "a/%2525252525252e",
]


@pytest.mark.parametrize("path", ESCAPING_PATHS)
def test_encoded_separators_and_dots_never_leave_the_rewrite_target(
    emu: ForgeEmulator, path: str
) -> None:
    """Refused before any connection: the emulator (the operator's target) never sees them."""
    emu.put_file("secret", b"not for you")
    url = f"{FILESERVER}/{path}"
    with pytest.raises(FormatError, match="URL path must not contain"):
        check_url(url)
    with pytest.raises(FormatError):
        client_for(emu).get(url, max_bytes=100)
    assert emu._hits == {}


def test_a_rewritten_url_that_escapes_is_refused_without_naming_the_target(
    emu: ForgeEmulator,
) -> None:
    # The prefix ends inside a segment's encoding: only the rewritten URL holds a dot segment.
    cfg = HttpConfig(
        rewrites=parse_rewrites(f"https://odd.example/x=http://127.0.0.1:{emu.port}/.")
    )
    with pytest.raises(FormatError) as err:
        HttpClient(cfg).get("https://odd.example/x/y", max_bytes=10)
    assert "https://odd.example/x/y" in str(err.value)
    assert "127.0.0.1" not in str(err.value)
    assert emu._hits == {}


def test_a_redirect_to_an_escaping_path_is_not_followed(emu: ForgeEmulator) -> None:
    emu.put_file("secret", b"not for you")
    url = emu.put_fileserver_file("p/signers.json", b"{}")
    emu.redirect("/files/p/signers.json", "/files/p/..%2F..%2Fsecret")
    with pytest.raises(ForgeError, match="redirected .* to an invalid URL"):
        client_for(emu).get(url, max_bytes=100)
    emu.redirect("/files/p/signers.json", f"{FILESERVER}/p/..%2F..%2Fsecret")
    with pytest.raises(ForgeError, match="redirected .* to an invalid URL"):
        client_for(emu).get(url, max_bytes=100)
    assert emu.hits("/secret") == 0 and emu.hits("/files/p/..%2F..%2Fsecret") == 0


@pytest.mark.parametrize(
    "path",
    [
        "api/v4/projects/group%2Fproject/releases/v1%2Fbeta",
        "p/100%25.txt",
        "p/a%252Fb",
        "p/caf%C3%A9.txt",
        "p/..x/x..",
        "p/.well/x",
    ],
)
def test_encoded_slashes_and_percents_that_stay_inside_pass(emu: ForgeEmulator, path: str) -> None:
    check_url(f"{FILESERVER}/{path}")


# --- address policy -----------------------------------------------------------------------------------
PRIVATE_HOSTS = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.100.100.200",
    "0.0.0.0",
    "224.0.0.1",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:169.254.169.254]",
    "[fe80::1]",
    "[fd00:ec2::254]",
    "[64:ff9b::a00:1]",
    "[2002:7f00:1::]",
    "localhost",
]


@pytest.mark.parametrize("host", PRIVATE_HOSTS)
def test_private_addresses_are_refused(emu: ForgeEmulator, host: str) -> None:
    client = client_for(emu, max_retries=0)
    with pytest.raises(ForbiddenURLError):
        client.get(f"http://{host}:{emu.port}/files/x", max_bytes=10)


def test_loopback_emulator_is_refused_unless_allowed(emu: ForgeEmulator) -> None:
    emu.put_file("files/x", b"hello")
    direct = emu.url("/files/x")
    with pytest.raises(ForbiddenURLError):
        client_for(emu).get(direct, max_bytes=10)
    assert emu.hits("/files/x") == 0  # refused before any request was sent
    assert client_for(emu, allow_private=True).get(direct, max_bytes=10).content == b"hello"
    cfg = HttpConfig.from_env({"ASFALOAD_ALLOW_PRIVATE_URLS": "1"})
    assert HttpClient(cfg).get(direct, max_bytes=10).content == b"hello"


def test_public_addresses_pass_the_policy() -> None:
    for text in ("8.8.8.8", "2606:4700:4700::1111", "140.82.112.3"):
        ip = policy.parse_ip(text)
        assert ip is not None
        assert policy.forbidden_reason(ip) is None


def test_connected_peer_is_checked(emu: ForgeEmulator) -> None:
    # The post-connect check is what defeats DNS rebinding: the socket's real peer is judged.
    with (
        socket.create_connection(("127.0.0.1", emu.port)) as sock,
        pytest.raises(ForbiddenURLError),
    ):
        policy.check_peer(sock, "rebinding.example")


# --- redirects -----------------------------------------------------------------------------------------
def test_redirect_to_metadata_address_is_refused(emu: ForgeEmulator) -> None:
    emu.redirect("/files/r", "http://169.254.169.254/latest/meta-data/")
    with pytest.raises(ForbiddenURLError):
        client_for(emu).get(f"{FILESERVER}/r", max_bytes=100)


def test_redirect_to_another_loopback_origin_is_refused(emu: ForgeEmulator, tmp_path: Path) -> None:
    with ForgeEmulator(tmp_path / "other") as other:
        other.put_file("secret", b"internal")
        emu.redirect("/files/r", other.url("/secret"))
        with pytest.raises(ForbiddenURLError):
            client_for(emu).get(f"{FILESERVER}/r", max_bytes=100)
        assert other.hits("/secret") == 0


def test_redirects_within_the_trusted_target_and_to_rewritten_urls(emu: ForgeEmulator) -> None:
    emu.put_file("files/final", b"ok")
    emu.redirect("/files/rel", "/files/final")
    assert client_for(emu).get(f"{FILESERVER}/rel", max_bytes=10).content == b"ok"
    emu.redirect("/files/abs", f"{FILESERVER}/final")
    assert client_for(emu).get(f"{FILESERVER}/abs", max_bytes=10).content == b"ok"


def test_credentials_do_not_follow_a_redirect_to_another_origin(
    emu: ForgeEmulator, tmp_path: Path
) -> None:
    with ForgeEmulator(tmp_path / "other") as other:
        other.put_file("files/b", b"b")
        emu.redirect("/files/a", "https://other.example/files/b")
        rewrites = f"{emu.rewrites()},https://other.example={other.origin}"
        client = HttpClient(HttpConfig(rewrites=parse_rewrites(rewrites)))
        token = {"Authorization": "Bearer ghp_SECRET", "PRIVATE-TOKEN": "glpat"}
        assert client.get(f"{FILESERVER}/a", max_bytes=10, headers=token).content == b"b"
        assert emu.last_headers("/files/a")["authorization"] == "Bearer ghp_SECRET"
        assert "authorization" not in other.last_headers("/files/b")
        assert "private-token" not in other.last_headers("/files/b")


def test_redirect_to_a_non_http_scheme_is_a_forge_error(emu: ForgeEmulator) -> None:
    emu.redirect("/files/ftp", "ftp://files.example.com/x")
    with pytest.raises(ForgeError, match="invalid URL"):
        client_for(emu).get(f"{FILESERVER}/ftp", max_bytes=10)


def test_redirect_loop_is_bounded(emu: ForgeEmulator) -> None:
    emu.redirect("/files/loop", "/files/loop")
    with pytest.raises(ForgeError, match="Too many redirects"):
        client_for(emu, max_redirects=3).get(f"{FILESERVER}/loop", max_bytes=10)
    assert emu.hits("/files/loop") == 4


# --- size caps, timeouts, retries ---------------------------------------------------------------------
def test_size_cap_from_content_length(emu: ForgeEmulator) -> None:
    url = emu.put_fileserver_file("big.json", b"x" * (64 * 1024 + 1))
    with pytest.raises(ForgeError, match="size limit of 65536"):
        client_for(emu).get(url, max_bytes=64 * 1024)
    assert len(client_for(emu).get(url, max_bytes=64 * 1024 + 1).content) == 64 * 1024 + 1


class _NoLengthHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        self.wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        try:
            for _ in range(64):
                self.wfile.write(b"y" * 4096)
        except OSError:
            pass


def test_size_cap_while_streaming_without_content_length() -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _NoLengthHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        cfg = HttpConfig(rewrites=parse_rewrites(f"https://nolen.example=http://127.0.0.1:{port}"))
        with pytest.raises(ForgeError, match="size limit of 10000"):
            HttpClient(cfg).get("https://nolen.example/f", max_bytes=10_000)
        assert len(HttpClient(cfg).get("https://nolen.example/f", max_bytes=1 << 20).content) == (
            64 * 4096
        )
    finally:
        server.shutdown()
        server.server_close()


def test_total_timeout_stops_a_dripping_server(emu: ForgeEmulator) -> None:
    # 200 bytes at one byte per 50 ms never trips a per-read timeout; only a total deadline does.
    url = emu.put_fileserver_file("slow", b"z" * 200)
    emu.slow("/files/slow", 0.05)
    with pytest.raises(ForgeError, match="Timed out"):
        client_for(emu, total_timeout=0.5).get(url, max_bytes=1000)


def test_total_timeout_covers_a_server_that_never_answers() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]
        cfg = HttpConfig(
            rewrites=parse_rewrites(f"https://mute.example=http://127.0.0.1:{port}"),
            read_timeout=60.0,
            total_timeout=0.5,
        )
        with pytest.raises(ForgeError, match="Timed out"):
            HttpClient(cfg).get("https://mute.example/x", max_bytes=10)
    finally:
        listener.close()


def test_a_forge_that_accepts_and_stays_silent_fails_on_the_read_timeout() -> None:
    """Connections accepted and never answered: the default read timeout ends the fetch long
    before a total timeout set far away (the bound below is generous, not a measurement)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    outcome: list[BaseException | None] = []

    def fetch() -> None:
        port = listener.getsockname()[1]
        cfg = HttpConfig(
            rewrites=parse_rewrites(f"https://mute.example=http://127.0.0.1:{port}"),
            total_timeout=3600.0,
        )
        try:
            HttpClient(cfg).get("https://mute.example/x", max_bytes=10)
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)

    fetcher = threading.Thread(target=fetch, daemon=True)
    try:
        fetcher.start()
        fetcher.join(60)
        assert not fetcher.is_alive(), "a silent forge held the fetch for a minute"
        assert len(outcome) == 1 and isinstance(outcome[0], ForgeError), outcome
        assert str(outcome[0]) == "Failed to fetch https://mute.example/x: timed out"
        assert accepted  # the connection was taken: this is a read, not a connect, timeout
    finally:
        stop.set()
        listener.close()
        acceptor.join(5)
        for conn in accepted:
            conn.close()


def test_retry_after_is_capped_and_retries_succeed(emu: ForgeEmulator) -> None:
    url = emu.put_fileserver_file("rl", b"fine")
    emu.fail("/files/rl", 429, times=2, retry_after="3600")
    client = client_for(emu, max_retry_after=0.05)
    assert client.get(url, max_bytes=10).content == b"fine"
    assert emu.hits("/files/rl") == 3


def test_retries_are_bounded(emu: ForgeEmulator) -> None:
    url = emu.put_fileserver_file("down", b"never")
    emu.fail("/files/down", 500, times=100)
    with pytest.raises(ForgeError, match="status 500"):
        client_for(emu, max_retries=2).get(url, max_bytes=10)
    assert emu.hits("/files/down") == 3


def test_rate_limit_exhaustion_message(emu: ForgeEmulator) -> None:
    url = emu.put_fileserver_file("rl2", b"x")
    emu.fail("/files/rl2", 429, times=100, retry_after="1")
    with pytest.raises(ForgeError, match="rate limit exceeded after 3 retries"):
        client_for(emu, max_retry_after=0.01).get(url, max_bytes=10)
    assert emu.hits("/files/rl2") == 4


def test_retry_after_forms() -> None:
    import time
    from email.utils import formatdate

    from asfaload.forge.http import _retry_after

    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    assert _retry_after(formatdate(0, usegmt=True)) == 0.0  # a date in the past: no wait
    later = _retry_after(formatdate(time.time() + 3600, usegmt=True))
    assert later is not None and later > 3000


def test_client_errors_are_not_retried(emu: ForgeEmulator) -> None:
    emu.fail("/files/gone", 403, times=100)
    with pytest.raises(ForgeError, match="status 403"):
        client_for(emu).get(f"{FILESERVER}/gone", max_bytes=10)
    assert emu.hits("/files/gone") == 1


def test_streaming_hash_matches(emu: ForgeEmulator) -> None:
    data = bytes(range(256)) * 5000
    url = emu.put_fileserver_file("blob.bin", data)
    digest, size = client_for(emu).hash(url, "sha256")
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_invalid_json_is_a_forge_error(emu: ForgeEmulator) -> None:
    url = emu.put_fileserver_file("bad.json", b"{nope")
    with pytest.raises(ForgeError, match="Invalid JSON"):
        client_for(emu).get_json(url)


# --- the emulator itself -------------------------------------------------------------------------------
def test_emulator_serves_ranges(emu: ForgeEmulator) -> None:
    emu.put_file("files/r.bin", b"0123456789")
    url = emu.url("/files/r.bin")
    r = requests.get(url, headers={"Range": "bytes=2-4"}, timeout=5)
    assert (r.status_code, r.content, r.headers["Content-Range"]) == (206, b"234", "bytes 2-4/10")
    r = requests.get(url, headers={"Range": "bytes=-3"}, timeout=5)
    assert (r.status_code, r.content) == (206, b"789")
    r = requests.get(url, headers={"Range": "bytes=7-"}, timeout=5)
    assert (r.status_code, r.content) == (206, b"789")
    r = requests.get(url, headers={"Range": "bytes=20-"}, timeout=5)
    assert r.status_code == 416
    r = requests.head(url, timeout=5)
    assert (r.status_code, r.headers["Content-Length"]) == (200, "10")


def test_emulator_refuses_paths_outside_its_root(emu: ForgeEmulator) -> None:
    with socket.create_connection(("127.0.0.1", emu.port)) as s:
        s.sendall(b"GET /files/../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = s.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 404")


def test_emulator_runs_as_a_process(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "asfaload.devtools.forge", "--port", "0", "--root", str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proc.stdout is not None
        import json

        info = json.loads(proc.stdout.readline())
        origin = info["origin"]
        assert "https://github.com=" + origin + "/gh" in info["rewrites"]
        put = requests.put(origin + "/_emu/files/files/a.txt", data=b"via put", timeout=5)
        assert put.status_code == 200
        cfg = HttpConfig(rewrites=parse_rewrites(info["rewrites"]))
        assert HttpClient(cfg).get(f"{FILESERVER}/a.txt", max_bytes=100).content == b"via put"
        # Releases are derived from the release directories, digests included.
        asset = origin + "/_emu/files/gh/acme/tool/releases/download/v1.0/tool.tar.gz"
        assert requests.put(asset, data=b"tool", timeout=5).status_code == 200
        from asfaload.forge import ForgeConfig, Forges

        release = Forges(ForgeConfig(http=cfg)).fetch_release(
            "https://github.com/acme/tool/releases/tag/v1.0"
        )
        (only,) = release.files
        assert (only.file_name, only.hash_hex) == (
            "tool.tar.gz",
            hashlib.sha256(b"tool").hexdigest(),
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000, b'{"a":' * 100_000, b'{"n": ' + b"9" * 5000 + b"}"],
    ids=["nested-arrays", "nested-objects", "giant-int"],
)
def test_hostile_json_is_a_forge_error(emu: ForgeEmulator, raw: bytes) -> None:
    url = emu.put_fileserver_file("hostile.json", raw)
    with pytest.raises(ForgeError, match="Invalid JSON"):
        client_for(emu).get_json(url)
