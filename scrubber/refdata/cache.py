"""A per-user cache of the store's tables, indexed by code and NDC (SQLite), so that a run reads only
the rows its drug lines need instead of decompressing and indexing a quarter's tables.

    $XDG_CACHE_HOME/scrubber/refdata/<sha256 of the .csv.gz>-f<FORMAT>.sqlite   (else ~/.cache/scrubber/...)

A cache file is bound to the exact bytes of one store table (the table file is read and hashed on
every open: well under a millisecond) and to FORMAT, the cache layout of this code, so a revised,
replaced or damaged table, or another scrubber version, never finds a cache that does not belong to
it. The file is built on first use from the verified table (store.read_lines checks the manifest's
digest), under a temporary name renamed into place, so a reader never sees half of one. A file that
is not what its name promises (another format, another digest, not SQLite) is rebuilt, never used.
When the cache folder cannot be written, `open_table` returns None and the caller indexes the table
in memory, as without a cache.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import os
import sqlite3
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

from ..user_cache import cache_root
from .columns import COLUMNS, ndc11, ndc_of_line
from .errors import ReferenceDataError
from .store import SourceInfo, read_lines

FORMAT = 1  # raise when the layout below or what a line holds changes


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/scrubber/refdata, or ~/.cache/scrubber/refdata (user_cache.cache_root)."""
    return cache_root() / "refdata"


class CachedTable:
    """One source's rows, looked up in its cache file: `code` and `ndc` as lookup._Table's."""

    def __init__(self, info: SourceInfo, connection: sqlite3.Connection, path: Path) -> None:
        self.info = info
        self.columns = COLUMNS[info.kind]
        self._db = connection
        self._path = path
        self._memory: dict[tuple[str, str], list[str]] | None = None  # when the file failed after opening

    def _lines(self, column: str, value: str) -> list[str]:
        if self._memory is None:
            try:
                found = self._db.execute(f"SELECT line FROM lines WHERE {column} = ? ORDER BY n", (value,))
                return [line for (line,) in found.fetchall()]
            except sqlite3.ProgrammingError:
                # A lookup from another thread than the one that opened the file (SQLite refuses
                # it): the file is fine; answer from the store's table for the rest of this run.
                self._memory = _index(self.info, read_lines(self.info))
            except sqlite3.Error:
                # Damaged after it was opened and checked: drop it (the next run rebuilds it) and
                # answer from the store's table for the rest of this run.
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                with contextlib.suppress(OSError):
                    self._path.unlink()
                self._memory = _index(self.info, read_lines(self.info))
        return self._memory.get((column, value), [])

    def _parse(self, lines: list[str]) -> list[dict[str, str]]:
        return [dict(zip(self.columns, row, strict=True)) for row in csv.reader(lines)]

    def code(self, code: str) -> list[dict[str, str]]:
        return self._parse(self._lines("code", code))

    def ndc(self, digits: str) -> list[dict[str, str]]:
        return self._parse(self._lines("ndc", digits))


def _keys(info: SourceInfo, line: str) -> tuple[str, str | None]:
    """A table line's code (its first cell: a HCPCS code is never quoted) and, for the crosswalk,
    its NDC as 11 digits."""
    return line.split(",", 1)[0], ndc11(ndc_of_line(line)) if info.kind == "asp_crosswalk" else None


def _index(info: SourceInfo, lines: list[str]) -> dict[tuple[str, str], list[str]]:
    index: dict[tuple[str, str], list[str]] = {}
    for line in lines:
        code, ndc = _keys(info, line)
        index.setdefault(("code", code), []).append(line)
        if ndc is not None:
            index.setdefault(("ndc", ndc), []).append(line)
    return index


def open_table(info: SourceInfo) -> tuple[CachedTable | None, list[str] | None]:
    """The source's cached table, built first if need be. When the cache cannot be used (its folder
    cannot be written), (None, the table's verified lines) so the caller indexes them in memory.
    Raises ReferenceDataError for a table the store cannot give (unreadable, damaged)."""
    path = info.store / info.file
    try:
        compressed = path.read_bytes()
    except OSError as exc:
        raise ReferenceDataError(str(path), f"cannot be read ({exc.strerror or exc})") from None
    table_digest = hashlib.sha256(compressed).hexdigest()
    cached = cache_dir() / f"{table_digest}-f{FORMAT}.sqlite"
    if cached.is_file():
        connection = _connect(cached, table_digest, info)
        if connection is not None:
            return CachedTable(info, connection, cached), None
    lines = read_lines(info, compressed)  # verified against the manifest before anything is cached
    try:
        _build(cached, table_digest, info, lines)
    except (OSError, sqlite3.Error):
        return None, lines  # a read-only home, a full disk: index in memory, as without a cache
    connection = _connect(cached, table_digest, info)
    return (CachedTable(info, connection, cached), None) if connection is not None else (None, lines)


def _connect(path: Path, table_digest: str, info: SourceInfo) -> sqlite3.Connection | None:
    """The cache file opened read-only, or None (and the file removed) when it is not what its name
    promises: another format, another table, a damaged or foreign file."""
    connection = None
    try:
        # immutable: a cache file is never changed once renamed into place, so no locking is needed
        # (quote, not urllib.request's pathname2url: that module loads http, email and socket)
        connection = sqlite3.connect(f"file:{quote(str(path))}?mode=ro&immutable=1", uri=True)
        meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
        expected = {"format": str(FORMAT), "table_digest": table_digest, "content_digest": info.content_digest,
                    "kind": info.kind, "rows": str(info.rows)}
        if meta == expected and connection.execute("SELECT count(*) FROM lines").fetchone()[0] == info.rows:
            return connection
    except sqlite3.Error:
        pass
    if connection is not None:
        connection.close()
    with contextlib.suppress(OSError):
        path.unlink()
    return None


def _build(path: Path, table_digest: str, info: SourceInfo, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        connection = sqlite3.connect(temporary)
        try:
            # No journal and no syncs while it is built: the file is renamed into place only once
            # whole, and one damaged later (a power cut) is rebuilt (_connect).
            connection.execute("PRAGMA journal_mode = OFF")
            connection.execute("PRAGMA synchronous = OFF")
            with connection:
                connection.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
                connection.execute("CREATE TABLE lines (n INTEGER PRIMARY KEY, code TEXT, ndc TEXT, line TEXT)")
                connection.executemany("INSERT INTO lines VALUES (?, ?, ?, ?)",
                                       ((n, *_keys(info, line), line) for n, line in enumerate(lines)))
                connection.execute("CREATE INDEX by_code ON lines (code)")
                connection.execute("CREATE INDEX by_ndc ON lines (ndc) WHERE ndc IS NOT NULL")
                connection.executemany("INSERT INTO meta VALUES (?, ?)", [
                    ("format", str(FORMAT)), ("table_digest", table_digest), ("content_digest", info.content_digest),
                    ("kind", info.kind), ("rows", str(len(lines)))])
        finally:
            connection.close()
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _prune(path.parent)


def _prune(folder: Path) -> None:
    """Remove the cache files of other cache formats (an older scrubber's) and the temporary files of
    builds killed over an hour ago. Files of other tables stay: another store may still use them."""
    now = time.time()
    for entry in folder.iterdir():
        stale_format = entry.suffix == ".sqlite" and not entry.name.endswith(f"-f{FORMAT}.sqlite")
        with contextlib.suppress(OSError):
            if stale_format or (entry.name.endswith(".tmp") and now - entry.stat().st_mtime > 3600):
                entry.unlink()
