from __future__ import annotations

import base64
import hashlib
import os
import struct

import pytest

from asfaload.crypto import (
    PRODUCTION_PARAMS,
    TEST_PARAMS,
    Argon2Params,
    PublicKey,
    SecretKey,
    Signature,
    _ed25519,
    _minisign,
    check_password_strength,
    digest_string,
    generate_keypair_files,
    parse_digest_string,
    parse_signature_file,
    password_weakness,
    sha512,
    sha512_file,
    signature_file_text,
    verify_file,
)
from asfaload.errors import (
    AsfaloadError,
    FormatError,
    KeyFormatError,
    NotFoundError,
    PasswordError,
    RefusingToOverwriteError,
    SignatureFormatError,
    SignatureVerificationError,
    UnsupportedAlgorithmError,
    WrongPasswordError,
)

KEY0_PUB = "RWS1kZJeKmeNOI0vl8hjI/YD7UQYxMq5uYkVWfHCHPtm7bOsbgZMovii"
DATA_SHA512 = (
    "77c7ce9a5d86bb386d443bb96390faa120633158699c8844c30b13ab0bf92760"
    "b7e4416aea397db91b4ac0e5dd56b8ef7e4b066162ab1fdc088319ce6defc876"
)
# key_0 (tests/vectors/) signs the content "data" (tc timestamp:1700000000).
VECTOR_WIRE = (
    "dW50cnVzdGVkIGNvbW1lbnQ6IHNpZ25hdHVyZSBmcm9tIHJzaWduIHNlY3JldCBrZXkKUlVTMWtaSmVLbWVOT1BqanhkaE"
    "g3SVh6QlA1RFJEdGRCRzkxU2QyYjFHNkIzY0g5cEZKWlhHamp4clBocTdvdHQ5THlVL3VWTHZvSmQyd1dzMkFBYzk3VVBC"
    "K2FRbTlVT3dvPQp0cnVzdGVkIGNvbW1lbnQ6IHRpbWVzdGFtcDoxNzAwMDAwMDAwCjViYitrUFpNVU5OdVdmaG5weUhxc3"
    "ZWZDhWempxemZPNC8ranRBVWduMjI2Z2hpSUdxRmpXdGZyZExEdWkySkJrUGV0VWg4VldNakZLMERZYjhJbEJRPT0K"
)
AUTH_SHA512 = (
    "b5e4480f03e1461e65afe5fe8ddf7a3abbd3683ebc5bbd2440b168334001f593"
    "ba550a99480eacfdfb5c0e78d4ae732101fd85dc2d5d4c7d1ac75ce4d7c1f4e5"
)
AUTH_WIRE = (
    "dW50cnVzdGVkIGNvbW1lbnQ6IHNpZ25hdHVyZSBmcm9tIHJzaWduIHNlY3JldCBrZXkKUlVTMWtaSmVLbWVOT0MrQXBjZn"
    "lCZDN0ODJsblNjYlllVEdIQVVBa1VTcnR1aW5GSlk2cVFPZTk1OVlLc05xS3dlWGYzVm9kamFJMDk0QU1Da3Fhclp5UTVD"
    "Sjd0Zk9DNkFrPQp0cnVzdGVkIGNvbW1lbnQ6IHRpbWVzdGFtcDoxNzAwMDAwMDAwCkZyQnFtMlYxREpuQ0dwRDJhMVN2TV"
    "UvenRuWHZWa2pBZ3M4R0s2UEZNenhvTjIvS2Q4NmwrUTNOa2YxcVA0WkVpcFQ3NlZCRmVMT25leXI5SVU2SUJnPT0K"
)


# --- hashing --------------------------------------------------------------------------------
def test_sha512_vector_and_digest_string(tmp_path):
    assert sha512(b"data").hex() == DATA_SHA512
    f = tmp_path / "f"
    f.write_bytes(b"data")
    assert sha512_file(f) == sha512(b"data")
    s = digest_string(sha512(b"data"))
    assert s == "sha512:" + DATA_SHA512
    assert parse_digest_string(s.upper().replace("SHA512", "ShA512")) == sha512(b"data")


def test_sha512_of_empty_content_is_allowed(tmp_path):
    # Deliberate divergence from upstream Asfaload: empty files can be hashed.
    f = tmp_path / "empty"
    f.write_bytes(b"")
    assert sha512_file(f) == sha512(b"")


