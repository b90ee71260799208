"""Threshold arithmetic: which keys have validly signed, and whether groups are met.

Counting is by DISTINCT keys that hold a signature verifying over the digest: a key listed twice
can never count twice (the model also refuses duplicates in a group), and an
invalid signature counts for nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from ..crypto import PublicKey, Signature
from ..model import SignaturesFile, SignerGroup


def signature_is_valid(key: PublicKey, digest: bytes, sig: Signature) -> bool:
    """``key.is_valid(digest, sig)``, memoised: the writer and replay check the same signatures
    again and again. The memo key holds the key's whole blob (keys compare by their Ed25519
    bytes alone, but a minisign box names its key id) and the minisign box (excluded from
    Signature equality; its global signature is checked too)."""
    return _signature_is_valid(key, key.raw, digest, sig, sig.box)


@lru_cache(maxsize=1 << 14)
def _signature_is_valid(
    key: PublicKey, blob: bytes, digest: bytes, sig: Signature, box: object
) -> bool:
    return key.is_valid(digest, sig)


def valid_signers(sigs: SignaturesFile, digest: bytes) -> frozenset[PublicKey]:
    """Keys of ``sigs`` whose signature verifies over ``digest`` (the 64-byte SHA-512)."""
    return frozenset(pk for pk, sig in sigs.entries.items() if signature_is_valid(pk, digest, sig))


def group_met(group: SignerGroup, signed: frozenset[PublicKey]) -> bool:
    return len(group.keys & signed) >= group.threshold


def groups_met(groups: Iterable[SignerGroup], signed: frozenset[PublicKey]) -> bool:
    """True iff ``groups`` is non-empty and every group reaches its threshold with ``signed``."""
    groups = tuple(groups)
    return bool(groups) and all(group_met(g, signed) for g in groups)


def group_keys(groups: Iterable[SignerGroup]) -> frozenset[PublicKey]:
    return frozenset(pk for g in groups for pk in g.signers)
