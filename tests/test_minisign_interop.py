"""Interoperability with the real ``minisign`` tool (Debian package, 0.11)."""

from __future__ import annotations

import pytest

from asfaload.crypto import (
    COVERS_CONTENT,
    COVERS_DIGEST,
    PublicKey,
    SecretKey,
    generate_keypair_files,
    read_signature_file,
    sha512_file,
    verify_file,
)
from asfaload.errors import SignatureVerificationError


def test_our_key_signs_digest_minisign_accepts(tmp_path, run_minisign):
    pub, sec = generate_keypair_files("ours", tmp_path, "minisign", "interop password 1")
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(b"release bytes\n" * 100)
    digest = sha512_file(artifact)
    digest_file = tmp_path / "artifact.sha512"
    digest_file.write_bytes(digest)
    sig = SecretKey.load(sec, "interop password 1").sign(digest)
    sig_file = tmp_path / "artifact.sha512.minisig"
    assert sig.box is not None
    sig_file.write_text(sig.box.text)
    pk = PublicKey.from_file(pub)
    res = run_minisign("-V", "-P", pk.bare, "-m", str(digest_file), "-x", str(sig_file))
    assert res.returncode == 0, res.stderr
    assert "Signature and comment signature verified" in res.stdout
    # The .pub file we write is read by minisign too; -H demands a prehashed signature.
    res = run_minisign("-V", "-H", "-p", str(pub), "-m", str(digest_file), "-x", str(sig_file))
    assert res.returncode == 0, res.stderr
    # And minisign rejects it for other content.
    digest_file.write_bytes(bytes(64))
    res = run_minisign("-V", "-P", pk.bare, "-m", str(digest_file), "-x", str(sig_file))
    assert res.returncode != 0


def test_our_secret_key_usable_by_minisign(tmp_path, run_minisign):
    # minisign reads our secret key file too (same layout, scrypt parameters stored in it).
    pub, sec = generate_keypair_files("ours", tmp_path, "minisign", "interop password 2")
    msg = tmp_path / "m"
    msg.write_bytes(b"hello")
    res = run_minisign("-S", "-s", str(sec), "-m", str(msg), password="interop password 2")
    assert res.returncode == 0, res.stderr
    sf = read_signature_file(tmp_path / "m.minisig")
    assert verify_file(msg, sf, PublicKey.from_file(pub)) == COVERS_CONTENT


# A password-protected `minisign -G` key (scrypt N=2^20, 1 GiB) is exercised end to end in
# tests/test_cli_keys.py::test_verify_with_minisign_generated_key; loading it costs seconds,
# so it is done once.


def test_minisign_unencrypted_key_loads(minisign_tool_unencrypted_keypair):
    pub, sec = minisign_tool_unencrypted_keypair
    assert not SecretKey.needs_password(sec)
    assert SecretKey.load(sec, None).public_key == PublicKey.from_file(pub)


@pytest.mark.parametrize("legacy", [False, True])
def test_minisign_tool_signatures_verify(
    tmp_path, minisign_tool_unencrypted_keypair, run_minisign, legacy
):
    # Signed by the tool itself over the file content (not our digest), prehashed or legacy.
    pub, sec = minisign_tool_unencrypted_keypair
    password = None
    artifact = tmp_path / "file.txt"
    artifact.write_bytes(b"signed by minisign itself\n")
    args = ["-S", "-s", str(sec), "-m", str(artifact)] + (["-l"] if legacy else [])
    res = run_minisign(*args, password=password)
    assert res.returncode == 0, res.stderr
    sf = read_signature_file(tmp_path / "file.txt.minisig")
    assert sf.signature.legacy is legacy
    pk = PublicKey.from_file(pub)
    assert verify_file(artifact, sf, pk) == COVERS_CONTENT
    artifact.write_bytes(b"tampered\n")
    with pytest.raises(SignatureVerificationError):
        verify_file(artifact, sf, pk)


def test_minisign_signature_of_digest_file_verifies_as_ours(
    tmp_path, minisign_tool_unencrypted_keypair, run_minisign
):
    # minisign -S over a file holding the 64 digest bytes is exactly our signature scheme.
    pub, sec = minisign_tool_unencrypted_keypair
    password = None
    artifact = tmp_path / "x"
    artifact.write_bytes(b"x" * 10)
    digest_file = tmp_path / "x.digest"
    digest_file.write_bytes(sha512_file(artifact))
    res = run_minisign("-S", "-s", str(sec), "-m", str(digest_file), password=password)
    assert res.returncode == 0, res.stderr
    sf = read_signature_file(tmp_path / "x.digest.minisig")
    pk = PublicKey.from_file(pub)
    pk.verify(sha512_file(artifact), sf.signature.to_wire())
    assert verify_file(artifact, sf, pk) == COVERS_DIGEST