@pytest.mark.parametrize(
    "text,err",
    [
        ("sha512", FormatError),
        ("md5:00", UnsupportedAlgorithmError),
        ("sha512:zz", FormatError),
        ("sha512:" + "00" * 63, FormatError),
        ("sha512:", FormatError),
    ],
)
def test_parse_digest_string_rejects(text, err):
    with pytest.raises(err):
        parse_digest_string(text)


def test_sha512_file_missing(tmp_path):
    with pytest.raises(NotFoundError):
        sha512_file(tmp_path / "nope")


# --- key strings --------------------------------------------------------------------------------
def test_minisign_key_string_forms_are_equal():
    a = PublicKey.parse("minisign:" + KEY0_PUB)
    b = PublicKey.parse(KEY0_PUB)
    assert a == b and hash(a) == hash(b)
    assert str(b) == "minisign:" + KEY0_PUB
    assert a.algorithm == "minisign"
    assert a.keynum == base64.b64decode(KEY0_PUB)[2:10]
    assert len(a.key_bytes) == 32
    assert a.key_id == "388D672A5E9291B5"


def test_ed25519_key_string_padded_and_unpadded_are_equal():
    raw = bytes(range(32))
    padded = "ed25519:" + base64.b64encode(raw).decode()
    pk = PublicKey.parse(padded)
    assert str(pk) == padded
    assert PublicKey.parse(padded.rstrip("=")) == pk
    assert pk.key_bytes == raw and pk.keynum == b""
    assert pk != PublicKey.parse("minisign:" + KEY0_PUB)


@pytest.mark.parametrize(
    "text,err",
    [
        ("", KeyFormatError),
        ("minisign:" + KEY0_PUB[:-1], KeyFormatError),
        ("minisign: " + KEY0_PUB[1:], KeyFormatError),
        ("minisign:" + KEY0_PUB + "\n", KeyFormatError),
        ("ed25519:" + base64.b64encode(bytes(31)).decode(), KeyFormatError),
        ("ed25519:!!!!", KeyFormatError),
        ("rsa:AAAA", UnsupportedAlgorithmError),
        ("RWS1", KeyFormatError),
    ],
)
def test_key_string_rejects(text, err):
    with pytest.raises(err):
        PublicKey.parse(text)


def test_pub_file_forms(tmp_path, reference_keys_dir):
    pk = PublicKey.from_file(reference_keys_dir / "key_0.pub")
    assert str(pk) == "minisign:" + KEY0_PUB
    assert (
        pk.file_text() == f"untrusted comment: minisign public key: 388D672A5E9291B5\n{KEY0_PUB}\n"
    )
    f = tmp_path / "k.pub"
    f.write_text("minisign:" + KEY0_PUB + "\n")
    assert PublicKey.from_file(f) == pk
    f.write_text("untrusted comment: x\n")
    with pytest.raises(KeyFormatError):
        PublicKey.from_file(f)
    with pytest.raises(NotFoundError):
        PublicKey.from_file(tmp_path / "missing.pub")
    with pytest.raises(KeyFormatError):
        PublicKey.from_file(tmp_path)


# --- minisign keys and signatures --------------------------------------------------------------------
def test_reference_vector_verifies():
    pk = PublicKey.parse(KEY0_PUB)
    pk.verify(sha512(b"data"), VECTOR_WIRE)
    pk.verify(bytes.fromhex(AUTH_SHA512), AUTH_WIRE)
    sig = Signature.from_wire(VECTOR_WIRE)
    assert sig.algorithm == "minisign" and sig.to_wire() == VECTOR_WIRE
    with pytest.raises(SignatureVerificationError):
        pk.verify(sha512(b"other"), VECTOR_WIRE)
    with pytest.raises(SignatureVerificationError):
        pk.verify(bytes.fromhex(AUTH_SHA512), VECTOR_WIRE)


def test_tampered_trusted_comment_is_rejected():
    text = base64.b64decode(VECTOR_WIRE).decode().replace("1700000000", "1700000001")
    sig = Signature.from_minisign_text(text)
    with pytest.raises(SignatureVerificationError, match="Trusted comment"):
        PublicKey.parse(KEY0_PUB).verify(sha512(b"data"), sig)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_reference_fixture_keys_load_and_sign(reference_keys_dir, n):
    sk = SecretKey.load(reference_keys_dir / f"key_{n}", "password")
    pk = PublicKey.from_file(reference_keys_dir / f"key_{n}.pub")
    assert sk.public_key == pk
    digest = sha512(b"hello %d" % n)
    sig = sk.sign(digest)
    pk.verify(digest, sig.to_wire())
    assert "password" not in repr(sk) and sk.seed.hex() not in repr(sk)


