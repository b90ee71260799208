"""RFC 3339 timestamps: one strict parser and one writer for the whole project.

- :func:`parse_rfc3339` accepts ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)``: ``T`` may also be
  ``t`` or a space and ``Z`` may be ``z`` (RFC 3339, section 5.6), the fraction may have 1 to 9
  digits (digits beyond microseconds are truncated in the returned datetime; keep the original
  string when it matters, as the model classes do). Anything else, including a missing offset,
  leap second 60 or an out-of-range date, raises :class:`~asfaload.errors.FormatError`.
  The result is always timezone-aware and in UTC.
- :func:`format_rfc3339` writes ``YYYY-MM-DDTHH:MM:SSZ`` from Unix seconds (or an aware datetime,
  truncated to the second): the form every file we derive uses, so the hook can recompute it
  from the commit time.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from ..errors import FormatError

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 date-time into an aware UTC datetime, or raise FormatError."""
    if not isinstance(value, str):
        raise FormatError(f"Invalid timestamp: expected a string, got {type(value).__name__}")
    m = _RFC3339.fullmatch(value)
    if m is None:
        raise FormatError(f"Invalid RFC 3339 timestamp: {value[:64]!r}")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7) or ""
    micro = int((frac + "000000")[:6]) if frac else 0
    if m.group(8):
        tz = UTC
    else:
        off_h, off_m = int(m.group(10)), int(m.group(11))
        if off_h > 23 or off_m > 59:
            raise FormatError(f"Invalid RFC 3339 timestamp offset: {value[:64]!r}")
        delta = timedelta(hours=off_h, minutes=off_m)
        tz = timezone(-delta if m.group(9) == "-" else delta)
    try:
        local = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise FormatError(f"Invalid RFC 3339 timestamp: {value[:64]!r}") from None


def format_rfc3339(when: int | datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` for Unix seconds or an aware datetime (sub-seconds dropped)."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise FormatError("Cannot format a naive datetime (no timezone)")
        dt = when.astimezone(UTC)
    elif isinstance(when, int) and not isinstance(when, bool):
        try:
            dt = datetime.fromtimestamp(when, UTC)
        except (ValueError, OverflowError, OSError):
            raise FormatError(f"Unix time out of range: {when}") from None
    else:
        raise FormatError(f"Cannot format {type(when).__name__} as a timestamp")
    # Not strftime: it does not zero-pad years below 1000 on every platform.
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}Z"
    )


def to_unix(dt: datetime) -> int:
    """Whole Unix seconds of an aware datetime (floor)."""
    if dt.tzinfo is None:
        raise FormatError("Cannot convert a naive datetime (no timezone)")
    return int((dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(seconds=1))


def now_unix() -> int:
    """The current Unix time in whole seconds."""
    return to_unix(datetime.now(UTC))
