"""Every parser of outside input, in one table, fed hostile bytes: it returns or raises one of our
errors (``AsfaloadError``; TUF's ``TufError`` is one), never anything else, and never hangs.

The per-module property tests (tests/test_model_robustness.py, test_crypto_properties.py,
test_forge_checksums.py, test_tuf_rules.py) explore each parser's structure; this table is the
one place that lists them all, so a parser added without a row is noticed in review, and it
scales with ``ASFALOAD_SOAK_EXAMPLES`` under ``make soak``. It adds what those lack: the same
pathological documents (deep nesting, integers over 4,300 digits, lone surrogates, NUL bytes)
for every parser, and mutations of a valid TUF root read from bytes.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asfaload.crypto import PublicKey, Signature
from asfaload.crypto.sigfile import parse_signature_file
from asfaload.errors import AsfaloadError
from asfaload.forge.checksums import parse_checksums
from asfaload.tuf.documents import parse_root_bytes
from tests.reliability.support import setting
from tests.support.models import MODELS
from tests.support.tuf import key, make_root, signed_doc

EXAMPLES = setting("EXAMPLES", 150)
# Far above any parse of these sizes: only a hang (a quadratic blow-up, a loop) reaches it.
HANG_SECONDS = 20.0

_SIGNER = key()
_ONLINE = {role: key().public_key for role in ("targets", "snapshot", "timestamp")}
VALID_ROOT = signed_doc(make_root(1, [_SIGNER], 1, _ONLINE), [_SIGNER])


def _text(parse: Callable[[str], Any]) -> Callable[[bytes], Any]:
    # Text parsers get what a file or header could carry: bytes decoded leniently.
    return lambda raw: parse(raw.decode("utf-8", errors="surrogateescape"))


PARSERS: dict[str, Callable[[bytes], Any]] = {
    **{f"model:{name}": MODELS[name][0] for name in sorted(MODELS)},
    "key string": _text(PublicKey.parse),
    "key file": _text(PublicKey.from_text),
    "signature wire": _text(Signature.from_wire),
    "minisign signature text": _text(Signature.from_minisign_text),
    "signature file": _text(parse_signature_file),
    "checksum file": parse_checksums,
    "tuf root": parse_root_bytes,
}
NAMES = sorted(PARSERS)

PATHOLOGICAL = [
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b"9" * 5_000,
    b'{"version": ' + b"1" * 4_400 + b"}",
    b'{"signed": {"version": 1' + b"0" * 4_400 + b"}}",
    b'"\\ud800"',
    b"\x00" * 1000,
    b"\xff\xfe" + "{}".encode("utf-16-le"),
    b"untrusted comment: x\n" + b"A" * 100_000 + b"\n",
    b"sha256:" + b"0" * 100_000,
    b" " * 1_000_000,
]


def parse_or_refuse(name: str, raw: bytes) -> None:
    start = time.monotonic()
    with contextlib.suppress(AsfaloadError):
        PARSERS[name](raw)
    assert time.monotonic() - start < HANG_SECONDS, f"{name} took too long"


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("raw", PATHOLOGICAL, ids=range(len(PATHOLOGICAL)))
def test_pathological_documents(name: str, raw: bytes) -> None:
    parse_or_refuse(name, raw)


_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@_SETTINGS
@given(name=st.sampled_from(NAMES), raw=st.binary(max_size=400))
def test_arbitrary_bytes(name: str, raw: bytes) -> None:
    parse_or_refuse(name, raw)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)


@_SETTINGS
@given(name=st.sampled_from(NAMES), doc=_json)
def test_arbitrary_json(name: str, doc: Any) -> None:
    parse_or_refuse(name, json.dumps(doc).encode())


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


_ROOT_PATHS = _paths(VALID_ROOT)[1:]


@_SETTINGS
@given(where=st.sampled_from(_ROOT_PATHS), value=_json, drop=st.booleans())
def test_mutated_tuf_roots(where: tuple[Any, ...], value: Any, drop: bool) -> None:
    doc = copy.deepcopy(VALID_ROOT)
    parent = doc
    for step in where[:-1]:
        parent = parent[step]
    if drop and isinstance(parent, dict):
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    parse_or_refuse("tuf root", json.dumps(doc).encode())


def test_the_valid_root_parses() -> None:
    # The mutations start from a document the parser accepts.
    assert parse_root_bytes(json.dumps(VALID_ROOT).encode()).version == 1