def test_reference_key_wrong_password(reference_keys_dir):
    with pytest.raises(WrongPasswordError, match="Wrong password"):
        SecretKey.load(reference_keys_dir / "key_0", "passw0rd")
    with pytest.raises(PasswordError):
        SecretKey.load(reference_keys_dir / "key_0", None)


def test_signature_key_mismatch_is_reported(reference_keys_dir):
    pk1 = PublicKey.from_file(reference_keys_dir / "key_1.pub")
    with pytest.raises(SignatureVerificationError, match="key id"):
        pk1.verify(sha512(b"data"), VECTOR_WIRE)
    ed = SecretKey.generate("ed25519")
    with pytest.raises(SignatureVerificationError):
        ed.public_key.verify(sha512(b"data"), VECTOR_WIRE)


def test_minisign_roundtrip_generated_key(tmp_path):
    sk = SecretKey.generate("minisign")
    path = tmp_path / "k"
    sk.save(path, "a password")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert path.read_text().startswith("untrusted comment: ")
    loaded = SecretKey.load(path, "a password")
    assert loaded.public_key == sk.public_key
    with pytest.raises(RefusingToOverwriteError):
        sk.save(path, "a password")


def _minisign_blob(reference_keys_dir):
    lines = (reference_keys_dir / "key_0").read_text().split("\n")
    return lines, bytearray(base64.b64decode(lines[1]))


def _with_blob(lines, blob):
    return f"{lines[0]}\n{base64.b64encode(bytes(blob)).decode()}\n"


def test_minisign_secret_key_corruptions(reference_keys_dir):
    lines, blob = _minisign_blob(reference_keys_dir)
    # Truncated.
    with pytest.raises(KeyFormatError, match="length"):
        SecretKey.from_text(_with_blob(lines, blob[:-1]), "password")
    # Flipped bit in the encrypted seed: checksum fails, reported as a wrong password.
    bad = bytearray(blob)
    bad[70] ^= 1
    with pytest.raises(WrongPasswordError):
        SecretKey.from_text(_with_blob(lines, bad), "password")
    # Unknown KDF and key algorithm.
    bad = bytearray(blob)
    bad[2:4] = b"Xx"
    with pytest.raises(UnsupportedAlgorithmError):
        SecretKey.from_text(_with_blob(lines, bad), "password")
    bad = bytearray(blob)
    bad[0:2] = b"Zz"
    with pytest.raises(UnsupportedAlgorithmError):
        SecretKey.from_text(_with_blob(lines, bad), "password")
    # scrypt limits: more than 1 GiB of memory is refused before any work is done.
    bad = bytearray(blob)
    bad[46:54] = struct.pack("<Q", (1 << 30) + 1)
    with pytest.raises(KeyFormatError, match="1 GiB"):
        SecretKey.from_text(_with_blob(lines, bad), "password")
    bad = bytearray(blob)
    bad[38:46] = struct.pack("<Q", 1 << 40)
    with pytest.raises(KeyFormatError, match="limits"):
        SecretKey.from_text(_with_blob(lines, bad), "password")
    # Garbage.
    with pytest.raises(KeyFormatError):
        SecretKey.from_text("untrusted comment: x\nnot base64!\n", "password")
    with pytest.raises(KeyFormatError):
        SecretKey.from_text("hello", "password")


def test_unencrypted_minisign_key_needs_no_password(tmp_path):
    # minisign -W writes kdf "\0\0" and an unencrypted secret; we load it without a password.
    sk = SecretKey.generate("minisign")
    inner = sk.keynum + sk.seed + sk.public_key.key_bytes
    chk = hashlib.blake2b(b"Ed" + inner, digest_size=32).digest()
    blob = b"Ed\x00\x00B2" + bytes(32) + bytes(16) + inner + chk
    text = "untrusted comment: minisign secret key\n" + base64.b64encode(blob).decode() + "\n"
    path = tmp_path / "k"
    path.write_text(text)
    assert not SecretKey.needs_password(path)
    assert SecretKey.load(path, None).public_key == sk.public_key


