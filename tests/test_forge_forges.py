"""GitHub, GitLab and file-server forges against the emulator over real loopback HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asfaload.devtools.forge import FILESERVER, GITHUB, GITLAB, ForgeEmulator
from asfaload.errors import ForbiddenURLError, ForgeError, FormatError, SignersFileError
from asfaload.forge import ForgeConfig, Forges, HttpConfig, github, gitlab, parse_rewrites

SIGNERS = b'{"version": 1, "timestamp": "2024-01-01T00:00:00Z"}\n'


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[ForgeEmulator]:
    with ForgeEmulator(tmp_path / "forge") as e:
        yield e


def forges_for(emu: ForgeEmulator, **config: object) -> Forges:
    http = HttpConfig(rewrites=parse_rewrites(emu.rewrites()), backoff=0.01)
    return Forges(ForgeConfig(http=http, **config))  # type: ignore[arg-type]


# --- URL mapping --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "raw"),
    [
        (
            "https://github.com/acme/tool/blob/main/asfaload.signers.json",
            "https://raw.githubusercontent.com/acme/tool/main/asfaload.signers.json",
        ),
        (
            "https://github.com/Acme/Tool/blob/feature/x/dir/s.json#L3",
            "https://raw.githubusercontent.com/Acme/Tool/feature/x/dir/s.json",
        ),
        (
            "https://raw.githubusercontent.com/acme/tool/main/a/s.json",
            "https://raw.githubusercontent.com/acme/tool/main/a/s.json",
        ),
    ],
)
def test_github_raw_url(url: str, raw: str) -> None:
    assert github.raw_url(url) == raw


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com.evil.net/acme/tool/blob/main/s.json",
        "https://evilgithub.com/acme/tool/blob/main/s.json",
        "https://gist.github.com/acme/tool/blob/main/s.json",
        "http://github.com/acme/tool/blob/main/s.json",
        "https://github.com:8443/acme/tool/blob/main/s.json",
        "https://github.com/acme/tool/tree/main/s.json",
        "https://github.com/acme/tool/blob/main",
        "https://github.com/acme//blob/main/s.json",
        "https://raw.githubusercontent.com/acme/tool/s.json",
    ],
)
def test_github_urls_refused(url: str) -> None:
    with pytest.raises(FormatError):
        github.raw_url(url)


def test_github_release_url() -> None:
    assert github.parse_release_url("https://github.com/acme/tool/releases/tag/v1.0") == (
        "acme",
        "tool",
        "v1.0",
    )
    assert github.parse_release_url("https://github.com/acme/tool/releases/tag/rel/2%2B1/") == (
        "acme",
        "tool",
        "rel/2+1",
    )
    for bad in (
        "https://github.com/acme/tool/releases",
        "https://github.com/acme/tool/releases/download/v1/x",
        "https://raw.githubusercontent.com/acme/tool/releases/tag/v1",
        "https://api.github.com/repos/acme/tool/releases/tags/v1",
    ):
        with pytest.raises(FormatError):
            github.parse_release_url(bad)


@pytest.mark.parametrize(
    ("url", "raw"),
    [
        (
            "https://gitlab.com/grp/tool/-/blob/main/asfaload.signers.json",
            "https://gitlab.com/grp/tool/-/raw/main/asfaload.signers.json",
        ),
        (
            "https://gitlab.com/grp/sub/tool/-/raw/main/d/s.json",
            "https://gitlab.com/grp/sub/tool/-/raw/main/d/s.json",
        ),
        (
            "http://git.example.org:8080/grp/tool/-/blob/v1/s.json",
            "http://git.example.org:8080/grp/tool/-/raw/v1/s.json",
        ),
    ],
)
def test_gitlab_raw_url(url: str, raw: str) -> None:
    assert gitlab.raw_url(url) == raw


@pytest.mark.parametrize(
    "url",
    [
        "https://gitlab.com/tool/-/blob/main/s.json",
        "https://gitlab.com/grp/tool/blob/main/s.json",
        "https://gitlab.com/grp/tool/-/tree/main/s.json",
        "https://gitlab.com/grp/tool/-/raw/main",
    ],
)
def test_gitlab_urls_refused(url: str) -> None:
    with pytest.raises(FormatError):
        gitlab.raw_url(url)


def test_gitlab_release_url() -> None:
    assert gitlab.parse_release_url("https://gitlab.com/grp/sub/tool/-/releases/v1.0") == (
        "https://gitlab.com",
        "grp/sub/tool",
        "v1.0",
    )
    assert gitlab.parse_release_url(
        "https://gitlab.com/grp/tool/-/releases/v1.0/downloads/tool.tar.gz"
    ) == ("https://gitlab.com", "grp/tool", "v1.0")


def test_detection_uses_exact_hosts() -> None:
    f = Forges(ForgeConfig(gitlab_hosts=("git.example.org",)))
    assert f.detect("https://github.com/a/b/blob/m/s.json") == "github"
    assert f.detect("https://raw.githubusercontent.com/a/b/m/s.json") == "github"
    assert f.detect("https://gitlab.com/a/b/-/raw/m/s.json") == "gitlab"
    assert f.detect("https://git.example.org/a/b/-/raw/m/s.json") == "gitlab"
    assert f.detect("https://notgithub.com/a/b/blob/m/s.json") == "fileserver"
    assert f.detect("https://github.com.evil.net/a/b/blob/m/s.json") == "fileserver"


def test_config_from_env() -> None:
    cfg = ForgeConfig.from_env(
        {
            "ASFALOAD_GITLAB_HOSTS": "Git.Example.org, other.example",
            "ASFALOAD_GITHUB_API_KEY": "ghp_SECRET",
        }
    )
    assert cfg.gitlab_hosts == ("git.example.org", "other.example")
    assert cfg.github_token == "ghp_SECRET"
    assert "ghp_SECRET" not in repr(cfg)


# --- signers files ------------------------------------------------------------------------------------
def test_github_signers_file_from_blob_url(emu: ForgeEmulator) -> None:
    url = emu.put_github_file("acme", "tool", "main", "asfaload.signers.json", SIGNERS)
    got = forges_for(emu).fetch_signers_file(url)
    assert got.raw == SIGNERS
    assert got.url == url
    assert got.retrieval_url == (
        "https://raw.githubusercontent.com/acme/tool/main/asfaload.signers.json"
    )
    assert (got.kind, got.metadata_kind) == ("github", "Github")
    assert emu.hits("/raw/acme/tool/main/asfaload.signers.json") == 1


def test_github_signers_file_from_raw_url(emu: ForgeEmulator) -> None:
    emu.put_github_file("acme", "tool", "main", "s.json", SIGNERS)
    url = "https://raw.githubusercontent.com/acme/tool/main/s.json"
    got = forges_for(emu).fetch_signers_file(url)
    assert (got.raw, got.retrieval_url) == (SIGNERS, url)


def test_signers_file_is_capped_at_64_kib(emu: ForgeEmulator) -> None:
    ok = emu.put_github_file("acme", "tool", "main", "ok.json", b" " * (64 * 1024))
    assert len(forges_for(emu).fetch_signers_file(ok).raw) == 64 * 1024
    big = emu.put_github_file("acme", "tool", "main", "big.json", b" " * (64 * 1024 + 1))
    # The user chose the file: a bad signers file (400), not a failing forge (500).
    with pytest.raises(SignersFileError, match="larger than the limit of 65536 bytes"):
        forges_for(emu).fetch_signers_file(big)


def test_signers_file_must_be_json(emu: ForgeEmulator) -> None:
    url = emu.put_github_file("acme", "tool", "main", "signers.txt", SIGNERS)
    with pytest.raises(FormatError) as err:
        forges_for(emu).fetch_signers_file(url)
    assert str(err.value) == "Signers file must have extension in [ json ], got .txt"


def test_missing_signers_file(emu: ForgeEmulator) -> None:
    with pytest.raises(ForgeError, match="status 404"):
        forges_for(emu).fetch_signers_file(f"{GITHUB}/acme/tool/blob/main/none.json")


def test_gitlab_signers_file(emu: ForgeEmulator) -> None:
    url = emu.put_gitlab_file("grp/sub/tool", "main", "asfaload.signers.json", SIGNERS)
    got = forges_for(emu).fetch_signers_file(url)
    assert got.raw == SIGNERS
    assert got.retrieval_url == f"{GITLAB}/grp/sub/tool/-/raw/main/asfaload.signers.json"
    assert got.kind == "gitlab"


def test_fileserver_signers_file(emu: ForgeEmulator) -> None:
    url = emu.put_fileserver_file("proj/asfaload.signers/asfaload.signers.json", SIGNERS)
    got = forges_for(emu).fetch_signers_file(url)
    assert (got.raw, got.retrieval_url, got.kind) == (SIGNERS, url, "fileserver")


def test_signers_file_on_private_address_is_refused(emu: ForgeEmulator) -> None:
    emu.put_file("files/s.json", SIGNERS)
    for url in (emu.url("/files/s.json"), "http://169.254.169.254/latest/s.json"):
        with pytest.raises(ForbiddenURLError):
            forges_for(emu).fetch_signers_file(url)
    assert emu.hits("/files/s.json") == 0


COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    "url",
    [
        f"{GITHUB}/acme/tool/blob/{COMMIT}/asfaload.signers.json",
        f"{GITHUB}/acme/tool/blob/{COMMIT.upper()}/asfaload.signers.json",
        f"https://raw.githubusercontent.com/acme/tool/{COMMIT}/asfaload.signers.json",
        f"{GITHUB}/acme/tool/blob/{'ab' * 32}/dir/asfaload.signers.json",
        f"{GITLAB}/grp/sub/tool/-/blob/{COMMIT}/asfaload.signers.json",
        f"{GITLAB}/grp/tool/-/raw/{COMMIT}/asfaload.signers.json",
    ],
)
def test_signers_file_at_a_commit_id_is_refused(emu: ForgeEmulator, url: str) -> None:
    """A fork's commit is served under its parent's URLs: only a branch or tag pins the
    project's own file. Refused before any request."""
    with pytest.raises(FormatError, match="must name a branch or tag, not the commit") as err:
        forges_for(emu).fetch_signers_file(url)
    assert url in str(err.value)
    assert emu._hits == {}


