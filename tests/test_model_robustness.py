"""Every model parser, fed arbitrary bytes or JSON, raises only AsfaloadError subclasses.

Never KeyError, TypeError, ValueError, UnicodeDecodeError or RecursionError. Whatever a parser
accepts must serialise again and re-parse to the same canonical bytes.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asfaload.errors import AsfaloadError, FormatError
from tests.support.models import MODELS  # noqa: E402

NAMES = sorted(MODELS)

# Lone surrogates included: JSON can carry them ("\ud800") and they break naive encoders.
_text = st.text(st.characters(exclude_categories=()), max_size=20)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(_text, c, max_size=4),
    max_leaves=20,
)


def _accepts(result: Any) -> None:
    data = result.to_bytes()
    assert type(result).from_bytes(data).to_bytes() == data


def test_valid_documents_parse():
    for name in NAMES:
        from_bytes, from_dict, doc = MODELS[name]
        _accepts(from_dict(doc))
        _accepts(from_bytes(json.dumps(doc).encode()))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NAMES), st.binary(max_size=300))
def test_arbitrary_bytes(name, raw):
    try:
        result = MODELS[name][0](raw)
    except AsfaloadError:
        return
    _accepts(result)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NAMES), json_values)
def test_arbitrary_json(name, value):
    from_bytes, from_dict, _ = MODELS[name]
    for attempt in (lambda: from_dict(value), lambda: from_bytes(json.dumps(value).encode())):
        try:
            result = attempt()
        except AsfaloadError:
            continue
        _accepts(result)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*path, i))
    return out


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, Any]:
    name = draw(st.sampled_from(NAMES))
    doc = copy.deepcopy(MODELS[name][2])
    path = draw(st.sampled_from(_paths(doc)[1:]))
    value = draw(json_values)
    target = doc
    for p in path[:-1]:
        target = target[p]
    if draw(st.booleans()) and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return name, doc


@settings(max_examples=400, deadline=None)
@given(mutated())
def test_mutated_valid_documents(case):
    name, doc = case
    try:
        result = MODELS[name][1](doc)
    except AsfaloadError:
        return
    _accepts(result)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "raw",
    [b"[" * 50000, b'{"a":' * 50000, b"1" * 5000, b"\xc3\x28", b'"\\ud800"', b"\x00", b"{}" * 2],
)
def test_pathological_inputs(name, raw):
    try:
        result = MODELS[name][0](raw)
    except AsfaloadError:
        return
    _accepts(result)


@pytest.mark.parametrize("name", NAMES)
def test_deep_but_parseable_unknown_fields_are_refused_not_crashing(name):
    from_bytes, _, doc = MODELS[name]
    deep: Any = 0
    for _ in range(200):
        deep = [deep]
    d = copy.deepcopy(doc)
    d["zz_deep"] = deep
    with pytest.raises(AsfaloadError, match="nested"):
        from_bytes(json.dumps(d).encode())


SIGNED = ["index", "metadata", "revocation", "signers"]


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(SIGNED),
    st.one_of(st.none(), st.integers(0, 8), st.sampled_from(["\t", " \r\n "])),
    st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]),
    st.sampled_from([b"", b"\n", b" \r\n\t", b"\xef\xbb\xbf"]),
    st.booleans(),
)
def test_signed_files_keep_their_exact_bytes(name, indent, separators, pad, ascii_only):
    """Whatever the formatting, the parsed model's ``raw`` is the input, byte for byte."""
    from_bytes, _, doc = MODELS[name]
    text = json.dumps(
        {**doc, "zz_unknown": ["é", {"n": 1.5}]},
        indent=indent,
        separators=separators,
        ensure_ascii=ascii_only,
    )
    raw = pad + text.encode() + pad.lstrip(b"\xef\xbb\xbf")
    parsed = from_bytes(raw)
    assert parsed.raw == raw
    assert parsed.to_dict()["zz_unknown"] == ["é", {"n": 1.5}]
    assert parsed.to_bytes() == from_bytes(parsed.to_bytes()).raw


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("max_digits", [None, 0], ids=["default-int-limit", "no-int-limit"])
def test_giant_integer_literal_is_a_format_error(name, max_digits):
    """Refused before conversion: whatever the process's int-str digit limit (0: none, where
    converting would take quadratic time), and without Python's own hint in the message."""
    from_bytes, _, doc = MODELS[name]
    text = json.dumps({**doc, "zz_big": 1}).replace('"zz_big": 1', '"zz_big": ' + "9" * 200_000)
    old = sys.get_int_max_str_digits()
    if max_digits is not None:
        sys.set_int_max_str_digits(max_digits)
    try:
        with pytest.raises(FormatError, match="integer too large") as caught:
            from_bytes(text.encode())
    finally:
        sys.set_int_max_str_digits(old)
    assert "sys." not in str(caught.value)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "raw", [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 100_000 + b"]" * 100_000]
)
def test_hostile_nesting_is_a_format_error(name, raw):
    with pytest.raises(FormatError, match="nested"):
        MODELS[name][0](raw)
