"""Checksum-files mode: the strict file parser, the URL rules, and fetching via the emulator."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asfaload.devtools.forge import FILESERVER, ForgeEmulator
from asfaload.errors import ForgeError, FormatError
from asfaload.forge import ForgeConfig, Forges, HttpConfig, parse_checksums, parse_rewrites
from asfaload.forge.checksums import ChecksumEntry, checksum_base_url

H256 = "a" * 64
H512 = "b" * 128


# --- parser: accepted forms ------------------------------------------------------------------------
def test_text_and_binary_modes() -> None:
    text = f"{H256}  tool.tar.gz\n{H512} *tool.zip\n"
    assert parse_checksums(text) == (
        ChecksumEntry("tool.tar.gz", "Sha256", H256),
        ChecksumEntry("tool.zip", "Sha512", H512),
    )


def test_crlf_empty_lines_and_uppercase_hex() -> None:
    text = f"\r\n\n{H256.upper()}  a.bin\r\n\n{H256}  b c.bin\r\n"
    assert parse_checksums(text.encode()) == (
        ChecksumEntry("a.bin", "Sha256", H256),
        ChecksumEntry("b c.bin", "Sha256", H256),
    )


def test_first_separator_wins() -> None:
    # "  " at the hash's end comes first, so the name keeps its leading '*'.
    assert parse_checksums(f"{H256}  *x")[0].file_name == "*x"
    assert parse_checksums(f"{H256} *  x")[0].file_name == "  x"


def test_real_sha256sum_output(tmp_path: Path) -> None:
    import shutil
    import subprocess

    (tmp_path / "one.bin").write_bytes(b"one")
    (tmp_path / "two words.bin").write_bytes(b"two")
    tool = shutil.which("sha256sum")
    assert tool, "coreutils sha256sum is needed"
    out = subprocess.run(
        [tool, "one.bin", "two words.bin"], cwd=tmp_path, capture_output=True, check=True
    ).stdout
    entries = parse_checksums(out)
    assert entries == (
        ChecksumEntry("one.bin", "Sha256", hashlib.sha256(b"one").hexdigest()),
        ChecksumEntry("two words.bin", "Sha256", hashlib.sha256(b"two").hexdigest()),
    )


# --- parser: exact error messages -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "Empty content: no checksums found"),
        ("\n\r\n\n", "Empty content: no checksums found"),
        ("# comment line", "Invalid line format: # comment line"),
        (f"SHA256 (tool.tar.gz) = {H256}", f"Invalid line format: SHA256 (tool.tar.gz) = {H256}"),
        (f"{H256} tool.tar.gz", f"Invalid line format: {H256} tool.tar.gz"),
        (f"{H256}  ", f"Invalid line format: {H256}  "),
        ("  tool.tar.gz", "Invalid line format:   tool.tar.gz"),
        (" *tool.tar.gz", "Invalid line format:  *tool.tar.gz"),
        (f"{H256}\ttool.tar.gz", f"Invalid line format: {H256}\ttool.tar.gz"),
        ("abc  tool.tar.gz", "Unsupported hash length: 3 hex characters"),
        ("a" * 40 + "  tool", "Unsupported hash length: 40 hex characters"),
        ("a" * 32 + "  tool", "Unsupported hash length: 32 hex characters"),
        ("g" * 64 + "  tool", "Invalid hex characters in hash: " + "g" * 64),
        ("# x  y", "Invalid hex characters in hash: # x"),
        (f"{H256}  ok\nbroken", "Invalid line format: broken"),
    ],
)
def test_error_messages(content: str, message: str) -> None:
    with pytest.raises(FormatError) as err:
        parse_checksums(content)
    assert str(err.value) == message


def test_non_utf8_is_refused() -> None:
    with pytest.raises(FormatError, match="not UTF-8"):
        parse_checksums(H256.encode() + b"  \xff\xfe")


def test_long_lines_are_shortened_in_messages() -> None:
    with pytest.raises(FormatError) as err:
        parse_checksums("x" * 10_000)
    assert str(err.value).startswith("Invalid line format: xxx")
    assert len(str(err.value)) < 300


# --- parser: properties --------------------------------------------------------------------------------
_MESSAGES = (
    "Invalid line format: ",
    "Unsupported hash length: ",
    "Invalid hex characters in hash: ",
    "Empty content: no checksums found",
    "Invalid encoding: ",
)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789abcdefABCDEFgz *#\t\r\n.-_/é"), max_size=300))
def test_arbitrary_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        entries = parse_checksums(text)
    except FormatError as err:
        assert str(err).startswith(_MESSAGES)
        return
    assert entries
    for e in entries:
        assert e.algo in ("Sha256", "Sha512")
        assert len(e.hash_hex) == {"Sha256": 64, "Sha512": 128}[e.algo]
        assert e.hash_hex == e.hash_hex.lower()
        assert e.file_name


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_parse_or_fail_cleanly(data: bytes) -> None:
    try:
        parse_checksums(data)
    except FormatError as err:
        assert str(err).startswith(_MESSAGES)


_names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\n\r"),
    min_size=1,
    max_size=40,
).filter(lambda n: not n.endswith("\r"))


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([32, 64]).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
            _names,
            st.booleans(),
            st.booleans(),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_generated_files_round_trip(rows: list[tuple[bytes, str, bool, bool]]) -> None:
    lines = []
    expected = []
    for digest, name, binary, crlf in rows:
        hex_digest = digest.hex()
        lines.append(hex_digest + (" *" if binary else "  ") + name + ("\r" if crlf else ""))
        algo = "Sha256" if len(digest) == 32 else "Sha512"
        expected.append((algo, hex_digest))
    entries = parse_checksums("\n".join(lines) + "\n")
    assert [(e.algo, e.hash_hex) for e in entries] == expected


# --- URL rules -----------------------------------------------------------------------------------------
def test_common_parent_directory() -> None:
    base = checksum_base_url(
        [
            "https://example.com/releases/v1.0/SHA256SUMS",
            "https://example.com:443/releases/v1.0/SHA512SUMS",
        ]
    )
    assert base == "https://example.com/releases/v1.0/"


@pytest.mark.parametrize(
    "urls",
    [
        ["https://example.com/releases/v1.0/A", "https://example.com/releases/v1.1/B"],
        ["https://example.com/releases/v1.0/A", "https://example.com/releases/v1.0/sub/B"],
        ["https://example.com/releases/v1.0/A", "https://other.com/releases/v1.0/B"],
        ["https://example.com/releases/v1.0/A", "http://example.com/releases/v1.0/B"],
        ["https://example.com/releases/v1.0/A", "https://example.com:8443/releases/v1.0/B"],
    ],
)
def test_origin_and_parent_must_match(urls: list[str]) -> None:
    with pytest.raises(FormatError) as err:
        checksum_base_url(urls)
    assert str(err.value) == "All checksums files must share the same origin and parent directory"


@pytest.mark.parametrize(
    "urls",
    [
        [],
        ["https://example.com/releases/v1.0/"],
        ["https://example.com/releases/v1.0/A?x=1"],
        ["https://example.com/releases/v1.0/A#frag"],
        ["https://example.com/a/A", "https://example.com/a/A"],
        ["ftp://example.com/a/A"],
        ["https://example.com/a/../A"],
    ],
)
def test_bad_checksum_url_sets(urls: list[str]) -> None:
    with pytest.raises(FormatError):
        checksum_base_url(urls)


# --- fetching through the emulator ----------------------------------------------------------------------
@pytest.fixture
def emu(tmp_path: Path) -> Iterator[ForgeEmulator]:
    with ForgeEmulator(tmp_path / "forge") as e:
        yield e


def forges_for(emu: ForgeEmulator) -> Forges:
    return Forges(ForgeConfig(http=HttpConfig(rewrites=parse_rewrites(emu.rewrites()))))


def test_fetch_checksum_files(emu: ForgeEmulator) -> None:
    tool, other = b"tool bytes", b"other bytes"
    s256 = hashlib.sha256
    s512 = hashlib.sha512
    u1 = emu.put_fileserver_file(
        "releases/v1.0/SHA256SUMS",
        f"{s256(tool).hexdigest()}  tool.tar.gz\n{s256(other).hexdigest()}  my tool.zip\n".encode(),
    )
    u2 = emu.put_fileserver_file(
        "releases/v1.0/SHA512SUMS", f"{s512(tool).hexdigest()} *tool.tar.gz\n".encode()
    )
    assets = forges_for(emu).fetch_checksum_files([u1, u2])
    assert assets.mode == "checksums"
    assert assets.url == f"{FILESERVER}/releases/v1.0/"
    assert assets.published_on is None
    by_name = {f.file_name: f for f in assets.files}
    assert set(by_name) == {"tool.tar.gz", "my tool.zip"}
    # The strongest algorithm wins, and the source is the artifact beside the checksum file.
    assert by_name["tool.tar.gz"].algo == "Sha512"
    assert by_name["tool.tar.gz"].hash_hex == s512(tool).hexdigest()
    assert by_name["tool.tar.gz"].source_url == f"{FILESERVER}/releases/v1.0/tool.tar.gz"
    assert by_name["my tool.zip"].source_url == f"{FILESERVER}/releases/v1.0/my%20tool.zip"
    pf = assets.published_files()
    assert {p.file_name for p in pf} == {"tool.tar.gz", "my tool.zip"}


def test_conflicting_checksums_are_refused(emu: ForgeEmulator) -> None:
    u1 = emu.put_fileserver_file("r/A", f"{H256}  t.bin\n".encode())
    u2 = emu.put_fileserver_file("r/B", f"{'c' * 64}  t.bin\n".encode())
    with pytest.raises(FormatError, match="Conflicting checksums for t.bin"):
        forges_for(emu).fetch_checksum_files([u1, u2])


def test_path_like_names_are_refused(emu: ForgeEmulator) -> None:
    u = emu.put_fileserver_file("r/SUMS", f"{H256}  ../etc/passwd\n".encode())
    with pytest.raises(ForgeError, match="Invalid file name"):
        forges_for(emu).fetch_checksum_files([u])


def test_parse_error_from_a_fetched_file(emu: ForgeEmulator) -> None:
    u = emu.put_fileserver_file("r/SUMS", b"# generated by hand\n")
    with pytest.raises(FormatError, match="^Invalid line format: # generated by hand$"):
        forges_for(emu).fetch_checksum_files([u])