@pytest.mark.parametrize(
    "ref", ["main", "v1.2.3", "0123456", COMMIT[:39], COMMIT + "0", "release/" + COMMIT]
)
def test_signers_file_at_a_branch_or_tag_is_fetched(emu: ForgeEmulator, ref: str) -> None:
    url = emu.put_github_file("acme", "tool", ref, "asfaload.signers.json", SIGNERS)
    assert forges_for(emu).fetch_signers_file(url).raw == SIGNERS
    url = emu.put_gitlab_file("grp/tool", ref, "asfaload.signers.json", SIGNERS)
    assert forges_for(emu).fetch_signers_file(url).raw == SIGNERS


def test_kind_override(emu: ForgeEmulator) -> None:
    url = emu.put_github_file("acme", "tool", "main", "s.json", SIGNERS)
    # As a file server, a blob URL is fetched as is (and the emulator has no blob pages).
    with pytest.raises(ForgeError, match="404"):
        forges_for(emu).fetch_signers_file(url, kind="fileserver")
    with pytest.raises(FormatError):
        forges_for(emu).fetch_signers_file(f"{FILESERVER}/s.json", kind="github")
    with pytest.raises(FormatError, match="Unknown forge type"):
        forges_for(emu).fetch_signers_file(url, kind="bitbucket")


