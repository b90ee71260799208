"""Signatures envelope: parsing rules, duplicates, determinism, parser robustness."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asfaload.crypto import PublicKey, SecretKey, Signature, sha512
from asfaload.errors import AsfaloadError, ConflictError, FormatError
from asfaload.model import SignaturesFile

DIGEST = sha512(b"data")
MS = [SecretKey.generate("minisign") for _ in range(3)]
ED = [SecretKey.generate("ed25519") for _ in range(2)]
# key_0 (tests/vectors/) and its signature of `data`, in JSON wire form.
KEY0 = PublicKey.parse("RWS1kZJeKmeNOI0vl8hjI/YD7UQYxMq5uYkVWfHCHPtm7bOsbgZMovii")
KEY0_SIG = (
    "dW50cnVzdGVkIGNvbW1lbnQ6IHNpZ25hdHVyZSBmcm9tIHJzaWduIHNlY3JldCBrZXkKUlVTMWtaSmVLbWVOT1Bq"
    "anhkaEg3SVh6QlA1RFJEdGRCRzkxU2QyYjFHNkIzY0g5cEZKWlhHamp4clBocTdvdHQ5THlVL3VWTHZvSmQyd1dz"
    "MkFBYzk3VVBCK2FRbTlVT3dvPQp0cnVzdGVkIGNvbW1lbnQ6IHRpbWVzdGFtcDoxNzAwMDAwMDAwCjViYitrUFpN"
    "VU5OdVdmaG5weUhxc3ZWZDhWempxemZPNC8ranRBVWduMjI2Z2hpSUdxRmpXdGZyZExEdWkySkJrUGV0VWg4VldN"
    "akZLMERZYjhJbEJRPT0K"
)


def entry(sk: SecretKey) -> tuple[str, dict[str, str]]:
    pk = sk.public_key
    return str(pk), {"format": pk.algorithm, "signature": sk.sign(DIGEST).to_wire()}


def envelope(*sks: SecretKey) -> dict[str, Any]:
    return {"entries": dict(entry(sk) for sk in sks)}


def test_reference_vector_envelope_parses_and_verifies():
    raw = json.dumps(
        {"entries": {str(KEY0): {"format": "minisign", "signature": KEY0_SIG}}}
    ).encode()
    sigs = SignaturesFile.from_bytes(raw)
    assert list(sigs) == [KEY0]
    KEY0.verify(DIGEST, sigs[KEY0])
    # The wire form survives a round trip byte for byte (signed trusted comment inside).
    assert json.loads(sigs.to_bytes())["entries"][str(KEY0)]["signature"] == KEY0_SIG


@pytest.mark.parametrize("raw", [b"", b"  \n\t ", b"{}", b'{"entries": {}}', b"\n{}\n"])
def test_empty_forms_read_as_empty(raw):
    sigs = SignaturesFile.from_bytes(raw)
    assert sigs.is_empty() and len(sigs) == 0
    assert sigs.to_bytes() == b'{\n  "entries": {}\n}\n'


def test_round_trip_and_deterministic_bytes():
    doc = envelope(*MS)
    a = SignaturesFile.from_dict(doc)
    b = SignaturesFile.from_dict({"entries": dict(reversed(list(doc["entries"].items())))})
    assert a.keys() == {sk.public_key for sk in MS}
    assert a.to_bytes() == SignaturesFile.from_bytes(a.to_bytes()).to_bytes()
    keys = list(json.loads(a.to_bytes())["entries"])
    assert keys == sorted(keys)
    for sk in MS:
        sk.public_key.verify(DIGEST, a[sk.public_key])
    assert a.to_bytes().endswith(b"}\n")
    # Insertion order does not leak into the bytes.
    assert a.to_bytes() == b.to_bytes()


def test_with_entry_adds_and_refuses_a_duplicate_key():
    sigs = SignaturesFile.empty()
    s1 = sigs.with_entry(MS[0].public_key, MS[0].sign(DIGEST))
    assert sigs.is_empty() and len(s1) == 1
    s2 = s1.with_entry(MS[1].public_key, MS[1].sign(DIGEST))
    assert s2.keys() == {MS[0].public_key, MS[1].public_key}
    with pytest.raises(ConflictError) as exc_info:
        s2.with_entry(MS[0].public_key, MS[0].sign(sha512(b"other")))
    assert exc_info.value.http_status == 409
    # The bare and prefixed spellings of a key are the same key.
    k0 = SignaturesFile.empty().with_entry(KEY0, Signature.from_wire(KEY0_SIG))
    with pytest.raises(ConflictError):
        k0.with_entry(PublicKey.parse("minisign:" + KEY0.bare), Signature.from_wire(KEY0_SIG))


def test_with_entry_refuses_a_signature_of_another_algorithm():
    with pytest.raises(FormatError, match="cannot belong"):
        SignaturesFile.empty().with_entry(MS[0].public_key, ED[0].sign(DIGEST))


def test_unknown_fields_are_preserved():
    doc = envelope(ED[0])
    doc["comment"] = {"a": [1]}
    next(iter(doc["entries"].values()))["note"] = "x"
    sigs = SignaturesFile.from_dict(doc)
    assert sigs.unrecognized == {"comment": {"a": [1]}}
    out = sigs.to_dict()
    assert out == doc
    # with_entry keeps them.
    more = sigs.with_entry(ED[1].public_key, ED[1].sign(DIGEST))
    assert more.to_dict()["comment"] == {"a": [1]}
    assert more.to_dict()["entries"][str(ED[0].public_key)]["note"] == "x"


INVALID = [
    ("top level array", None, b"[]", "must be a JSON object"),
    (
        "flat legacy form",
        None,
        json.dumps({str(KEY0): KEY0_SIG}).encode(),
        "missing the field 'entries'",
    ),
    ("entries array", None, b'{"entries": []}', "must be a JSON object"),
    ("bad key", None, b'{"entries": {"nope": {"format": "minisign", "signature": "x"}}}', "'nope'"),
    (
        "bad signature",
        None,
        json.dumps({"entries": {str(KEY0): {"format": "minisign", "signature": "AAAA"}}}).encode(),
        "Invalid signatures file",
    ),
    (
        "format mismatch",
        None,
        json.dumps({"entries": {str(KEY0): {"format": "ed25519", "signature": KEY0_SIG}}}).encode(),
        "does not match",
    ),
    (
        "format missing",
        None,
        json.dumps({"entries": {str(KEY0): {"signature": KEY0_SIG}}}).encode(),
        "'format'",
    ),
    (
        "signature missing",
        None,
        json.dumps({"entries": {str(KEY0): {"format": "minisign"}}}).encode(),
        "'signature'",
    ),
    (
        "signature not a string",
        None,
        json.dumps({"entries": {str(KEY0): {"format": "minisign", "signature": 1}}}).encode(),
        "must be a string",
    ),
    (
        "same key spelled twice",
        None,
        json.dumps(
            {
                "entries": {
                    str(KEY0): {"format": "minisign", "signature": KEY0_SIG},
                    KEY0.bare: {"format": "minisign", "signature": KEY0_SIG},
                }
            }
        ).encode(),
        "appears twice",
    ),
    (
        "ed25519 key with a minisign signature",
        None,
        json.dumps(
            {"entries": {str(ED[0].public_key): {"format": "ed25519", "signature": KEY0_SIG}}}
        ).encode(),
        "Invalid signatures file",
    ),
    ("invalid utf-8", None, b'{"entries": {"\xff": 1}}', "not valid UTF-8"),
    ("duplicate JSON key", None, b'{"entries": {}, "entries": {}}', "duplicate key"),
]


@pytest.mark.parametrize("name,_unused,raw,message", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_envelopes_are_rejected(name, _unused, raw, message):
    with pytest.raises(FormatError) as exc_info:
        SignaturesFile.from_bytes(raw)
    assert message in str(exc_info.value)


def test_ed25519_signature_with_minisign_format_is_rejected():
    pk = ED[0].public_key
    wire = ED[0].sign(DIGEST).to_wire()
    doc = {"entries": {str(pk): {"format": "minisign", "signature": wire}}}
    with pytest.raises(FormatError, match="does not match"):
        SignaturesFile.from_dict(doc)
    assert base64.b64decode(
        wire + "=" * (-len(wire) % 4)
    )  # a real signature, refused only for format


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_our_errors(raw):
    with contextlib.suppress(AsfaloadError):
        SignaturesFile.from_bytes(raw)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_arbitrary_json_raise_only_our_errors(value):
    with contextlib.suppress(AsfaloadError):
        SignaturesFile.from_dict(value)
    with contextlib.suppress(AsfaloadError):
        SignaturesFile.from_dict({"entries": value})
    with contextlib.suppress(AsfaloadError):
        SignaturesFile.from_dict({"entries": {str(KEY0): value}})
    with contextlib.suppress(AsfaloadError):
        SignaturesFile.from_dict(
            {"entries": {str(KEY0): {"format": "minisign", "signature": value}}}
        )
