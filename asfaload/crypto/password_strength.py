"""A small, dependency-free password strength check for ``new-keys``.

Not zxcvbn, but it refuses what matters most: short passwords, passwords built from a common
password or keyboard walk plus decoration, and passwords with very few distinct characters.
A password passes with at least 12 characters, at least 6 distinct ones and an estimated
search space of 2^50 or more (length × log2(alphabet) over the character classes used).
"""

from __future__ import annotations

import math
import re

from ..errors import PasswordError

MIN_LENGTH = 12
MIN_DISTINCT = 6
MIN_BITS = 50.0

_COMMON_TEXT = """
    password passw0rd p@ssw0rd p@ssword pass letmein welcome admin administrator root toor
    qwerty qwertyuiop asdf asdfgh asdfghjkl zxcvbn zxcvbnm azerty qwertz iloveyou monkey dragon
    master login princess sunshine football baseball shadow superman batman trustno1 secret
    changeme default abc abcdef abcdefgh abcdefghijkl abc123 123abc 1q2w3e 1q2w3e4r 1qaz2wsx
    hello freedom whatever starwars minisign asfaload ed25519 signing key mykey test testing
"""
_COMMON = frozenset(_COMMON_TEXT.split())
_SEQUENCES = (
    "abcdefghijklmnopqrstuvwxyz",
    "01234567890",
    "qwertyuiopasdfghjklzxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
)


def _is_sequence(core: str) -> bool:
    if len(core) < 4:
        return False
    return any(core in seq or core in seq[::-1] for seq in _SEQUENCES)


def _bits(password: str) -> float:
    alphabet = 0
    if re.search(r"[a-z]", password):
        alphabet += 26
    if re.search(r"[A-Z]", password):
        alphabet += 26
    if re.search(r"[0-9]", password):
        alphabet += 10
    if re.search(r"[^a-zA-Z0-9]", password):
        alphabet += 33
    return len(password) * math.log2(max(alphabet, 2))


def password_weakness(password: str) -> str | None:
    """Why ``password`` is too weak, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"it must have at least {MIN_LENGTH} characters"
    if len(set(password)) < MIN_DISTINCT:
        return f"it must use at least {MIN_DISTINCT} different characters"
    lowered = password.lower()
    core = re.sub(r"^[^a-z]+|[^a-z]+$", "", lowered)  # strip decoration such as "123" or "!"
    if lowered in _COMMON or core in _COMMON or re.fullmatch(r"[0-9\W_]+", lowered):
        return "it is a common password or only digits and symbols"
    if _is_sequence(lowered) or _is_sequence(core):
        return "it is a keyboard or alphabet sequence"
    if re.fullmatch(r"(.{1,4})\1+", lowered):
        return "it is a short pattern repeated"
    if _bits(password) < MIN_BITS:
        return "it is too predictable; use a longer password or more kinds of characters"
    return None


def check_password_strength(password: str) -> None:
    reason = password_weakness(password)
    if reason is not None:
        raise PasswordError(
            f"Password is too weak: {reason} (use --accept-weak-password to bypass, insecure)"
        )
