"""RFC 3339 parse/format helpers."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asfaload.errors import AsfaloadError, FormatError
from asfaload.model.timestamps import format_rfc3339, parse_rfc3339, to_unix


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2025-06-01T10:11:12Z", datetime(2025, 6, 1, 10, 11, 12, tzinfo=UTC)),
        ("2025-06-01T10:11:12+00:00", datetime(2025, 6, 1, 10, 11, 12, tzinfo=UTC)),
        ("2025-06-01t10:11:12z", datetime(2025, 6, 1, 10, 11, 12, tzinfo=UTC)),
        ("2025-06-01 10:11:12Z", datetime(2025, 6, 1, 10, 11, 12, tzinfo=UTC)),
        ("2025-06-01T10:11:12.5Z", datetime(2025, 6, 1, 10, 11, 12, 500000, tzinfo=UTC)),
        (
            "2025-06-01T10:11:12.123456789Z",
            datetime(2025, 6, 1, 10, 11, 12, 123456, tzinfo=UTC),
        ),
        ("2025-06-01T12:11:12+02:00", datetime(2025, 6, 1, 10, 11, 12, tzinfo=UTC)),
        ("2025-06-01T00:00:00-05:30", datetime(2025, 6, 1, 5, 30, tzinfo=UTC)),
        ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)
def test_parse_valid(text, expected):
    got = parse_rfc3339(text)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2025-06-01",
        "2025-06-01T10:11:12",  # no offset
        "2025-06-01T10:11Z",
        "2025-06-01T10:11:12.Z",
        "2025-06-01T10:11:12.1234567890Z",  # 10 fraction digits
        "2025-06-01T10:11:12 UTC",
        "2025-06-01T10:11:12+0000",
        "2025-06-01T10:11:12+24:00",
        "2025-06-01T10:11:60Z",  # leap second: not representable, refused
        "2025-13-01T10:11:12Z",
        "2023-02-29T00:00:00Z",
        "2025-06-01T25:00:00Z",
        " 2025-06-01T10:11:12Z",
        "2025-06-01T10:11:12Z\n",
        "２０２５-06-01T10:11:12Z",  # non-ASCII digits
        "0001-01-01T00:00:00+01:00",  # underflows datetime
    ],
)
def test_parse_invalid(text):
    with pytest.raises(FormatError):
        parse_rfc3339(text)


def test_parse_non_string():
    with pytest.raises(FormatError):
        parse_rfc3339(1700000000)  # type: ignore[arg-type]


def test_format():
    assert format_rfc3339(0) == "1970-01-01T00:00:00Z"
    assert format_rfc3339(1700000000) == "2023-11-14T22:13:20Z"
    aware = datetime(2025, 1, 2, 3, 4, 5, 999999, tzinfo=timezone(timedelta(hours=1)))
    assert format_rfc3339(aware) == "2025-01-02T02:04:05Z"
    with pytest.raises(FormatError):
        format_rfc3339(datetime(2025, 1, 1))
    with pytest.raises(FormatError):
        format_rfc3339(True)
    with pytest.raises(FormatError):
        format_rfc3339(10**20)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-(10**10), max_value=253402300799))
def test_format_parse_round_trip(seconds):
    with contextlib.suppress(FormatError):  # before year 1 on some platforms
        text = format_rfc3339(seconds)
        assert to_unix(parse_rfc3339(text)) == seconds


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_parse_arbitrary_text_raises_only_our_errors(text):
    with contextlib.suppress(AsfaloadError):
        parse_rfc3339(text)
