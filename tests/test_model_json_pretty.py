"""The model's pretty JSON writer is byte for byte the standard library's indent=2 output."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from asfaload.model._json import dumps_pretty

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


def reference(value: object, sort_keys: bool) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=True, sort_keys=sort_keys) + "\n").encode()


@settings(max_examples=400)
@given(values, st.booleans())
def test_same_bytes_as_json_dumps(value: object, sort_keys: bool) -> None:
    assert dumps_pretty(value, sort_keys=sort_keys) == reference(value, sort_keys)


def test_unusual_values_are_left_to_json_dumps() -> None:
    for value in ({1: "a", "b": (1, 2)}, [(1, 2)], {"t": (True, None)}, {2.5: 1}):
        assert dumps_pretty(value) == reference(value, False)
    assert dumps_pretty({"k": "\ud800é\n"}) == reference({"k": "\ud800é\n"}, False)
