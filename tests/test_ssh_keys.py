"""OpenSSH keys as asfaload ed25519 keys, made by the real ``ssh-keygen`` (Debian openssh-client).

A signer's ``~/.ssh/id_ed25519`` signs with ``-K`` (unencrypted or passphrase-protected, the
passphrase through the usual password options); its ``.pub`` line, or the line GitHub publishes
at ``https://github.com/<user>.keys``, is an ``ed25519:`` signer key. Other SSH key types are
refused with one line. The whole server flow is in ``tests/test_e2e_ssh_keys.py``.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest
from asfaload.cli.main import cli
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from asfaload.crypto import PublicKey, SecretKey, sha512, sha512_file
from asfaload.crypto._openssh import MAX_BCRYPT_ROUNDS
from asfaload.errors import (
    KeyFormatError,
    PasswordError,
    UnsupportedAlgorithmError,
    WrongPasswordError,
)
from asfaload.model.signers import SignersFile
from tests.support.ssh import ssh_keygen

PASSPHRASE = "an ssh pass phrase 42"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ssh-keys")
    return {
        "plain": ssh_keygen(d, "id_ed25519", "-t", "ed25519"),
        "protected": ssh_keygen(d, "id_protected", "-t", "ed25519", passphrase=PASSPHRASE),
        "gcm": ssh_keygen(
            d, "id_gcm", "-t", "ed25519", "-Z", "aes256-gcm@openssh.com", passphrase=PASSPHRASE
        ),
        "chacha": ssh_keygen(
            d,
            "id_chacha",
            "-t",
            "ed25519",
            "-Z",
            "chacha20-poly1305@openssh.com",
            passphrase=PASSPHRASE,
        ),
        "rsa": ssh_keygen(d, "id_rsa", "-t", "rsa", "-b", "2048"),
        "ecdsa": ssh_keygen(d, "id_ecdsa", "-t", "ecdsa"),
    }


def pub(path: Path) -> Path:
    return path.with_name(path.name + ".pub")


def key_bytes_of_pub_line(line: str) -> bytes:
    """The 32 key bytes of an ssh-ed25519 line, read with the cryptography library (a reading
    independent of ours)."""
    key = load_ssh_public_key(line.encode())
    assert isinstance(key, Ed25519PublicKey)
    return key.public_bytes_raw()


def run(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, args, env=env or {}, catch_exceptions=False)


def one_error_line(res: Result) -> str:
    assert res.exit_code == 1, res.output
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    return lines[0]


# --- crypto: one loader for every secret key file ----------------------------------------------
def test_unencrypted_openssh_key_signs_as_its_ed25519_key(keys: dict[str, Path]) -> None:
    line = pub(keys["plain"]).read_text()
    assert not SecretKey.needs_password(keys["plain"])
    key = SecretKey.load(keys["plain"], None)
    expected = "ed25519:" + base64.b64encode(key_bytes_of_pub_line(line)).decode()
    assert key.algorithm == "ed25519"
    assert str(key.public_key) == expected
    assert PublicKey.from_file(pub(keys["plain"])) == key.public_key
    assert str(PublicKey.from_input(line)) == expected
    # A plain Ed25519 signature over the digest: the cryptography library, given only the
    # ssh-keygen public line, accepts it.
    digest = sha512(b"release bytes")
    sig = key.sign(digest)
    load_ssh_public_key(line.encode()).verify(sig.signature, digest)  # type: ignore[call-arg,arg-type]
    assert key.public_key.is_valid(digest, sig.to_wire())
    # A password given for a key that has none is ignored, as for minisign -W keys.
    assert SecretKey.load(keys["plain"], "anything").public_key == key.public_key


@pytest.mark.parametrize("which", ["protected", "gcm"])
def test_passphrase_protected_openssh_key(keys: dict[str, Path], which: str) -> None:
    path = keys[which]
    assert SecretKey.needs_password(path)
    key = SecretKey.load(path, PASSPHRASE)
    assert key.public_key == PublicKey.from_file(pub(path))
    with pytest.raises(WrongPasswordError, match="Wrong passphrase"):
        SecretKey.load(path, PASSPHRASE + "x")
    with pytest.raises(PasswordError, match="passphrase"):
        SecretKey.load(path, None)


@pytest.mark.parametrize(
    "which,fragment",
    [
        ("rsa", "Unsupported SSH key type ssh-rsa"),
        ("ecdsa", "Unsupported SSH key type ecdsa-sha2-nistp256"),
        ("chacha", "cipher 'chacha20-poly1305@openssh.com'"),
    ],
)
def test_other_openssh_keys_are_refused(keys: dict[str, Path], which: str, fragment: str) -> None:
    pattern = fragment.replace(".", r"\.")
    if which == "chacha":
        # The header is one we read (it needs a passphrase); its cipher is not.
        assert SecretKey.needs_password(keys[which])
        with pytest.raises(UnsupportedAlgorithmError, match=pattern):
            SecretKey.load(keys[which], PASSPHRASE)
    else:
        # Refused from the header, before anyone is asked for a passphrase.
        with pytest.raises(UnsupportedAlgorithmError, match=pattern):
            SecretKey.needs_password(keys[which])
    if which != "chacha":
        with pytest.raises(UnsupportedAlgorithmError, match=fragment):
            PublicKey.from_file(pub(keys[which]))


def _openssh_private_text(blob: bytes) -> str:
    b64 = base64.b64encode(blob).decode()
    body = "\n".join(b64[i : i + 70] for i in range(0, len(b64), 70))
    return f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n"


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


SK_TYPE = b"sk-ssh-ed25519@openssh.com"
SK_PUB_BLOB = _ssh_string(SK_TYPE) + _ssh_string(b"\x07" * 32) + _ssh_string(b"ssh:")


def test_security_key_types_are_refused(tmp_path: Path) -> None:
    # ssh-keygen makes sk- keys only with a FIDO token, so the two files are written here, in
    # the layout of OpenSSH's PROTOCOL.key and PROTOCOL.u2f.
    line = f"{SK_TYPE.decode()} {base64.b64encode(SK_PUB_BLOB).decode()} me@laptop"
    with pytest.raises(UnsupportedAlgorithmError, match="security-key"):
        PublicKey.from_input(line)
    header = (
        b"openssh-key-v1\x00"
        + _ssh_string(b"none")
        + _ssh_string(b"none")
        + _ssh_string(b"")
        + struct.pack(">I", 1)
        + _ssh_string(SK_PUB_BLOB)
        + _ssh_string(b"\x00" * 64)
    )
    path = tmp_path / "id_ed25519_sk"
    path.write_text(_openssh_private_text(header))
    with pytest.raises(UnsupportedAlgorithmError, match="security-key"):
        SecretKey.load(path, None)


def _with_rounds(text: str, rounds: int) -> str:
    """The same encrypted OpenSSH key asking for ``rounds`` bcrypt rounds."""
    lines = text.strip().splitlines()
    data = bytearray(base64.b64decode("".join(lines[1:-1])))
    pos = len(b"openssh-key-v1\x00")
    for _ in range(2):  # cipher, kdf
        pos += 4 + struct.unpack(">I", data[pos : pos + 4])[0]
    salt_len = struct.unpack(">I", data[pos + 4 : pos + 8])[0]
    at = pos + 8 + salt_len
    data[at : at + 4] = struct.pack(">I", rounds)
    return _openssh_private_text(bytes(data))


def test_bcrypt_cost_is_bounded(keys: dict[str, Path], tmp_path: Path) -> None:
    text = keys["protected"].read_text()
    costly = tmp_path / "costly"
    costly.write_text(_with_rounds(text, MAX_BCRYPT_ROUNDS + 1))
    with pytest.raises(UnsupportedAlgorithmError, match=f"{MAX_BCRYPT_ROUNDS + 1} bcrypt rounds"):
        SecretKey.needs_password(costly)
    # The rewrite itself is sound: the same file with the cost ssh-keygen wrote still loads.
    same = tmp_path / "same"
    same.write_text(_with_rounds(text, 16))
    assert (
        SecretKey.load(same, PASSPHRASE).public_key
        == SecretKey.load(keys["protected"], PASSPHRASE).public_key
    )


def test_wrong_files_given_as_secret_key(keys: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(KeyFormatError, match="OpenSSH public key: give the private key"):
        SecretKey.needs_password(pub(keys["plain"]))
    pem = tmp_path / "rsa.pem"
    pem.write_text("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----\n")
    with pytest.raises(UnsupportedAlgorithmError, match=r"\(RSA PRIVATE KEY\)"):
        SecretKey.needs_password(pem)
    truncated = tmp_path / "truncated"
    truncated.write_text("\n".join(keys["plain"].read_text().splitlines()[:3]))
    with pytest.raises(KeyFormatError, match="truncated"):
        SecretKey.load(truncated, None)


def test_public_key_input_forms(keys: dict[str, Path]) -> None:
    line = pub(keys["plain"]).read_text().strip()
    key_type, b64, _comment = line.split(" ", 2)
    as_github = f"{key_type} {b64}"  # https://github.com/<user>.keys lists no comment
    key = PublicKey.from_input(as_github)
    assert key == PublicKey.from_input(line) == PublicKey.parse(str(key))
    # Key strings of signers files, envelopes and headers stay strict: no SSH lines there.
    with pytest.raises(KeyFormatError):
        PublicKey.parse(as_github)
    # A blob whose inner type is not the line's, or with a key of the wrong length.
    rsa_b64 = pub(keys["rsa"]).read_text().split()[1]
    with pytest.raises(UnsupportedAlgorithmError, match="ssh-rsa"):
        PublicKey.from_input(f"ssh-ed25519 {rsa_b64}")
    short = base64.b64encode(_ssh_string(b"ssh-ed25519") + _ssh_string(b"\x01" * 31)).decode()
    with pytest.raises(KeyFormatError, match="32-byte"):
        PublicKey.from_input(f"ssh-ed25519 {short}")
    with pytest.raises(KeyFormatError, match="base64"):
        PublicKey.from_input("ssh-ed25519 not*base64")


# --- CLI: -K, new-signers-file, verify-sig ----------------------------------------------------------
def test_sign_file_with_ssh_keys_and_verify(keys: dict[str, Path], tmp_path: Path) -> None:
    f = tmp_path / "release.tar.gz"
    f.write_bytes(b"release" * 1000)
    # No password asked for an unencrypted key, even without a terminal.
    res = run(["sign-file", str(f), "-K", str(keys["plain"]), "-o", str(tmp_path / "a.sig")])
    assert res.exit_code == 0, res.output
    ok = run(["verify-sig", str(f), "-s", str(tmp_path / "a.sig"), "-k", str(pub(keys["plain"]))])
    assert ok.exit_code == 0, ok.output
    line = pub(keys["plain"]).read_text().strip()
    ok = run(["verify-sig", str(f), "-s", str(tmp_path / "a.sig"), "-k", line, "--json"])
    assert json.loads(ok.stdout)["public_key"] == str(PublicKey.from_input(line))
    # The passphrase comes through -p, -P and the per-command variable.
    pw_file = tmp_path / "pw"
    pw_file.write_text(PASSPHRASE + "\n")
    for i, (extra, env) in enumerate(
        [
            (["-p", PASSPHRASE], {}),
            (["-P", str(pw_file)], {}),
            ([], {"ASFALOAD_SIGN_FILE_PASSWORD": PASSPHRASE}),
        ]
    ):
        out = tmp_path / f"b{i}.sig"
        res = run(["sign-file", str(f), "-K", str(keys["protected"]), "-o", str(out), *extra], env)
        assert res.exit_code == 0, res.output
        doc = json.loads(out.read_text())
        assert doc["public_key"] == str(PublicKey.from_file(pub(keys["protected"])))
        ed = load_ssh_public_key(pub(keys["protected"]).read_bytes())
        ed.verify(base64.b64decode(doc["signature"]), sha512_file(f))  # type: ignore[call-arg,arg-type]
    wrong = run(["sign-file", str(f), "-K", str(keys["protected"]), "-p", "nope"])
    assert "Wrong passphrase for that OpenSSH key" in one_error_line(wrong)
    missing = run(["sign-file", str(f), "-K", str(keys["protected"])])
    assert "stdin is not a terminal" in one_error_line(missing)


@pytest.mark.parametrize("which", ["rsa", "ecdsa"])
def test_cli_refuses_other_ssh_keys_in_one_line(
    keys: dict[str, Path], tmp_path: Path, which: str
) -> None:
    f = tmp_path / "x"
    f.write_bytes(b"x")
    err = one_error_line(run(["sign-file", str(f), "-K", str(keys[which])]))
    assert "Unsupported SSH key type" in err and "only ssh-ed25519" in err
    line = pub(keys[which]).read_text().strip()
    res = run(["new-signers-file", "-a", line, "-A", "1", "-o", str(tmp_path / "s.json")])
    assert "Invalid key for --artifact-signer: Unsupported SSH key type" in one_error_line(res)
    res = run(
        ["new-signers-file", "--artifact-signer-file", str(pub(keys[which])), "-A", "1"]
        + ["-o", str(tmp_path / "s.json"), "--json"]
    )
    assert res.exit_code == 1
    assert "Unsupported SSH key type" in json.loads(res.stderr)["error"]
    assert not (tmp_path / "s.json").exists()


def test_new_signers_file_takes_ssh_public_keys(keys: dict[str, Path], tmp_path: Path) -> None:
    plain_line = pub(keys["plain"]).read_text().strip()
    github_line = " ".join(pub(keys["protected"]).read_text().split()[:2])
    out = tmp_path / "signers.json"
    res = run(
        ["new-signers-file", "--artifact-signer-file", str(pub(keys["plain"]))]
        + ["--artifact-signer", github_line, "-A", "2", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    signers = SignersFile.parse(out.read_bytes())
    written = [str(k) for g in signers.artifact_groups() for k in g.signers]
    assert sorted(written) == sorted(
        "ed25519:" + base64.b64encode(key_bytes_of_pub_line(line)).decode()
        for line in (plain_line, github_line)
    )
    # The SSH line and the ed25519 string of one key are one signer: a duplicate.
    dup = run(
        ["new-signers-file", "-a", plain_line, "-a", str(PublicKey.from_input(plain_line))]
        + ["-A", "1"]
        + ["-o", str(tmp_path / "dup.json")]
    )
    assert "Duplicate artifact signer key" in one_error_line(dup)
    # One algorithm per file: an SSH key does not sit beside a minisign key.
    mixed = run(
        ["new-signers-file", "-a", plain_line, "-a", "minisign:" + _a_minisign_key(), "-A", "1"]
        + ["-o", str(tmp_path / "mixed.json")]
    )
    assert "all keys must use one algorithm" in one_error_line(mixed)
    assert not (tmp_path / "mixed.json").exists()


def _a_minisign_key() -> str:
    return SecretKey.generate("minisign").public_key.bare
