"""Threshold arithmetic: which keys have validly signed, and whether groups are met.

Counting is by DISTINCT keys that hold a signature verifying over the digest: a key listed twice
can never count twice (the model also refuses duplicates in a group), and an
invalid signature counts for nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..crypto import PublicKey
from ..model import SignaturesFile, SignerGroup


def valid_signers(sigs: SignaturesFile, digest: bytes) -> frozenset[PublicKey]:
    """Keys of ``sigs`` whose signature verifies over ``digest`` (the 64-byte SHA-512)."""
    return frozenset(pk for pk, sig in sigs.entries.items() if pk.is_valid(digest, sig))


def group_met(group: SignerGroup, signed: frozenset[PublicKey]) -> bool:
    return len(group.keys & signed) >= group.threshold


def groups_met(groups: Iterable[SignerGroup], signed: frozenset[PublicKey]) -> bool:
    """True iff ``groups`` is non-empty and every group reaches its threshold with ``signed``."""
    groups = tuple(groups)
    return bool(groups) and all(group_met(g, signed) for g in groups)


def group_keys(groups: Iterable[SignerGroup]) -> frozenset[PublicKey]:
    return frozenset(pk for g in groups for pk in g.signers)
