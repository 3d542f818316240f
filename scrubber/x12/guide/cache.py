"""The compiled guide tables, cached on disk so that start-up stays fast.

Compiling the 837P map with lxml takes a good part of a second; unpickling the tables takes
milliseconds. A cache file is keyed by what it was compiled from: the map file's SHA-256 and the
compiler's version (a pyx12 release with other maps, or a compiler that builds other tables, gets
a new file, never a stale one). The folder is $XDG_CACHE_HOME/scrubber (else ~/.cache/scrubber),
or $SCRUBBER_CACHE_DIR when set. When the folder cannot be written the tables are kept in memory
only; a cache file that does not unpickle into what was asked for is rebuilt, never trusted. Old
files are removed as user_cache.py says (not read for 30 days, when another is stored).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ...user_cache import forget_unused, read_regular

T = TypeVar("T")

_memory: dict[tuple[str, str, int], Any] = {}  # (kind, map file, version) -> the tables


def cache_dir() -> Path:
    explicit = os.environ.get("SCRUBBER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "scrubber"


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cached(kind: str, source: Path, version: int, build: Callable[[], T], expect: type) -> T:
    """The tables built by `build` from `source`, from memory, else from the cache folder, else
    built (and stored for the next process). `kind` names what is built (e.g. "loops");
    `expect` is the type the unpickled object must have."""
    # Within a process a map is read and hashed once: a map is package data, and the code that
    # reads the tables was imported with it. (Hashing both maps again for every validator made,
    # one a transaction set in the workers, was a fifth of a worker's time on a file of
    # one-claim sets.)
    key = (kind, str(source), version)
    if key in _memory:
        return _memory[key]
    digest = file_digest(source)
    file = cache_dir() / f"{kind}-{source.name}-{digest[:16]}-v{version}.pickle"
    value = _load(file, expect, digest)
    if value is None:
        value = build()
        _store(file, (digest, value))
        forget_unused(file.parent, f"{kind}-*.pickle")  # other maps, other compilers
    _memory[key] = value
    return value


def _load(file: Path, expect: type, digest: str) -> Any:
    try:
        stored = pickle.loads(read_regular(file))  # (not a FIFO or a device: it would block or never end)
    except FileNotFoundError:
        return None
    except Exception:
        return None
    if (not isinstance(stored, tuple) or len(stored) != 2 or stored[0] != digest
            or not isinstance(stored[1], expect)):
        return None
    return stored[1]


def _store(file: Path, value: Any) -> None:
    """Write atomically (a temporary file renamed): a reader never sees half a cache file.
    A folder that cannot be written is not an error: the tables stay in memory."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=file.name, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(value, f, pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, file)
    except (OSError, pickle.PicklingError, TypeError, AttributeError):  # a full disk, an unpicklable table
        with contextlib.suppress(OSError):
            os.unlink(tmp)