# --- GitHub releases ----------------------------------------------------------------------------------
def test_github_release_with_digests_needs_no_download(emu: ForgeEmulator) -> None:
    files = {"tool.tar.gz": b"tool v1", "tool.zip": b"zip v1"}
    url = emu.add_github_release("acme", "tool", "v1.0", files, published_at="2024-05-06T07:08:09Z")
    assets = forges_for(emu).fetch_release(url)
    assert (assets.mode, assets.url, assets.tag) == ("github", url, "v1.0")
    assert assets.published_on == "2024-05-06T07:08:09Z"
    got = {a.file_name: a for a in assets.files}
    assert set(got) == set(files)
    for name, data in files.items():
        assert got[name].algo == "Sha256"
        assert got[name].hash_hex == hashlib.sha256(data).hexdigest()
        assert got[name].source_url == f"{GITHUB}/acme/tool/releases/download/v1.0/{name}"
        assert emu.hits(f"/gh/acme/tool/releases/download/v1.0/{name}") == 0
    assert emu.hits("/api/repos/acme/tool/releases/tags/v1.0") == 1


def test_github_digest_is_trusted_over_a_tampered_asset(emu: ForgeEmulator) -> None:
    url = emu.add_github_release("acme", "tool", "v1", {"t.bin": b"original"})
    emu.put_file("gh/acme/tool/releases/download/v1/t.bin", b"tampered")
    (asset,) = forges_for(emu).fetch_release(url).files
    assert asset.hash_hex == hashlib.sha256(b"original").hexdigest()


def test_github_release_without_digests_is_downloaded_and_hashed(emu: ForgeEmulator) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB, several chunks
    url = emu.add_github_release("acme", "tool", "v2", {"big.bin": data}, with_digest=False)
    (asset,) = forges_for(emu).fetch_release(url).files
    assert (asset.algo, asset.hash_hex) == ("Sha256", hashlib.sha256(data).hexdigest())
    assert emu.hits("/gh/acme/tool/releases/download/v2/big.bin") == 1


def test_github_asset_download_is_size_capped(emu: ForgeEmulator) -> None:
    url = emu.add_github_release("acme", "tool", "v3", {"b.bin": b"x" * 5000}, with_digest=False)
    f = Forges(
        ForgeConfig(http=HttpConfig(rewrites=parse_rewrites(emu.rewrites()), asset_max_bytes=4096))
    )
    with pytest.raises(ForgeError, match="size limit of 4096"):
        f.fetch_release(url)


