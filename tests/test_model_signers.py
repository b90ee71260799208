"""Signers file model: validation rules, derived groups, byte-exactness, parser robustness."""

from __future__ import annotations

import contextlib
import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asfaload.crypto import PublicKey, SecretKey
from asfaload.errors import AsfaloadError, SignersFileError
from asfaload.model import SignerGroup, SignersFile

# Real keys from the crypto layer (generation is cheap: no KDF involved).
M = [SecretKey.generate("minisign").public_key for _ in range(6)]
E = [SecretKey.generate("ed25519").public_key for _ in range(2)]
# The fixture key_0 (tests/vectors/), written bare (no prefix) as older signers files do.
KEY0_BARE = "RWS1kZJeKmeNOI0vl8hjI/YD7UQYxMq5uYkVWfHCHPtm7bOsbgZMovii"


def signer(pk: PublicKey | str) -> dict[str, Any]:
    return {"kind": "key", "data": {"pubkey": str(pk)}}


def group(keys: list[Any], threshold: Any) -> dict[str, Any]:
    return {"signers": [signer(k) for k in keys], "threshold": threshold}


def base_doc() -> dict[str, Any]:
    return {
        "version": 1,
        "timestamp": "2025-06-01T10:11:12Z",
        "artifact_signers": [group([M[0], M[1]], 2)],
        "admin_keys": [group([M[2]], 1)],
        "master_keys": [group([M[3]], 1)],
        "revocation_keys": [group([M[4], M[5]], 1)],
    }


def encode(doc: Any) -> bytes:
    return json.dumps(doc, indent=2).encode()


def test_valid_document_parses_with_all_groups():
    sf = SignersFile.parse(encode(base_doc()))
    assert sf.version == 1
    assert sf.timestamp == "2025-06-01T10:11:12Z"
    assert sf.timestamp_dt == datetime(2025, 6, 1, 10, 11, 12, tzinfo=UTC)
    assert sf.artifact_signers[0].signers == (M[0], M[1])
    assert sf.artifact_signers[0].threshold == 2
    assert sf.algorithm == "minisign"


def _set(path: list[Any], value: Any):
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value

    return mutate


def _delete(path: list[Any]):
    def mutate(doc: dict[str, Any]) -> None:
        target: Any = doc
        for p in path[:-1]:
            target = target[p]
        del target[path[-1]]

    return mutate


