"""A key's identity is its Ed25519 public-key bytes: one key cannot take two seats.

A minisign public key is ``"Ed" || keynum || key``: the same Ed25519 key can be written under any
keynum (and as an ``ed25519:`` string). Were keys compared by their whole blob, one holder could
fill two seats of a threshold, pass the duplicate check, or be both master and artifact signer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asfaload import layout
from asfaload.crypto import PublicKey, SecretKey
from asfaload.crypto._encoding import b64encode
from asfaload.errors import ConflictError, FormatError, KeyFormatError
from asfaload.model import SignaturesFile, SignerGroup, SignersFile
from asfaload.rules import AddSignatures, RegisterRelease
from asfaload.store import Mirror
from tests.support.rules import (
    INDEX,
    T0,
    P,
    index_bytes,
    register_and_activate,
    sig,
    sign_op,
    signers_bytes,
)


def alias(pk: PublicKey, keynum: bytes = b"\x01" * 8) -> PublicKey:
    """The same Ed25519 key under another minisign key id."""
    return PublicKey.parse("minisign:" + b64encode(pk.raw[:2] + keynum + pk.raw[10:]))


@pytest.fixture
def minisign_key() -> SecretKey:
    return SecretKey.generate("minisign")


def test_two_key_ids_of_one_key_are_one_key(minisign_key: SecretKey) -> None:
    pk = minisign_key.public_key
    other = alias(pk)
    assert other.key_id != pk.key_id and str(other) != str(pk)
    assert other == pk and hash(other) == hash(pk)
    assert len({pk, other}) == 1
    assert PublicKey("ed25519", pk.key_bytes) == pk


def test_a_different_key_is_a_different_key(minisign_key: SecretKey) -> None:
    assert SecretKey.generate("minisign").public_key != minisign_key.public_key


@pytest.mark.parametrize("algorithm", [b"ED", b"Xx", b"\x00\x00"])
def test_minisign_public_key_with_other_algorithm_bytes_is_refused(
    minisign_key: SecretKey, algorithm: bytes
) -> None:
    raw = minisign_key.public_key.raw
    text = b64encode(algorithm + raw[2:])
    for spelling in (text, "minisign:" + text):
        with pytest.raises(KeyFormatError, match="algorithm"):
            PublicKey.parse(spelling)
    with pytest.raises(KeyFormatError, match="algorithm"):
        PublicKey("minisign", algorithm + raw[2:])


def test_signers_file_refuses_one_key_twice_in_a_group(minisign_key: SecretKey) -> None:
    pk = minisign_key.public_key
    with pytest.raises(FormatError, match="duplicate key"):
        SignerGroup((pk, alias(pk)), 2)
    doc = {
        "version": 1,
        "timestamp": "2023-11-14T22:13:20Z",
        "artifact_signers": [
            {
                "signers": [{"kind": "key", "data": {"pubkey": str(k)}} for k in (pk, alias(pk))],
                "threshold": 2,
            }
        ],
    }
    with pytest.raises(FormatError, match="duplicate key"):
        SignersFile.parse(json.dumps(doc).encode())


def test_master_key_under_another_key_id_cannot_be_an_artifact_signer(
    minisign_key: SecretKey,
) -> None:
    pk = minisign_key.public_key
    with pytest.raises(FormatError, match="must not also appear"):
        SignersFile.create(
            artifact_signers=[SignerGroup((alias(pk),), 1)],
            master_keys=[SignerGroup((pk,), 1)],
            timestamp=T0,
        )


def test_envelope_refuses_one_key_under_two_spellings(minisign_key: SecretKey) -> None:
    data = b"release"
    pk = minisign_key.public_key
    plain = SecretKey.generate("ed25519")
    entries = {
        str(pk): {"format": "minisign", "signature": sig(minisign_key, data).to_wire()},
        str(alias(pk)): {"format": "minisign", "signature": sig(minisign_key, data).to_wire()},
    }
    with pytest.raises(FormatError, match="appears twice"):
        SignaturesFile.from_bytes(json.dumps({"entries": entries}).encode())
    assert plain.public_key not in SignaturesFile.from_bytes(
        json.dumps({"entries": dict(list(entries.items())[:1])}).encode()
    )


def test_a_second_signature_under_another_key_id_is_a_conflict(tmp_path: Path) -> None:
    a, b = SecretKey.generate("minisign"), SecretKey.generate("minisign")
    with Mirror.init(str(tmp_path / "mirror.git"), durable=False, server_info=False) as m:
        register_and_activate(m, P, signers_bytes([([a, b], 2)]), [a, b])
        m.submit(RegisterRelease(INDEX, index_bytes(), a.public_key))
        m.submit(sign_op(m.view(), INDEX, a))
        index = m.view().read(INDEX) or b""
        again = AddSignatures(INDEX, alias(a.public_key), {INDEX: sig(a, index)})
        with pytest.raises(ConflictError, match="already collected"):
            m.submit(again)
        assert m.view().read(layout.signatures_path(INDEX)) is None  # still one of two
