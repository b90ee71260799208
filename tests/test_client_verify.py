"""Client-side verification: thresholds, revocation records and the signers chain (no server).

Real keys and real signatures; the mirror files are built with the model, as the server would.
"""

from __future__ import annotations

import pytest

from asfaload.client.chain import ChainError, check_realm, validate_chain
from asfaload.client.signing import build_revocation
from asfaload.client.verify import check_artifact_signatures, check_revocation
from asfaload.crypto import SecretKey, sha512
from asfaload.errors import ThresholdNotMetError, VerificationError
from asfaload.model import (
    CurrentSignersInfo,
    SignaturesFile,
    SignerGroup,
    SignersFile,
    SignersMetadata,
)


@pytest.fixture(scope="module", params=["minisign", "ed25519"])
def keys(request: pytest.FixtureRequest) -> list[SecretKey]:
    return [SecretKey.generate(request.param) for _ in range(5)]


def signers_file(artifact: list[SecretKey], threshold: int, **extra: object) -> SignersFile:
    groups = [SignerGroup(tuple(k.public_key for k in artifact), threshold)]
    rev = extra.get("revocation")
    rev_groups = None
    if rev is not None:
        rev_keys, rev_t = rev  # type: ignore[misc]
        rev_groups = [SignerGroup(tuple(k.public_key for k in rev_keys), rev_t)]
    return SignersFile.parse(SignersFile.create(groups, revocation_keys=rev_groups).to_bytes())


def envelope(data: bytes, *signers: SecretKey) -> bytes:
    sigs = SignaturesFile.empty()
    for k in signers:
        sigs = sigs.with_entry(k.public_key, k.sign(sha512(data)))
    return bytes(sigs.to_bytes())


INDEX = b'{"publishedFiles": []}'


def test_threshold_met_counts_distinct_authorised_keys(keys: list[SecretKey]) -> None:
    a, b, c, outsider, _ = keys
    sf = signers_file([a, b, c], 2)
    res = check_artifact_signatures(sf.raw, INDEX, envelope(INDEX, a, c, outsider))
    assert res.valid == {a.public_key, c.public_key}
    assert res.invalid == 0


def test_threshold_not_met_with_one_signature_and_an_outsider(keys: list[SecretKey]) -> None:
    a, b, c, outsider, _ = keys
    sf = signers_file([a, b, c], 2)
    with pytest.raises(ThresholdNotMetError, match="requires 2 of 3"):
        check_artifact_signatures(sf.raw, INDEX, envelope(INDEX, a, outsider))


def test_signatures_over_other_bytes_are_invalid(keys: list[SecretKey]) -> None:
    a, b, c, _, _ = keys
    sf = signers_file([a, b, c], 2)
    sigs = envelope(INDEX, a, b)
    with pytest.raises(ThresholdNotMetError, match="2 invalid"):
        check_artifact_signatures(sf.raw, INDEX + b" ", sigs)


def test_one_bad_signature_is_reported_but_threshold_still_met(keys: list[SecretKey]) -> None:
    a, b, c, _, _ = keys
    sf = signers_file([a, b, c], 2)
    good = SignaturesFile.from_bytes(envelope(INDEX, a, b))
    bad = good.with_entry(c.public_key, c.sign(sha512(b"other")))
    res = check_artifact_signatures(sf.raw, INDEX, bytes(bad.to_bytes()))
    assert res.invalid == 1 and len(res.valid) == 2


def test_garbage_signatures_file_is_a_verification_error(keys: list[SecretKey]) -> None:
    sf = signers_file(keys[:3], 2)
    with pytest.raises(VerificationError):
        check_artifact_signatures(sf.raw, INDEX, b"not json")


def test_revocation_record_verifies_with_threshold(keys: list[SecretKey]) -> None:
    a, b, c, r1, r2 = keys
    sf = signers_file([a, b, c], 2, revocation=([r1, r2], 2))
    req = build_revocation(r1, INDEX, now=1_700_000_000)
    raw = req.document.raw
    both = envelope(raw, r1, r2)
    rev = check_revocation(INDEX, raw, both, sf.raw)
    assert rev.revoked_by == str(r1.public_key)
    assert rev.revoked_at.startswith("2023-11-14T22:13:20")
    # Only one of two revocation signatures: the record does not verify, and we refuse.
    with pytest.raises(VerificationError, match="does not verify"):
        check_revocation(INDEX, raw, envelope(raw, r1), sf.raw)
    # A revocation of other content is refused too.
    with pytest.raises(VerificationError, match="other content"):
        check_revocation(INDEX + b"x", raw, both, sf.raw)
    # Artifact signers are not revocation signers.
    with pytest.raises(VerificationError):
        check_revocation(INDEX, raw, envelope(raw, a, b), sf.raw)
    with pytest.raises(VerificationError, match="without its signatures"):
        check_revocation(INDEX, raw, None, sf.raw)


# --- the signers chain ------------------------------------------------------------------------
SIGNERS_URL = "https://github.com/acme/tool/blob/main/asfaload.signers/index.json"
RAW_URL = "https://raw.githubusercontent.com/acme/tool/main/asfaload.signers/index.json"


def info(sf: SignersFile, *signers: SecretKey) -> CurrentSignersInfo:
    md = SignersMetadata.create("Github", SIGNERS_URL, RAW_URL, retrieved_at=0, content=sf.raw)
    md = SignersMetadata.from_bytes(md.raw)
    return CurrentSignersInfo(
        signers_file=sf,
        signatures=SignaturesFile.from_bytes(envelope(sf.raw, *signers)),
        metadata=md,
        metadata_signatures=SignaturesFile.from_bytes(envelope(md.raw, *signers)),
    )


def test_chain_first_entry_needs_every_signer(keys: list[SecretKey]) -> None:
    a, b, c, _, _ = keys
    v1 = signers_file([a, b, c], 2)
    validate_chain([info(v1, a, b, c)])
    with pytest.raises(ChainError, match="SignersChainFirstEntryInvalid"):
        validate_chain([info(v1, a, b)])
    with pytest.raises(ChainError, match="SignersChainEmpty"):
        validate_chain([])


def test_chain_update_needs_old_thresholds_and_new_keys(keys: list[SecretKey]) -> None:
    a, b, c, d, attacker = keys
    v1 = signers_file([a, b, c], 2)
    v2 = signers_file([a, b, c, d], 3)
    first = info(v1, a, b, c)
    validate_chain([first, info(v2, a, b, d)])
    # The new key d must sign.
    with pytest.raises(ChainError, match="SignersChainEntryInvalid"):
        validate_chain([first, info(v2, a, b, c)])
    # An attacker's signers file signed only by the attacker breaks the chain.
    evil = signers_file([attacker], 1)
    with pytest.raises(ChainError, match="SignersChainEntryInvalid"):
        validate_chain([first, info(evil, attacker)])


def test_realm_check(keys: list[SecretKey]) -> None:
    first = info(signers_file(keys[:2], 1), *keys[:2])
    check_realm(first, "https/github.com/443/acme/tool/releases/tag/v1/asfaload.index.json")
    with pytest.raises(ChainError, match="OutsideRealm"):
        check_realm(first, "https/github.com/443/acme/toolbox/releases/tag/v1/asfaload.index.json")
