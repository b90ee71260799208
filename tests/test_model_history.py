"""Signers history and chain (raw bytes in base64, signatures re-verifiable)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from asfaload.crypto import SecretKey, sha512
from asfaload.errors import FormatError
from asfaload.model import (
    CurrentSignersInfo,
    HistoryEntry,
    SignaturesFile,
    SignerGroup,
    SignersChain,
    SignersFile,
    SignersHistory,
    SignersMetadata,
)

SKS = [SecretKey.generate("minisign") for _ in range(2)]


def signed_info(ts: int) -> CurrentSignersInfo:
    # Odd but valid bytes, to prove the history keeps them exactly.
    sf = SignersFile.create([SignerGroup(tuple(sk.public_key for sk in SKS), 2)], timestamp=ts)
    raw = b"  " + sf.raw.replace(b"\n", b"\r\n")
    sf = SignersFile.parse(raw)
    meta = SignersMetadata.create(
        "Github",
        "https://github.com/a/b/blob/main/s.json",
        "https://raw/s.json",
        retrieved_at=ts,
        content=raw,
    )
    sigs = SignaturesFile.empty()
    msigs = SignaturesFile.empty()
    for sk in SKS:
        sigs = sigs.with_entry(sk.public_key, sk.sign(sha512(sf.raw)))
        msigs = msigs.with_entry(sk.public_key, sk.sign(sha512(meta.raw)))
    return CurrentSignersInfo(sf, sigs, meta, msigs)


def test_history_entry_round_trip_keeps_signed_bytes_verifiable():
    info = signed_info(1700000000)
    entry = HistoryEntry.of(info, 1700000100)
    assert entry.obsoleted_at == "2023-11-14T22:15:00Z"
    d = entry.to_dict()
    assert list(d) == [
        "obsoleted_at",
        "signers_file",
        "signatures",
        "metadata",
        "metadata_signatures",
    ]
    assert base64.b64decode(d["signers_file"]) == info.signers_file.raw
    history = SignersHistory().with_entry(entry)
    again = SignersHistory.from_bytes(history.to_bytes())
    got = again.entries[0]
    assert got.signers_file.raw == info.signers_file.raw
    assert got.metadata.raw == info.metadata.raw
    for sk in SKS:
        sk.public_key.verify(sha512(got.signers_file.raw), got.signatures[sk.public_key])
        sk.public_key.verify(sha512(got.metadata.raw), got.metadata_signatures[sk.public_key])
    assert got == entry
    assert got.info == info


@pytest.mark.parametrize("raw", [b"", b" \n", b'{\n  "entries": []\n}'])
def test_empty_history_forms(raw):
    assert SignersHistory.from_bytes(raw).entries == ()
    assert SignersHistory().to_bytes() == b'{\n  "entries": []\n}\n'


def test_history_preserves_unknown_fields():
    entry = HistoryEntry.of(signed_info(1), 2).to_dict()
    entry["note"] = "kept"
    doc = {"entries": [entry], "extra": {"a": 1}}
    h = SignersHistory.from_dict(doc)
    assert h.to_dict() == doc
    assert h.with_entry(HistoryEntry.of(signed_info(3), 4)).to_dict()["extra"] == {"a": 1}


def test_chain_round_trip_with_and_without_current():
    e1 = HistoryEntry.of(signed_info(10), 20)
    cur = signed_info(20)
    chain = SignersChain.build(SignersHistory((e1,)), cur)
    d = json.loads(chain.to_bytes())
    assert list(d) == ["history_entries", "current_signers_info"]
    assert "obsoleted_at" not in d["current_signers_info"]
    assert SignersChain.from_bytes(chain.to_bytes()) == chain
    empty = SignersChain()
    assert json.loads(empty.to_bytes()) == {"history_entries": [], "current_signers_info": None}
    assert SignersChain.from_dict(empty.to_dict()) == empty


def _entry_with(**changes: Any) -> dict[str, Any]:
    d = HistoryEntry.of(signed_info(5), 6).to_dict()
    for k, v in changes.items():
        if v is ...:
            del d[k]
        else:
            d[k] = v
    return {"entries": [d]}


INVALID = [
    ("entries missing", {}, "'entries'"),
    ("entries not list", {"entries": {}}, "JSON array"),
    ("no obsoleted_at", _entry_with(obsoleted_at=...), "'obsoleted_at'"),
    ("bad obsoleted_at", _entry_with(obsoleted_at="later"), "obsoleted_at"),
    ("signers not base64", _entry_with(signers_file="@@@"), "not valid base64"),
    ("signers not a string", _entry_with(signers_file={"version": 1}), "must be a string"),
    (
        "signers file invalid",
        _entry_with(signers_file=base64.b64encode(b'{"version": 2}').decode()),
        "Invalid signers file",
    ),
    (
        "metadata invalid",
        _entry_with(metadata=base64.b64encode(b"{}").decode()),
        "Invalid signers metadata",
    ),
    (
        "signatures invalid",
        _entry_with(signatures={"entries": {"k": 1}}),
        "Invalid signatures file",
    ),
    ("metadata_signatures missing", _entry_with(metadata_signatures=...), "'metadata_signatures'"),
]


@pytest.mark.parametrize("name,d,message", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_history(name, d, message):
    with pytest.raises(FormatError) as exc_info:
        SignersHistory.from_bytes(json.dumps(d).encode())
    assert message in str(exc_info.value)
    assert str(exc_info.value).startswith("Invalid signers history:")


def test_invalid_chain():
    with pytest.raises(FormatError, match="'current_signers_info'"):
        SignersChain.from_dict({"history_entries": []})
    with pytest.raises(FormatError, match="Invalid signers chain"):
        SignersChain.from_dict({"history_entries": [], "current_signers_info": {"signers_file": 1}})
