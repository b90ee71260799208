"""Strict JSON reading and writing shared by every model parser; :func:`loads` is also the one
JSON reader of request bodies and forge answers (``asfaload.model.parse_json``).

Every file we parse may come from an attacker (a forge, a pushed commit, a request body), so the
reader turns *every* failure into the caller's :class:`~asfaload.errors.FormatError` subclass:
bad UTF-8, bad JSON, duplicate object keys, NaN/Infinity, absurd nesting or giant integers.
Nesting past what the decoder can recurse into is its ``RecursionError``, caught here; integer
literals are measured before conversion, so a long one costs no quadratic conversion and needs
no process-wide int-str digit limit.
Duplicate keys are refused because two JSON parsers may disagree on which value wins, and these
bytes are signed: a verifier must see exactly what the signers saw.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NoReturn, cast

from ..errors import FormatError, one_line

# Deep enough for any real document (ours nest at most ~6 levels), shallow enough that
# re-serialising preserved unknown fields can never hit Python's recursion limit.
MAX_DEPTH = 64
# Integers beyond this are never meaningful here, and very large ones make int<->str raise.
_MAX_INT_BITS = 4096
# Decimal digits of the largest such integer: a longer literal is refused unconverted.
_MAX_INT_DIGITS = len(str(1 << _MAX_INT_BITS))

ErrorFactory = Callable[[str], FormatError]
JSONDict = dict[str, Any]
EMPTY: Mapping[str, Any] = MappingProxyType({})
# The two mapping types a model actually holds: checked by type first, because an ABC
# isinstance check costs microseconds and model constructors run on every write.
_PLAIN_MAPPINGS = (dict, MappingProxyType)


def fail(err: ErrorFactory, message: str) -> NoReturn:
    raise err(message)


def _reject_constant(name: str) -> NoReturn:
    # Raised inside json.loads; converted below.
    raise ValueError(f"non-standard JSON constant {name}")


def _parse_int(literal: str) -> int:
    # Raised inside json.loads; converted below.
    if len(literal) > _MAX_INT_DIGITS + 1:  # + 1 for a minus sign
        raise ValueError("integer too large")
    return int(literal)


def _pairs_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def loads(raw: bytes, err: ErrorFactory) -> Any:
    """Decode ``raw`` (UTF-8, optional BOM) into a JSON value, or raise ``err(message)``."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        fail(err, f"expected bytes, got {type(raw).__name__}")
    try:
        text = bytes(raw).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        fail(err, f"not valid UTF-8 (byte {exc.start})")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs_without_duplicates,
            parse_constant=_reject_constant,
            parse_int=_parse_int,
        )
    except json.JSONDecodeError as exc:
        fail(err, f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        fail(err, "invalid JSON: nested too deeply")
    except ValueError as exc:  # duplicate keys, NaN/Infinity, integer too large
        fail(err, f"invalid JSON: {one_line(str(exc))}")
    check_value(value, err)
    return value


def check_value(value: object, err: ErrorFactory, what: str = "document") -> None:
    """Check that ``value`` is a plain, finite, bounded JSON value (iteratively: no recursion).

    from_dict callers may hand us anything (tuples, NaN, non-str keys, cycles); this makes
    sure what we keep can always be serialised again.
    """
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            fail(err, f"{what} is nested more than {MAX_DEPTH} levels deep")
        if item is None or isinstance(item, bool | str):
            continue
        if isinstance(item, int):
            if item.bit_length() > _MAX_INT_BITS:
                fail(err, f"{what} contains an integer that is too large")
            continue
        if isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                fail(err, f"{what} contains a non-finite number")
            continue
        if isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
            continue
        if isinstance(item, dict):
            for k, v in item.items():
                if not isinstance(k, str):
                    fail(err, f"{what} has a non-string object key")
                stack.append((v, depth + 1))
            continue
        fail(err, f"{what} contains a non-JSON value of type {type(item).__name__}")


def dumps_pretty(value: object, *, sort_keys: bool = False) -> bytes:
    """Pretty JSON: 2-space indent, ASCII only (never fails on lone surrogates), final newline.

    Byte for byte ``json.dumps(value, indent=2, ensure_ascii=True, sort_keys=sort_keys)``
    (a property test holds the two together), written out here because the standard library
    drops to its pure-Python encoder whenever ``indent`` is set: a tenth of the mirror writer's
    time went into re-serialising signature envelopes. Anything outside plain JSON values
    (non-string keys, tuples, subclasses) is left to ``json.dumps`` itself.
    """
    out: list[str] = []
    try:
        _pretty(value, "\n", sort_keys, out)
    except _Unusual:
        text = json.dumps(value, indent=2, ensure_ascii=True, sort_keys=sort_keys)
    else:
        text = "".join(out)
    return (text + "\n").encode()


def _first(item: tuple[object, object]) -> str:
    return cast(str, item[0])


class _Unusual(Exception):
    """A value the fast path does not spell exactly as ``json.dumps`` would."""


_encode_str = json.encoder.encode_basestring_ascii  # the C implementation when available


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == float("inf"):
        return "Infinity"
    if value == -float("inf"):
        return "-Infinity"
    return float.__repr__(value)


def _pretty(value: object, newline: str, sort_keys: bool, out: list[str]) -> None:
    kind = type(value)
    if kind is str:
        out.append(_encode_str(cast(str, value)))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif kind is int:
        out.append(int.__repr__(cast(int, value)))
    elif kind is float:
        out.append(_float(cast(float, value)))
    elif kind is dict:
        items = cast(dict[object, object], value).items()
        if not items:
            out.append("{}")
            return
        if any(type(k) is not str for k, _ in items):
            raise _Unusual
        inner = newline + "  "
        out.append("{")
        sep = inner
        for k, v in sorted(items, key=_first) if sort_keys else items:
            out.append(sep)
            out.append(_encode_str(cast(str, k)))
            out.append(": ")
            _pretty(v, inner, sort_keys, out)
            sep = "," + inner
        out.append(newline + "}")
    elif kind is list:
        elements = cast(list[object], value)
        if not elements:
            out.append("[]")
            return
        inner = newline + "  "
        out.append("[")
        sep = inner
        for v in elements:
            out.append(sep)
            _pretty(v, inner, sort_keys, out)
            sep = "," + inner
        out.append(newline + "]")
    else:
        raise _Unusual


# --- typed field access ------------------------------------------------------------------------
def as_object(value: object, err: ErrorFactory, where: str) -> JSONDict:
    if not isinstance(value, dict):
        fail(err, f"{where} must be a JSON object, got {type_name(value)}")
    for k in value:
        if not isinstance(k, str):
            fail(err, f"{where} has a non-string key")
    return value


def as_list(value: object, err: ErrorFactory, where: str) -> list[Any]:
    if not isinstance(value, list):
        fail(err, f"{where} must be a JSON array, got {type_name(value)}")
    return value


def as_str(value: object, err: ErrorFactory, where: str) -> str:
    if not isinstance(value, str):
        fail(err, f"{where} must be a string, got {type_name(value)}")
    return value


def as_int(value: object, err: ErrorFactory, where: str) -> int:
    # bool is an int subclass in Python; `true` is not a number in JSON.
    if isinstance(value, bool) or not isinstance(value, int):
        fail(err, f"{where} must be an integer, got {type_name(value)}")
    return value


def require(obj: Mapping[str, Any], key: str, err: ErrorFactory, where: str) -> Any:
    if key not in obj:
        fail(err, f"{where} is missing the field {key!r}")
    return obj[key]


def unrecognized(obj: Mapping[str, Any], known: tuple[str, ...]) -> Mapping[str, Any]:
    """The fields of ``obj`` we do not model, kept (read-only) so to_dict can re-emit them."""
    extra = {k: v for k, v in obj.items() if k not in known}
    return MappingProxyType(extra) if extra else EMPTY


def freeze_unrecognized(
    extra: Mapping[str, Any], known: tuple[str, ...], err: ErrorFactory, where: str
) -> Mapping[str, Any]:
    """Validate an ``unrecognized`` mapping given to a constructor; return a read-only copy."""
    if type(extra) not in _PLAIN_MAPPINGS and not isinstance(extra, Mapping):
        fail(err, f"{where}: unrecognized fields must be a mapping")
    copy = dict(extra)
    check_value(copy, err, where)
    clash = sorted(set(copy) & set(known))
    if clash:
        fail(err, f"{where}: unrecognized fields shadow known fields {clash}")
    return MappingProxyType(copy) if copy else EMPTY


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def is_blank(raw: bytes) -> bool:
    """True for empty or whitespace-only bytes (read as an empty document, as upstream writes a fresh one)."""
    return not bytes(raw).strip()


def empty_mapping() -> Mapping[str, Any]:
    """default_factory for ``unrecognized`` fields (dataclasses refuse a mappingproxy default)."""
    return EMPTY
