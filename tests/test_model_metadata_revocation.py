"""Signers metadata (Forge form) and revocation document models."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from asfaload.crypto import PublicKey, SecretKey, sha512
from asfaload.errors import FormatError
from asfaload.model import RevocationDocument, SignersMetadata

CONTENT = b'{"version": 1}\n'
HASH = hashlib.sha512(CONTENT).hexdigest()
KEY0 = "RWS1kZJeKmeNOI0vl8hjI/YD7UQYxMq5uYkVWfHCHPtm7bOsbgZMovii"


def meta_doc() -> dict[str, Any]:
    return {
        "data": {
            "Forge": {
                "kind": "Github",
                "url": "https://github.com/acme/tool/blob/main/asfaload.signers/index.json",
                "verified_content": {
                    "retrieval_url": "https://raw.githubusercontent.com/acme/tool/main/asfaload.signers/index.json",
                    "content_hash": HASH,
                },
                "retrieved_at": "2026-01-01T00:00:00Z",
            }
        }
    }


def test_metadata_parse_keeps_raw_and_fields():
    raw = b"\n" + json.dumps(meta_doc()).encode() + b"   "
    m = SignersMetadata.from_bytes(raw)
    assert m.raw == raw
    assert m.kind == "Github"
    assert m.retrieval_url.startswith("https://raw.githubusercontent.com/")
    assert m.content_hash == HASH
    assert m.retrieved_at_dt == datetime(2026, 1, 1, tzinfo=UTC)
    assert m.matches(CONTENT) and not m.matches(CONTENT + b" ")
    assert m.to_dict() == meta_doc()


def test_metadata_create_and_round_trip():
    m = SignersMetadata.create(
        "FileServer", "http://h/p/s.json", "http://h/p/s.json", retrieved_at=0, content=CONTENT
    )
    assert m.content_hash == HASH and m.retrieved_at == "1970-01-01T00:00:00Z"
    assert m.raw == m.to_bytes() and m.raw.endswith(b"}\n")
    assert SignersMetadata.from_bytes(m.raw) == m
    with pytest.raises(FormatError, match="exactly one"):
        SignersMetadata.create("Github", "u", "r", retrieved_at=0)


def test_metadata_unknown_fields_preserved_at_every_level():
    d = meta_doc()
    d["x"] = 1
    d["data"]["y"] = [2]
    d["data"]["Forge"]["z"] = {"a": None}
    d["data"]["Forge"]["verified_content"]["w"] = "v"
    assert SignersMetadata.from_dict(d).to_dict() == d


def _meta_with(fn) -> dict[str, Any]:
    d = meta_doc()
    fn(d["data"]["Forge"])
    return d


META_INVALID = [
    ("kind unknown", _meta_with(lambda f: f.update(kind="Bitbucket")), "unknown forge kind"),
    ("kind missing", _meta_with(lambda f: f.pop("kind")), "'kind'"),
    ("url empty", _meta_with(lambda f: f.update(url="")), "url must not be empty"),
    ("no verified_content", _meta_with(lambda f: f.pop("verified_content")), "verified_content"),
    (
        "hash upper case",
        _meta_with(lambda f: f["verified_content"].update(content_hash=HASH.upper())),
        "content_hash",
    ),
    (
        "hash short",
        _meta_with(lambda f: f["verified_content"].update(content_hash="ab")),
        "content_hash",
    ),
    ("bad time", _meta_with(lambda f: f.update(retrieved_at="2026-01-01")), "retrieved_at"),
    ("Cli origin", {"data": {"Cli": {"submitter": "x"}}}, "'Forge'"),
    ("data not object", {"data": []}, "JSON object"),
]


@pytest.mark.parametrize("name,d,message", META_INVALID, ids=[c[0] for c in META_INVALID])
def test_metadata_invalid(name, d, message):
    with pytest.raises(FormatError) as exc_info:
        SignersMetadata.from_bytes(json.dumps(d).encode())
    assert message in str(exc_info.value)


# --- revocation ----------------------------------------------------------------------------------
SUBJECT = sha512(b"the artifact")


def rev_doc() -> dict[str, Any]:
    return {
        "timestamp": "2025-03-15T10:30:00Z",
        "subject_digest": "sha512:" + SUBJECT.hex(),
        "initiator": "minisign:" + KEY0,
    }


def test_revocation_parse_keeps_raw_and_fields():
    raw = json.dumps(rev_doc(), indent=2).encode()  # no trailing newline: kept as is
    r = RevocationDocument.from_bytes(raw)
    assert r.raw == raw
    assert r.subject_digest == SUBJECT
    assert r.subject_digest_string == "sha512:" + SUBJECT.hex()
    assert r.initiator == PublicKey.parse(KEY0)
    assert r.timestamp_dt == datetime(2025, 3, 15, 10, 30, tzinfo=UTC)
    assert r.reason is None
    assert r.to_dict() == rev_doc()


def test_revocation_accepts_upper_case_digest_integer_timestamp_reason_and_extras():
    d = rev_doc()
    d["subject_digest"] = "SHA512:" + SUBJECT.hex().upper()
    d["timestamp"] = 1712860800
    d["reason"] = "compromised"
    d["ticket"] = 42
    r = RevocationDocument.from_dict(d)
    assert r.subject_digest == SUBJECT
    assert r.timestamp == 1712860800
    assert r.timestamp_dt == datetime(2024, 4, 11, 18, 40, tzinfo=UTC)
    assert r.reason == "compromised"
    out = r.to_dict()
    assert out["ticket"] == 42 and out["reason"] == "compromised"
    assert out["subject_digest"] == "sha512:" + SUBJECT.hex()


def test_revocation_create():
    pk = SecretKey.generate("ed25519").public_key
    r = RevocationDocument.create(SUBJECT, pk, 1700000000)
    assert r.raw == r.to_bytes()
    assert json.loads(r.raw) == {
        "timestamp": "2023-11-14T22:13:20Z",
        "subject_digest": "sha512:" + SUBJECT.hex(),
        "initiator": str(pk),
    }
    assert list(json.loads(r.raw)) == ["timestamp", "subject_digest", "initiator"]
    assert RevocationDocument.from_bytes(r.raw) == r


def _rev_with(**changes: Any) -> dict[str, Any]:
    d = rev_doc()
    for k, v in changes.items():
        if v is ...:
            del d[k]
        else:
            d[k] = v
    return d


REV_INVALID = [
    (
        "no digest (REST manual example)",
        {"reason": "compromised", "timestamp": 1712860800},
        "'subject_digest'",
    ),
    ("no initiator", _rev_with(initiator=...), "'initiator'"),
    ("no timestamp", _rev_with(timestamp=...), "'timestamp'"),
    ("timestamp bool", _rev_with(timestamp=True), "timestamp must be"),
    ("timestamp float", _rev_with(timestamp=1.5), "timestamp must be"),
    ("timestamp text", _rev_with(timestamp="now"), "timestamp"),
    ("timestamp huge", _rev_with(timestamp=10**18), "timestamp"),
    ("digest sha256", _rev_with(subject_digest="sha256:" + "00" * 32), "Unsupported hash"),
    ("digest no prefix", _rev_with(subject_digest=SUBJECT.hex()), "subject_digest"),
    ("digest short", _rev_with(subject_digest="sha512:abcd"), "64 bytes"),
    ("initiator garbage", _rev_with(initiator="nope"), "initiator"),
    ("reason number", _rev_with(reason=5), "reason must be a string"),
    ("reason too long", _rev_with(reason="x" * 5000), "longer than"),
]


@pytest.mark.parametrize("name,d,message", REV_INVALID, ids=[c[0] for c in REV_INVALID])
def test_revocation_invalid(name, d, message):
    with pytest.raises(FormatError) as exc_info:
        RevocationDocument.from_bytes(json.dumps(d).encode())
    assert message in str(exc_info.value)
    assert str(exc_info.value).startswith("Invalid revocation document:")
