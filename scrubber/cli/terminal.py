"""Text for a terminal or a log: what comes from a claim file or a file name is shown, never obeyed."""

from __future__ import annotations

import os

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: object) -> str:
    """`text` with every character a terminal would act on written as an escape: control characters
    (CR, LF, ESC, ...), the invisible ones (bidirectional overrides, line separators) and the bytes of a
    file name that are not UTF-8 (`\\x1b`, `\\r`, `\\u202e`, `\\xff`), so that a claim id or a file name
    can neither forge a line nor drive the terminal. Printable text, accents included, is unchanged."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(_escape(ch) for ch in text)


def _escape(ch: str) -> str:
    if ch.isprintable():
        return ch
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a file name that was not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def short(text: object, limit: int = 200) -> str:
    """The first line of `text`, escaped and cut to `limit` characters: one line in a message."""
    lines = str(text).strip().splitlines()
    first = printable(lines[0] if lines else "")
    return first if len(first) <= limit else first[: limit - 1] + "…"


def debugging() -> bool:
    """SCRUBBER_DEBUG=1: show the traceback of an internal error (for a bug report), not only its line."""
    return os.environ.get("SCRUBBER_DEBUG", "") not in ("", "0")
