"""A digest drawn as OpenSSH's "randomart" (the drunken bishop), for people to compare by eye.

Two hex strings of 128 digits are hard to compare; two small pictures are easy. The algorithm
and its output are OpenSSH's ``fingerprint_randomart`` (``ssh-keygen -lv``), so one digest
gives the same picture here and there: a 17x9 field, the bishop starts in its centre, and each
input byte, least significant bits first, makes four diagonal moves (bit 0: right if set, else
left; bit 1: down if set, else up), stopping at the walls. A cell shows how often it was
visited with `` .o+=*BOX@%&#/^`` (capped at ``^``); ``S`` marks the start and ``E`` the end.
The top border carries a title and the bottom one the hash name, both in brackets.
"""

from __future__ import annotations

WIDTH = 17
HEIGHT = 9
_SYMBOLS = " .o+=*BOX@%&#/^SE"
_START = len(_SYMBOLS) - 2
_END = len(_SYMBOLS) - 1


def _border(label: str) -> str:
    # As OpenSSH, which formats the label into a buffer of WIDTH bytes: at most WIDTH - 1
    # characters are kept, so a long label is cut and the frame keeps its width.
    tag = f"[{label}]"[: WIDTH - 1] if label else ""
    left = (WIDTH - len(tag)) // 2
    return "+" + "-" * left + tag + "-" * (WIDTH - left - len(tag)) + "+"


def randomart(digest: bytes, title: str = "", hash_name: str = "SHA512") -> str:
    """The picture of ``digest``: 11 lines of 19 characters, no trailing newline."""
    field = [[0] * HEIGHT for _ in range(WIDTH)]
    x, y = WIDTH // 2, HEIGHT // 2
    for byte in digest:
        for _ in range(4):
            x = min(max(x + (1 if byte & 1 else -1), 0), WIDTH - 1)
            y = min(max(y + (1 if byte & 2 else -1), 0), HEIGHT - 1)
            if field[x][y] < _START - 1:
                field[x][y] += 1
            byte >>= 2
    field[WIDTH // 2][HEIGHT // 2] = _START
    field[x][y] = _END
    rows = ["|" + "".join(_SYMBOLS[field[c][r]] for c in range(WIDTH)) + "|" for r in range(HEIGHT)]
    return "\n".join([_border(title), *rows, _border(hash_name)])
