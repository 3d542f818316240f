"""The per-user cache folder, and values derived from a file kept there so that a run need not derive
them again (the ICD-10-CM table's index: 0.1 s of every run that reads a diagnosis).

    $XDG_CACHE_HOME/scrubber/      (~/.cache/scrubber/ without it; a relative XDG_CACHE_HOME is ignored)

A derived value is keyed by the sha256 of the bytes it is derived from and by the format of the code
that derives it, both in its file name and inside it: a changed source or another scrubber version
never finds a value that is not its own. A file that cannot be read back as the value it names is
derived again and replaced; when the folder cannot be written, the value is derived in memory.
Only regular files are read (a FIFO or a device put there would block a run or never end), and a
value no run has read for 30 days is removed when another is stored beside it (each edited rule
file and each release leaves one behind). Nothing here imports the rest of the package (the rules,
the reference data and the guide tables use it).
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import pickle
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

CACHE_ENV = "XDG_CACHE_HOME"
# A cached value not read for this long is removed when another is stored in its folder; a value
# that is read has its modification time brought up to date once a day (a read-only cache: never).
UNUSED_FOR = 30 * 86_400
_MARK_USED_AFTER = 86_400


class Codec(Protocol):
    """How a value is kept in its file: the marshal module (plain data) or the pickle module."""

    __name__: str

    def loads(self, data: bytes, /) -> Any: ...

    def dumps(self, value: Any, /) -> bytes: ...


def cache_root() -> Path:
    """$XDG_CACHE_HOME/scrubber, or ~/.cache/scrubber (a relative XDG_CACHE_HOME is ignored, as the
    XDG specification asks)."""
    base = os.environ.get(CACHE_ENV, "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "scrubber"


def derived(kind: str, source: bytes, version: int, build: Callable[[], Any],
            valid: Callable[[Any], bool], *, codec: Codec = marshal) -> Any:
    """The value `build` derives from `source` (marshal-able: str, numbers, lists, tuples, dicts,
    sets; or, with `codec=pickle`, what pickle stores, such as dates), read from the cache when a file
    for these bytes and `version` is there and `valid` accepts what it holds, else built and stored
    (when the folder can be written)."""
    key = hashlib.sha256(source).hexdigest()
    path = cache_root() / kind / f"{key}-v{version}.{codec.__name__}"
    try:
        stored = codec.loads(read_regular(path))
        if isinstance(stored, tuple) and len(stored) == 3 and stored[:2] == (key, version) and valid(stored[2]):
            return stored[2]
    except Exception:
        pass  # none yet, or not what its name promises (a damaged pickle raises any error): derived again below
    value = build()
    with contextlib.suppress(OSError, ValueError, pickle.PicklingError):
        _write(path, codec.dumps((key, version, value)))
        forget_unused(path.parent, f"*-v*.{codec.__name__}")
    return value


def read_regular(path: Path) -> bytes:
    """The bytes of the cache file `path`, which must be a regular file (a link is not followed: the
    cache makes none). Raises OSError otherwise. Marks the file used (see UNUSED_FOR)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    handle = os.open(path, flags)  # (a FIFO opens at once without a writer, and is refused below)
    with open(handle, "rb") as file:
        status = os.fstat(handle)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{path} is not a regular file")
        if time.time() - status.st_mtime > _MARK_USED_AFTER:
            with contextlib.suppress(OSError, NotImplementedError):
                os.utime(handle)
        return file.read()


def forget_unused(folder: Path, pattern: str) -> None:
    """Remove the cache files in `folder` matching `pattern` that no run has read for UNUSED_FOR."""
    oldest = time.time() - UNUSED_FOR
    with contextlib.suppress(OSError):
        for entry in folder.glob(pattern):
            with contextlib.suppress(OSError):
                if entry.lstat().st_mtime < oldest:
                    entry.unlink()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)  # whole or not at all: a reader never sees half a file
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
