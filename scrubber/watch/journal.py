"""The watcher's journal: every file it took, by content hash, and how far it got.

SQLite, written with synchronous=FULL so a state, once recorded, survives a crash or power loss.
The states follow the file: claimed (moved into work/), published (results in the outbox), done
(input archived), and the ends error and duplicate. Nothing in it is patient data: file names,
hashes, counts.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

CLAIMED, PUBLISHED, DONE, ERROR, DUPLICATE = "claimed", "published", "done", "error", "duplicate"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    token TEXT PRIMARY KEY,      -- the watcher's name for this taking of the file
    name TEXT NOT NULL,          -- the file name as it arrived
    sha256 TEXT,                 -- content hash, once read
    size INTEGER,
    state TEXT NOT NULL,
    result TEXT,                 -- the outbox folder, once published
    place TEXT,                  -- where the input ended (archive/..., error/...)
    detail TEXT,                 -- counts, or why it failed
    failures INTEGER NOT NULL DEFAULT 0,  -- scrubs that ended in an unexpected exception
    claimed_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS files_by_hash ON files (sha256, state);
"""


@dataclass(frozen=True)
class Record:
    token: str
    name: str
    sha256: str | None
    size: int | None
    state: str
    result: str | None
    place: str | None
    detail: str | None
    claimed_at: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class Journal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)  # autocommit: each write is its own transaction
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(files)")}
        if "failures" not in columns:  # a journal written before failures were counted
            self._db.execute("ALTER TABLE files ADD COLUMN failures INTEGER NOT NULL DEFAULT 0")

    def close(self) -> None:
        self._db.close()

    def claimed(self, token: str, name: str, size: int | None) -> None:
        now = _now()
        self._db.execute(
            "INSERT OR IGNORE INTO files (token, name, size, state, claimed_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            (token, name, size, CLAIMED, now, now),
        )

    def update(self, token: str, **values: object) -> None:
        columns = ", ".join(f"{key} = ?" for key in values)
        self._db.execute(f"UPDATE files SET {columns}, updated_at = ? WHERE token = ?",
                         (*values.values(), _now(), token))

    def failed(self, token: str, detail: str) -> int:
        """Count one more failed scrub of this file (durably, so the count holds across restarts);
        returns how many there have been."""
        self._db.execute("UPDATE files SET failures = failures + 1, detail = ?, updated_at = ? WHERE token = ?",
                         (detail, _now(), token))
        row = self._db.execute("SELECT failures FROM files WHERE token = ?", (token,)).fetchone()
        return int(row[0]) if row else 1

    def failures(self, token: str) -> int:
        row = self._db.execute("SELECT failures FROM files WHERE token = ?", (token,)).fetchone()
        return int(row[0]) if row else 0

    def get(self, token: str) -> Record | None:
        row = self._db.execute(
            "SELECT token, name, sha256, size, state, result, place, detail, claimed_at FROM files WHERE token = ?",
            (token,),
        ).fetchone()
        return Record(*row) if row else None

    def scrubbed_before(self, sha256: str, token: str) -> Record | None:
        """The earlier taking of a file with the same content whose results went out, if any."""
        row = self._db.execute(
            "SELECT token, name, sha256, size, state, result, place, detail, claimed_at FROM files "
            "WHERE sha256 = ? AND token != ? AND state IN (?, ?) ORDER BY claimed_at LIMIT 1",
            (sha256, token, PUBLISHED, DONE),
        ).fetchone()
        return Record(*row) if row else None

    def unfinished(self) -> list[Record]:
        rows = self._db.execute(
            "SELECT token, name, sha256, size, state, result, place, detail, claimed_at FROM files "
            "WHERE state IN (?, ?) ORDER BY claimed_at", (CLAIMED, PUBLISHED),
        ).fetchall()
        return [Record(*row) for row in rows]

    def counts(self) -> dict[str, int]:
        return dict(self._db.execute("SELECT state, COUNT(*) FROM files GROUP BY state").fetchall())