INVALID = [
    ("version 2", _set(["version"], 2), "unsupported version 2"),
    ("version 0", _set(["version"], 0), "unsupported version 0"),
    ("version string", _set(["version"], "1"), "version must be an integer"),
    ("version bool", _set(["version"], True), "version must be an integer"),
    ("version float", _set(["version"], 1.0), "version must be an integer"),
    ("version missing", _delete(["version"]), "missing the field 'version'"),
    ("timestamp missing", _delete(["timestamp"]), "missing the field 'timestamp'"),
    ("timestamp number", _set(["timestamp"], 1700000000), "timestamp must be a string"),
    ("timestamp no zone", _set(["timestamp"], "2025-06-01T10:11:12"), "timestamp"),
    ("timestamp garbage", _set(["timestamp"], "yesterday"), "Invalid RFC 3339"),
    ("timestamp Feb 30", _set(["timestamp"], "2025-02-30T00:00:00Z"), "Invalid RFC 3339"),
    ("artifact missing", _delete(["artifact_signers"]), "missing the field 'artifact_signers'"),
    ("artifact empty", _set(["artifact_signers"], []), "at least one group"),
    ("artifact not list", _set(["artifact_signers"], {}), "must be a JSON array"),
    ("admin string", _set(["admin_keys"], "none"), "admin_keys must be a JSON array"),
    ("artifact null", _set(["artifact_signers"], None), "artifact_signers must be a JSON array"),
    ("empty group", _set(["artifact_signers", 0, "signers"], []), "Group size must be at least 1"),
    (
        "threshold 0",
        _set(["artifact_signers", 0, "threshold"], 0),
        "Threshold (0) must be strictly greater than 0",
    ),
    ("threshold negative", _set(["admin_keys", 0, "threshold"], -1), "Threshold (-1)"),
    (
        "threshold above size",
        _set(["artifact_signers", 0, "threshold"], 3),
        "Threshold (3) cannot be greater than the number of signers (2)",
    ),
    ("threshold bool", _set(["artifact_signers", 0, "threshold"], True), "must be an integer"),
    ("threshold string", _set(["artifact_signers", 0, "threshold"], "2"), "must be an integer"),
    ("threshold float", _set(["artifact_signers", 0, "threshold"], 2.0), "must be an integer"),
    ("threshold null", _set(["artifact_signers", 0, "threshold"], None), "must be an integer"),
    ("threshold missing", _delete(["artifact_signers", 0, "threshold"]), "'threshold'"),
    ("signers missing", _delete(["artifact_signers", 0, "signers"]), "'signers'"),
    (
        "duplicate key in group",
        _set(["artifact_signers", 0], group([M[0], M[0]], 1)),
        "duplicate key in group",
    ),
    (
        "duplicate key spelled twice (bare and prefixed)",
        _set(["artifact_signers", 0], group([KEY0_BARE, "minisign:" + KEY0_BARE], 1)),
        "duplicate key in group",
    ),
    (
        "mixed algorithms across groups",
        _set(["admin_keys", 0], group([E[0]], 1)),
        "all keys must use one algorithm",
    ),
    (
        "mixed algorithms inside a group",
        _set(["artifact_signers", 0], group([M[0], E[0]], 1)),
        "all keys must use one algorithm",
    ),
    (
        "master key in artifact",
        _set(["master_keys", 0], group([M[0]], 1)),
        "must not also appear in artifact_signers",
    ),
    (
        "master key in admin",
        _set(["master_keys", 0], group([M[2]], 1)),
        "must not also appear in admin_keys",
    ),
    (
        "master key in revocation",
        _set(["master_keys", 0], group([M[5]], 1)),
        "must not also appear in revocation_keys",
    ),
    ("bad kind", _set(["artifact_signers", 0, "signers", 0, "kind"], "url"), 'must be "key"'),
    ("kind missing", _delete(["artifact_signers", 0, "signers", 0, "kind"]), "'kind'"),
    ("data missing", _delete(["artifact_signers", 0, "signers", 0, "data"]), "'data'"),
    (
        "pubkey missing",
        _delete(["artifact_signers", 0, "signers", 0, "data", "pubkey"]),
        "'pubkey'",
    ),
    (
        "pubkey garbage",
        _set(["artifact_signers", 0, "signers", 0, "data", "pubkey"], "minisign:AAAA"),
        "artifact_signers[0].signers[0].data.pubkey",
    ),
    (
        "pubkey number",
        _set(["artifact_signers", 0, "signers", 0, "data", "pubkey"], 5),
        "must be a string",
    ),
    (
        "format not matching the key",
        _set(["artifact_signers", 0, "signers", 0, "data", "format"], "ed25519"),
        "does not match the key's algorithm",
    ),
    (
        "format not a string",
        _set(["artifact_signers", 0, "signers", 0, "data", "format"], 1),
        "format must be a string",
    ),
    ("signer not an object", _set(["artifact_signers", 0, "signers", 0], "RW..."), "JSON object"),
]


@pytest.mark.parametrize("name,mutate,message", INVALID, ids=[c[0] for c in INVALID])
def test_invalid_documents_are_rejected_with_a_clear_message(name, mutate, message):
    doc = base_doc()
    mutate(doc)
    with pytest.raises(SignersFileError) as exc_info:
        SignersFile.parse(encode(doc))
    assert message in str(exc_info.value)
    assert "\n" not in str(exc_info.value)
    # from_dict applies exactly the same rules.
    with pytest.raises(SignersFileError):
        SignersFile.from_dict(doc)


@pytest.mark.parametrize(
    "raw,message",
    [
        (b"", "invalid JSON"),
        (b"   \n", "invalid JSON"),
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"[]", "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b'{"version": 1, "version": 1}', "duplicate key"),
        (b'{"version": NaN}', "invalid JSON"),
        (b"[" * 100000, "invalid JSON"),
    ],
)
def test_non_documents_are_rejected(raw, message):
    with pytest.raises(SignersFileError) as exc_info:
        SignersFile.parse(raw)
    assert message in str(exc_info.value)


def test_group_constructor_validates_too():
    with pytest.raises(SignersFileError, match="at least 1"):
        SignerGroup((), 1)
    with pytest.raises(SignersFileError, match="duplicate key"):
        SignerGroup((M[0], M[0]), 1)
    with pytest.raises(SignersFileError, match="integer"):
        SignerGroup((M[0],), True)
    with pytest.raises(SignersFileError, match="cannot be greater"):
        SignerGroup((M[0],), 2)
    with pytest.raises(SignersFileError, match="PublicKey"):
        SignerGroup((str(M[0]),), 1)  # type: ignore[arg-type]


