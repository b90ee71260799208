"""Property tests: arbitrary input into every crypto parser yields only our own errors."""

from __future__ import annotations

import base64
import contextlib
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asfaload.crypto import (
    PublicKey,
    SecretKey,
    Signature,
    parse_digest_string,
    parse_signature_file,
    read_signature_file,
)
from asfaload.errors import AsfaloadError

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks enough like our formats to get past the first checks.
_prefixes = st.sampled_from(
    [
        "",
        "minisign:",
        "ed25519:",
        "RW",
        "untrusted comment: ",
        "asfaload-ed25519-secret-key:",
        "trusted comment: ",
        "{",
        "sha512:",
    ]
)
_b64 = st.binary(max_size=200).map(lambda b: base64.b64encode(b).decode())
texts = st.one_of(
    st.text(max_size=300),
    st.tuples(_prefixes, st.text(max_size=200)).map("".join),
    st.tuples(_prefixes, _b64).map("".join),
    st.lists(st.one_of(_b64, st.text(max_size=40), _prefixes), max_size=6).map("\n".join),
)


def _only_ours(fn, *args):
    with contextlib.suppress(AsfaloadError):
        fn(*args)


@FAST
@given(texts)
def test_public_key_parse(text):
    _only_ours(PublicKey.parse, text)
    _only_ours(PublicKey.from_text, text)


@FAST
@given(texts)
def test_signature_parsers(text):
    _only_ours(Signature.from_wire, text)
    _only_ours(Signature.from_wire, text, "ed25519")
    _only_ours(Signature.from_wire, text, "minisign")
    _only_ours(Signature.from_minisign_text, text)
    _only_ours(parse_signature_file, text)
    _only_ours(parse_digest_string, text)


@FAST
@given(st.binary(max_size=200))
def test_minisign_wire_of_arbitrary_box_bytes(data):
    _only_ours(Signature.from_wire, base64.b64encode(data).decode())


@FAST
@given(texts)
def test_secret_key_text(text):
    # Cheap to run: random input never carries a valid checksum-protected blob.
    _only_ours(SecretKey.from_text, text, "pw")
    _only_ours(SecretKey.text_needs_password, text)


@FAST
@given(
    st.one_of(st.binary(max_size=170), st.binary(min_size=152, max_size=152)),
    st.sampled_from([b"Sc", b"\x00\x00", b"Xy"]),
)
def test_minisign_secret_key_blobs(body, kdf):
    # Keep the KDF limits small so hypothesis can hit the decryption path without 1 GiB scrypt.
    blob = bytearray(b"Ed" + kdf + b"B2" + body)
    if len(blob) >= 54:
        blob[38:46] = (32768).to_bytes(8, "little")
        blob[46:54] = (1 << 16).to_bytes(8, "little")
    text = "untrusted comment: k\n" + base64.b64encode(bytes(blob)).decode() + "\n"
    _only_ours(SecretKey.from_text, text, "pw")


@FAST
@given(st.one_of(st.binary(max_size=150), st.binary(min_size=89, max_size=89)))
def test_ed25519_secret_key_blobs(body):
    # Valid header with cheap parameters, arbitrary rest: exercises the AEAD path too.
    blob = bytearray(b"ASFPYKEY\x01" + bytes(32) + b"\x01" + (8).to_bytes(4, "big"))
    blob += (1).to_bytes(4, "big") + (1).to_bytes(4, "big") + body
    text = "asfaload-ed25519-secret-key:" + base64.b64encode(bytes(blob)).decode().rstrip("=")
    _only_ours(SecretKey.from_text, text, "pw")


@FAST
@given(st.one_of(st.binary(max_size=400), texts.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_files_of_arbitrary_bytes(data):
    # The file readers add UTF-8 decoding and size checks in front of the text parsers.
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "f"
        path.write_bytes(data)
        _only_ours(PublicKey.from_file, path)
        _only_ours(SecretKey.load, path, "pw")
        _only_ours(SecretKey.needs_password, path)
        _only_ours(read_signature_file, path)