def test_legacy_signature_refused_on_wire_accepted_in_file(reference_keys_dir):
    sk = SecretKey.load(reference_keys_dir / "key_0", "password")
    digest = sha512(b"data")
    # Build a legacy "Ed" box (signature over the message itself) by hand.
    sig = _ed25519.sign(sk.seed, digest)
    tc = "timestamp:1"
    gsig = _ed25519.sign(sk.seed, sig + tc.encode())
    text = _minisign.signature_box_text(sk.keynum, sig, tc, gsig).replace(
        base64.b64encode(b"ED" + sk.keynum + sig).decode(),
        base64.b64encode(b"Ed" + sk.keynum + sig).decode(),
    )
    wire = base64.b64encode(text.encode()).decode()
    with pytest.raises(SignatureFormatError, match="Legacy"):
        Signature.from_wire(wire)
    sf = parse_signature_file(text)
    assert sf.signature.legacy
    sk.public_key.verify(digest, sf.signature)


# --- ed25519 --------------------------------------------------------------------------------------------
def test_ed25519_roundtrip_cheap_params():
    sk = SecretKey.generate("ed25519")
    text = sk.to_text("pw", kdf=TEST_PARAMS)
    assert text.startswith("asfaload-ed25519-secret-key:") and text.endswith("\n")
    loaded = SecretKey.from_text(text, "pw")
    assert loaded.public_key == sk.public_key
    digest = sha512(b"x")
    sig = loaded.sign(digest)
    wire = sig.to_wire()
    assert len(wire) == 88
    sk.public_key.verify(digest, wire)
    sk.public_key.verify(digest, wire.rstrip("="))
    with pytest.raises(SignatureVerificationError):
        sk.public_key.verify(sha512(b"y"), wire)
    with pytest.raises(WrongPasswordError):
        SecretKey.from_text(text, "wrong")


def test_ed25519_production_params(tmp_path):
    assert Argon2Params(65536, 3, 1) == PRODUCTION_PARAMS
    sk = SecretKey.generate("ed25519")
    path = tmp_path / "k"
    sk.save(path, "production password")
    blob = base64.b64decode(path.read_text().split(":", 1)[1].strip() + "=")
    assert struct.unpack(">III", blob[42:54]) == (65536, 3, 1)
    assert blob[:8] == b"ASFPYKEY"
    assert SecretKey.load(path, "production password").public_key == sk.public_key


def test_ed25519_env_params(monkeypatch):
    monkeypatch.setenv("ASFALOAD_INSECURE_TEST_KDF_PARAMS", "8,1,1")
    text = SecretKey.generate("ed25519").to_text("pw")
    blob = base64.b64decode(text.split(":", 1)[1].strip() + "=")
    assert struct.unpack(">III", blob[42:54]) == (8, 1, 1)


def _ed_blob(text):
    return bytearray(base64.b64decode(text.split(":", 1)[1].strip() + "="))


def _ed_text(blob):
    return (
        "asfaload-ed25519-secret-key:" + base64.b64encode(bytes(blob)).decode().rstrip("=") + "\n"
    )


@pytest.mark.parametrize(
    "offset,value,err",
    [
        (0, b"X", KeyFormatError),  # magic
        (8, b"\x02", UnsupportedAlgorithmError),  # version
        (41, b"\x02", UnsupportedAlgorithmError),  # kdf
        (70, b"\x02", UnsupportedAlgorithmError),  # aead
        (42, struct.pack(">I", 0), KeyFormatError),  # m = 0
        (42, struct.pack(">I", 1_048_577), KeyFormatError),  # m too big
        (46, struct.pack(">I", 1001), KeyFormatError),  # t too big
        (50, struct.pack(">I", 256), KeyFormatError),  # p too big
        (50, struct.pack(">I", 2), UnsupportedAlgorithmError),  # p unsupported by libsodium
        (9, b"\x00", WrongPasswordError),  # public key is authenticated data
        (100, b"\x00", WrongPasswordError),  # ciphertext tampered
    ],
)
def test_ed25519_secret_key_corruptions(offset, value, err):
    text = SecretKey.generate("ed25519").to_text("pw", kdf=TEST_PARAMS)
    blob = _ed_blob(text)
    if blob[offset : offset + len(value)] == value:
        value = bytes(b ^ 0xFF for b in value)
    blob[offset : offset + len(value)] = value
    with pytest.raises(err):
        SecretKey.from_text(_ed_text(blob), "pw")