def test_create_validates_and_rejects_master_overlap_and_mixed_algorithms():
    with pytest.raises(SignersFileError, match="at least one group"):
        SignersFile.create([])
    with pytest.raises(SignersFileError, match="must not also appear in artifact_signers"):
        SignersFile.create([SignerGroup((M[0],), 1)], master_keys=[SignerGroup((M[0],), 1)])
    with pytest.raises(SignersFileError, match="one algorithm"):
        SignersFile.create([SignerGroup((M[0],), 1)], revocation_keys=[SignerGroup((E[0],), 1)])


def test_same_key_in_two_non_master_groups_is_allowed():
    doc = base_doc()
    doc["admin_keys"] = [group([M[0]], 1)]
    sf = SignersFile.parse(encode(doc))
    assert sf.admin_groups()[0].signers == (M[0],)


# --- derived groups ------------------------------------------------------------------------------
def test_derived_groups_with_every_group_present():
    sf = SignersFile.parse(encode(base_doc()))
    assert sf.admin_groups() == sf.admin_keys
    assert sf.master_groups() == sf.master_keys
    assert sf.revocation_groups() == sf.revocation_keys
    assert sf.all_signer_keys() == frozenset(M[:6])


def test_admin_falls_back_to_artifact_and_revocation_to_admin():
    doc = base_doc()
    del doc["admin_keys"], doc["revocation_keys"], doc["master_keys"]
    sf = SignersFile.parse(encode(doc))
    assert sf.admin_keys is None and sf.master_keys is None
    assert sf.admin_groups() == sf.artifact_signers
    assert sf.revocation_groups() == sf.artifact_signers
    assert sf.master_groups() == ()
    assert sf.all_signer_keys() == frozenset({M[0], M[1]})


def test_null_optional_groups_mean_absent():
    doc = base_doc()
    doc["admin_keys"] = None
    doc["revocation_keys"] = None
    sf = SignersFile.parse(encode(doc))
    assert sf.admin_keys is None and sf.revocation_keys is None
    assert sf.revocation_groups() == sf.artifact_signers
    assert "admin_keys" not in sf.to_dict()


def test_explicit_empty_lists_fall_back_like_absent_ones_but_are_kept():
    doc = base_doc()
    doc["admin_keys"] = []
    doc["revocation_keys"] = []
    doc["master_keys"] = []
    sf = SignersFile.parse(encode(doc))
    assert sf.admin_keys == () and sf.revocation_keys == ()
    assert sf.admin_groups() == sf.artifact_signers
    assert sf.revocation_groups() == sf.artifact_signers
    assert sf.to_dict()["admin_keys"] == []


def test_revocation_falls_back_to_admin_not_to_masters():
    doc = base_doc()
    del doc["revocation_keys"]
    sf = SignersFile.parse(encode(doc))
    assert sf.revocation_groups() == sf.admin_keys
    assert M[3] not in {k for g in sf.revocation_groups() for k in g.signers}


def test_all_signer_keys_include_revocation_keys_and_masters():
    sf = SignersFile.parse(encode(base_doc()))
    assert M[4] in sf.all_signer_keys() and M[5] in sf.all_signer_keys()
    assert M[3] in sf.all_signer_keys()


# --- bytes and round trips -----------------------------------------------------------------------
def test_raw_is_kept_byte_for_byte_with_odd_whitespace_and_unknown_fields():
    raw = (
        b'\n\t{ "timestamp" :"2025-06-01T10:11:12.123456789+02:00",  "version":1,\r\n'
        b'"comment": {"nested": [1, 2.5, null, "\\u00e9"]},'
        b'"artifact_signers":[{"threshold":1,"x-note":"hi","signers":[{"kind":"key","extra":true,'
        b'"data":{"format":"minisign","pubkey":"' + KEY0_BARE.encode() + b'","ext":1}}]}]}  \n\n'
    )
    sf = SignersFile.parse(raw)
    assert sf.raw == raw
    assert sf.timestamp == "2025-06-01T10:11:12.123456789+02:00"
    assert sf.timestamp_dt == datetime(2025, 6, 1, 8, 11, 12, 123456, tzinfo=UTC)
    assert sf.unrecognized == {"comment": {"nested": [1, 2.5, None, "é"]}}
    out = sf.to_dict()
    assert out["comment"] == {"nested": [1, 2.5, None, "é"]}
    g = out["artifact_signers"][0]
    assert g["x-note"] == "hi"
    assert g["signers"][0] == {
        "kind": "key",
        "extra": True,
        "data": {"format": "minisign", "pubkey": "minisign:" + KEY0_BARE, "ext": 1},
    }
    # Re-parsing the canonical form gives an equal model (raw aside) and a stable canonical form.
    again = SignersFile.parse(sf.to_bytes())
    assert again.to_bytes() == sf.to_bytes()
    assert again.all_signer_keys() == sf.all_signer_keys()


