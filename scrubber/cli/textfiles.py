"""Text files a user hands the scrubber (code tables): a byte that is not UTF-8 is named with its place."""

from __future__ import annotations

from pathlib import Path


def utf8_problem(path: Path) -> str | None:
    """What keeps `path` from being read as UTF-8 text (the byte and its offset), or None when nothing does.
    The code tables are read lazily, deep in the rules, where the decoder no longer knows the file."""
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not UTF-8 text: byte 0x{exc.object[exc.start]:02x} at byte offset {exc.start} cannot be read"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    return None