def test_ed25519_truncated_and_padded():
    text = SecretKey.generate("ed25519").to_text("pw", kdf=TEST_PARAMS)
    with pytest.raises(KeyFormatError):
        SecretKey.from_text(text[:-10] + "\n", "pw")
    with pytest.raises(PasswordError):
        SecretKey.from_text(text, None)


def test_ed25519_wire_rejects():
    with pytest.raises(SignatureFormatError):
        Signature.from_wire(base64.b64encode(bytes(63)).decode(), "ed25519")
    with pytest.raises(UnsupportedAlgorithmError):
        Signature.from_wire("AAAA", "rsa")


# --- key pair files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["minisign", "ed25519"])
def test_generate_keypair_files(tmp_path, algorithm, cheap_kdf):
    out = tmp_path / "a" / "b"
    pub, sec = generate_keypair_files("mykey", out, algorithm, "pw")
    assert pub == out / "mykey.pub" and sec == out / "mykey"
    pk = PublicKey.from_file(pub)
    assert SecretKey.load(sec, "pw").public_key == pk
    assert pk.algorithm == algorithm
    with pytest.raises(RefusingToOverwriteError):
        generate_keypair_files("mykey", out, algorithm, "pw")
    assert PublicKey.from_file(pub) == pk  # untouched


def test_generate_keypair_refuses_when_only_pub_exists(tmp_path):
    (tmp_path / "k.pub").write_text("x")
    with pytest.raises(RefusingToOverwriteError):
        generate_keypair_files("k", tmp_path, "minisign", "pw")
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize("name", ["", "a/b", "..", "."])
def test_generate_keypair_rejects_bad_names(tmp_path, name):
    with pytest.raises(FormatError):
        generate_keypair_files(name, tmp_path, "minisign", "pw")


def test_generate_keypair_unknown_algorithm(tmp_path):
    with pytest.raises(UnsupportedAlgorithmError):
        generate_keypair_files("k", tmp_path, "rsa", "pw")
    assert os.listdir(tmp_path) == []


def test_empty_password_refused(tmp_path):
    with pytest.raises(PasswordError):
        generate_keypair_files("k", tmp_path, "minisign", "")
    assert os.listdir(tmp_path) == []


# --- signature files ---------------------------------------------------------------------------------------
def test_signature_file_forms(tmp_path, reference_keys_dir):
    f = tmp_path / "artifact"
    f.write_bytes(b"artifact bytes")
    digest = sha512_file(f)
    for key in (
        SecretKey.load(reference_keys_dir / "key_0", "password"),
        SecretKey.generate("ed25519"),
    ):
        sig = key.sign(digest)
        text = signature_file_text(sig, key.public_key)
        sf = parse_signature_file(text)
        assert verify_file(f, sf, key.public_key) == "sha512-digest"
        # A bare wire string is a signature file too.
        assert verify_file(f, parse_signature_file(sig.to_wire() + "\n"), key.public_key)
        other = tmp_path / "other"
        other.write_bytes(b"other bytes")
        with pytest.raises(SignatureVerificationError):
            verify_file(other, sf, key.public_key)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{}",
        "[1]",
        '{"format":"rsa","signature":"x"}',
        "a\nb\n",
        "{not json",
        "untrusted comment: x\n",
    ],
)
def test_signature_file_rejects(text):
    with pytest.raises(AsfaloadError):
        parse_signature_file(text)


# --- password strength ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pw",
    [
        "short",
        "password1234",
        "Password123!",
        "aaaaaaaaaaaaaaaa",
        "123456789012",
        "qwertyuiopasdf",
        "abcabcabcabcabc",
    ],
)
def test_weak_passwords_rejected(pw):
    assert password_weakness(pw) is not None
    with pytest.raises(PasswordError, match="too weak"):
        check_password_strength(pw)


@pytest.mark.parametrize(
    "pw", ["correct horse battery staple", "Tr0ub4dor&3-xylophone", "k7#Qm!v2Lp9z"]
)
def test_strong_passwords_accepted(pw):
    assert password_weakness(pw) is None
    check_password_strength(pw)