def test_utf8_bom_is_accepted_and_kept_in_raw():
    raw = b"\xef\xbb\xbf" + encode(base_doc())
    assert SignersFile.parse(raw).raw == raw


def test_to_bytes_layout_field_order_and_trailing_newline():
    sf = SignersFile.create(
        [SignerGroup((M[0], M[1]), 1)],
        revocation_keys=[SignerGroup((M[2],), 1)],
        timestamp=1700000000,
    )
    text = sf.raw.decode()
    assert sf.raw == sf.to_bytes()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text.startswith('{\n  "version": 1,\n  "timestamp": "2023-11-14T22:13:20Z",\n')
    assert list(json.loads(text)) == ["version", "timestamp", "artifact_signers", "revocation_keys"]
    assert '"format"' not in text
    assert json.loads(text)["artifact_signers"][0]["signers"][0] == {
        "kind": "key",
        "data": {"pubkey": str(M[0])},
    }


def test_create_round_trips_through_parse():
    sf = SignersFile.create(
        [SignerGroup((E[0], E[1]), 2)],
        admin_keys=[SignerGroup((E[1],), 1)],
        timestamp="2026-01-02T03:04:05Z",
    )
    parsed = SignersFile.parse(sf.raw)
    assert parsed == sf
    assert parsed.algorithm == "ed25519"
    assert SignersFile.from_dict(sf.to_dict()) == sf


def test_files_differing_only_in_whitespace_are_different_signed_objects():
    a = SignersFile.parse(encode(base_doc()))
    b = SignersFile.parse(json.dumps(base_doc()).encode())
    assert a != b and a.raw != b.raw
    assert a.to_bytes() == b.to_bytes()


def test_unrecognized_cannot_shadow_known_fields():
    with pytest.raises(SignersFileError, match="shadow"):
        SignersFile(
            1, "2025-01-01T00:00:00Z", (SignerGroup((M[0],), 1),), unrecognized={"version": 2}
        )


def test_reference_vector_key_parses_inside_a_signers_file():
    doc = {
        "version": 1,
        "timestamp": "2025-01-01T12:00:00Z",
        "artifact_signers": [
            {
                "signers": [{"kind": "key", "data": {"format": "minisign", "pubkey": KEY0_BARE}}],
                "threshold": 1,
            }
        ],
    }
    sf = SignersFile.parse(encode(doc))
    assert sf.artifact_signers[0].signers[0] == PublicKey.parse("minisign:" + KEY0_BARE)


# --- robustness ----------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_our_errors(raw):
    with contextlib.suppress(AsfaloadError):
        SignersFile.parse(raw)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_arbitrary_json_raises_only_our_errors(value):
    for attempt in (
        lambda: SignersFile.from_dict(value),
        lambda: SignersFile.parse(json.dumps(value).encode()),
    ):
        with contextlib.suppress(AsfaloadError):
            attempt()


def _mutations_of_base() -> st.SearchStrategy[Any]:
    """Structured fuzzing: replace one node of a valid document with an arbitrary JSON value."""
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, [*path, k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, [*path, i])

    walk(base_doc(), [])
    return st.tuples(st.sampled_from(paths[1:]), json_values)


@settings(max_examples=300, deadline=None)
@given(_mutations_of_base())
def test_mutated_valid_documents_raise_only_our_errors(mutation):
    path, value = mutation
    doc = copy.deepcopy(base_doc())
    _set(path, value)(doc)
    try:
        sf = SignersFile.from_dict(doc)
    except AsfaloadError:
        return
    # Whatever was accepted must be re-emitted and re-parsed identically.
    assert SignersFile.parse(sf.to_bytes()).to_bytes() == sf.to_bytes()


def test_from_dict_with_python_only_values_raises_our_error():
    doc = base_doc()
    doc["x"] = float("nan")
    with pytest.raises(SignersFileError):
        SignersFile.from_dict(doc)
    cyclic: dict[str, Any] = base_doc()
    cyclic["self"] = cyclic
    with pytest.raises(SignersFileError):
        SignersFile.from_dict(cyclic)
    doc = base_doc()
    doc[1] = "non-string key"  # type: ignore[index]
    with pytest.raises(SignersFileError):
        SignersFile.from_dict(doc)