def test_github_release_not_found(emu: ForgeEmulator) -> None:
    with pytest.raises(ForgeError, match="404"):
        forges_for(emu).fetch_release(f"{GITHUB}/acme/tool/releases/tag/nope")


def test_github_api_retries_on_rate_limit(emu: ForgeEmulator) -> None:
    url = emu.add_github_release("acme", "tool", "v4", {"a": b"a"})
    emu.fail("/api/repos/acme/tool/releases/tags/v4", 429, times=1, retry_after="0")
    assert [a.file_name for a in forges_for(emu).fetch_release(url).files] == ["a"]
    assert emu.hits("/api/repos/acme/tool/releases/tags/v4") == 2


def test_github_asset_url_must_belong_to_the_release() -> None:
    from asfaload.forge.github import _check_download_url

    good = "https://github.com/Acme/Tool/releases/download/v1/t.bin"
    assert _check_download_url(good, "acme", "tool", "t.bin") == good
    for bad in (
        "https://evil.example/acme/tool/releases/download/v1/t.bin",
        "https://github.com/other/tool/releases/download/v1/t.bin",
        "https://github.com/acme/tool/releases/download/v1/other.bin",
        "http://github.com/acme/tool/releases/download/v1/t.bin",
    ):
        with pytest.raises(ForgeError):
            _check_download_url(bad, "acme", "tool", "t.bin")


# --- GitLab releases ----------------------------------------------------------------------------------
def test_gitlab_release_links_are_downloaded_and_hashed(emu: ForgeEmulator) -> None:
    files = {"tool.tar.gz": b"gl tool", "tool.zip": b"gl zip"}
    url = emu.add_gitlab_release("grp/sub/tool", "v1.0", files, released_at="2024-02-03T04:05:06Z")
    assets = forges_for(emu).fetch_release(url)
    assert (assets.mode, assets.tag, assets.published_on) == (
        "gitlab",
        "v1.0",
        "2024-02-03T04:05:06Z",
    )
    got = {a.file_name: a for a in assets.files}
    assert set(got) == set(files)
    for name, data in files.items():
        assert got[name].hash_hex == hashlib.sha256(data).hexdigest()
        assert got[name].source_url == f"{GITLAB}/grp/sub/tool/-/releases/v1.0/downloads/{name}"
    # The project path is one URL-encoded segment of the API path.
    assert emu.hits("/gl/api/v4/projects/grp%2Fsub%2Ftool/releases/v1.0") == 1


def test_gitlab_release_not_found(emu: ForgeEmulator) -> None:
    with pytest.raises(ForgeError, match="404"):
        forges_for(emu).fetch_release(f"{GITLAB}/grp/tool/-/releases/none")


def test_fileserver_has_no_releases(emu: ForgeEmulator) -> None:
    with pytest.raises(FormatError, match="checksum files"):
        forges_for(emu).fetch_release(f"{FILESERVER}/releases/v1.0/")


def test_published_files_feed_the_model(emu: ForgeEmulator) -> None:
    from asfaload.model.index import ReleaseIndex

    url = emu.add_github_release("acme", "tool", "v9", {"a.bin": b"a", "b.bin": b"b"})
    assets = forges_for(emu).fetch_release(url)
    index = ReleaseIndex.create(assets.published_files(), 1_700_000_000, assets.published_on)
    assert index.find("a.bin") is not None
    assert index.published_on == "2024-01-01T00:00:00Z"


# --- URL parsers: arbitrary input gives a result or our error, never a crash --------------------------
_url_text = st.one_of(
    st.text(max_size=120),
    st.builds(
        lambda host, path: f"https://{host}/{path}",
        st.sampled_from(["github.com", "raw.githubusercontent.com", "gitlab.com", "x.example"]),
        st.text(alphabet=st.sampled_from("ab-/.%2Fblobrawtag *?#:@\\é"), max_size=60),
    ),
)


@settings(max_examples=300, deadline=None)
@given(_url_text)
def test_url_parsers_never_crash(url: str) -> None:
    f = Forges(ForgeConfig())
    for parse in (
        github.raw_url,
        github.parse_release_url,
        gitlab.raw_url,
        gitlab.parse_release_url,
        f.retrieval_url,
    ):
        try:
            out = parse(url)
        except FormatError:
            continue
        assert out
    try:
        raw = f.retrieval_url(url)
    except FormatError:
        return
    # Whatever we accept, we would fetch: it passes the fetch-time URL rules too.
    from asfaload.forge.http import check_url

    check_url(raw)
