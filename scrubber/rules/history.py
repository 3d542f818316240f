"""What the run has seen so far: the drug doses of the claims that went out, per patient.

Quantity limits over a window (U008) and cycle frequency (U009) look across claims. Claims are
checked in input order, so a claim is held against the ones before it, in this file and in the
files before it in the same run. Only claims that go out count: a rejected claim is not billed.

The doses live in a private temporary SQLite database (on disk once it outgrows a small cache),
not in Python objects: a file of 100,000 patients would otherwise make memory grow with the file,
where the scrub keeps it to one transaction set.

Most claims are a patient's first in the run: a small Bloom filter of the patients recorded (1 MiB,
whatever the size of the run) answers those without asking SQLite, and the doses recorded wait in
a short list until a query could need them, to be inserted many at a time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import pickle
import sqlite3
from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

_COMMIT_EVERY = 2000
_BLOOM_BITS = 1 << 23  # 1 MiB: about 3% false positives (a query for nothing) at 1,000,000 patients


class Dose(NamedTuple):
    """One dose of a drug line. (A named tuple: made for every drug line of every claim, and a
    frozen dataclass costs several times as much to make.)"""

    drug: str
    code: str
    date: dt.date
    units: Decimal
    claim_id: str
    modifiers: str = ""  # the line's modifiers, sorted and joined: what makes two lines the same


# A dose as the history stores it: patient key, drug, code, day (ordinal), units, claim, modifiers.
Row = tuple[int, str, str, int, str, str, str]


def _row(key: int, dose: Dose) -> Row:
    return (key, dose.drug, dose.code, dose.date.toordinal(), str(dose.units), dose.claim_id, dose.modifiers)


def _patient(key: tuple[str, ...]) -> int:
    """A compact, stable number for a patient (the first 8 bytes of a hash of who they are)."""
    digest = hashlib.blake2b("\x1f".join(key).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_BLOOM_MASK = _BLOOM_BITS - 1
# Parts whose rows may wait unread (record_pickled): a few sets' keys and pickled rows (about 1 MB
# a set of 5,000 claims).
_UNREAD_PARTS = 4


def _bloom_bits(key: int) -> tuple[int, int, int]:
    """Three bits of the Bloom filter for a patient's key, from three parts of its hash."""
    key &= 0xFFFF_FFFF_FFFF_FFFF
    return key & _BLOOM_MASK, (key >> 23) & _BLOOM_MASK, (key >> 41) & _BLOOM_MASK


def _open_database() -> sqlite3.Connection:
    # "" opens a private temporary database, deleted when closed; it spills to disk past its cache.
    db = sqlite3.connect("", check_same_thread=False)
    # KiB of pages in memory at most. The cache fills as the history grows: 4 MiB of it made the
    # main process of a --jobs run 4 MiB larger at 100,000 claims than at 10,000 (53.4 against
    # 49.4 MiB at 512 KiB, the same CPU time); the pages past it are in the OS's file cache.
    db.execute("PRAGMA cache_size = -512")
    # No rollback journal: nothing is ever rolled back, and a database that dies with the run has
    # nothing to recover. Past the cache, the journal's copies of the index's pages cost about a
    # third of every insert (13 against 20 us a claim at 100,000 patients, bench of RunHistory alone).
    db.execute("PRAGMA journal_mode = OFF")
    db.execute("CREATE TABLE doses (patient INTEGER, drug TEXT, code TEXT, day INTEGER, units TEXT, "
               "claim TEXT, modifiers TEXT)")
    db.execute("CREATE INDEX doses_by_patient ON doses (patient)")
    return db


class RunHistory:
    def __init__(self) -> None:
        # The database is made when first written or asked (_db): a small part of a run (a set of a
        # few claims in a worker) answers from its Bloom filter and its pending rows alone, and
        # making one cost about 0.8 ms, more than checking a claim.
        self._database: sqlite3.Connection | None = None
        self._pending = 0
        self._rows: list[tuple[object, ...]] = []  # recorded, not yet inserted
        self._recorded = bytearray(_BLOOM_BITS // 8)  # the Bloom filter of the patients recorded
        self._any_recorded = False  # (a run's first part asks an empty history: no hashing)
        # Parts recorded as their workers sent them (record_pickled), not read yet: their
        # patients' keys, and their rows pickled.
        self._unread: list[tuple[list[int], bytes]] = []
        self._last: tuple[tuple[str, ...], int] | None = None  # the last patient hashed (asked, then recorded)
        # Rows recorded before they are inserted (a query inserts what waits first; `flush`, at a
        # moment with nothing else to do, inserts them all).
        self.insert_at = _COMMIT_EVERY

    def doses(self, patient: tuple[str, ...]) -> list[Dose]:
        if self._unread:
            self._read_unread()
        key = self._key(patient)
        if not self._maybe_recorded(key):
            return []  # never recorded: no query
        self._insert()
        rows = self._db.execute("SELECT drug, code, day, units, claim, modifiers FROM doses WHERE patient = ?",
                                (key,)).fetchall()
        return [Dose(drug, code, dt.date.fromordinal(day), Decimal(units), claim, modifiers)
                for drug, code, day, units, claim, modifiers in rows]

    def record(self, patient: tuple[str, ...], doses: list[Dose]) -> None:
        if not doses:
            return
        key = self._key(patient)
        self.record_rows([key], [_row(key, d) for d in doses])

    def record_rows(self, keys: Iterable[int], rows: list[Row]) -> None:
        """Record doses as a part's history stored them (LocalHistory.rows): `keys` are the
        patients' keys, `rows` their doses as stored."""
        if self._unread:
            self._read_unread()
        self._record_rows(keys, rows)

    def record_pickled(self, keys: list[int], rows: bytes) -> None:
        """`record_rows` for a part whose rows its worker pickled: they are read, and its keys put
        in the Bloom filter, only when the history is next written, asked for a patient's doses or
        flushed. `knows_any_key` looks in the keys themselves. So the last part of a run, spliced
        after every worker is done, is never read, and the part before it only if the last asks
        for one of its patients (5 ms each of the main process's splices, at 5,000 claims)."""
        self._unread.append((keys, rows))
        if len(self._unread) > _UNREAD_PARTS:
            self._read_unread()

    def _read_unread(self) -> None:
        unread, self._unread = self._unread, []
        for keys, rows in unread:  # (in the order they were recorded)
            self._record_rows(keys, pickle.loads(rows))

    def _record_rows(self, keys: Iterable[int], rows: list[Row]) -> None:
        recorded = self._recorded
        keys = keys if isinstance(keys, list) else list(keys)
        for key in keys:
            for bit in _bloom_bits(key):
                recorded[bit >> 3] |= 1 << (bit & 7)
        if keys:
            self._any_recorded = True
        self._rows.extend(rows)
        if len(self._rows) >= self.insert_at:
            self._insert()

    def flush(self) -> None:
        """Insert the rows recorded so far (a moment with nothing else to do)."""
        if self._unread:
            self._read_unread()
        self._insert()

    def take_part(self, part: PartHistory) -> bool:
        """Record the doses of a part of the run scrubbed against a history of its own (a set, a
        file), unless a patient whose earlier doses the part's checks asked for has doses here
        (False: the part's findings may not hold, and nothing is recorded)."""
        if self.knows_any_key(part.asked):
            return False
        self.record_rows(part.keys, part.rows)
        return True

    def knows_any(self, patients: Iterable[tuple[str, ...]]) -> bool:
        """Whether any of these patients has doses recorded (one query for many patients)."""
        return self.knows_any_key({_patient(patient) for patient in patients})

    def knows_any_key(self, patients: Iterable[int]) -> bool:
        """`knows_any` for the patients' keys (LocalHistory.asked)."""
        asked = set(patients)
        if any(not asked.isdisjoint(keys) for keys, _ in self._unread):
            return True  # (each key recorded came with doses)
        if not self._any_recorded:
            return False
        keys = [key for key in asked if self._maybe_recorded(key)]
        if not keys:
            return False  # none was ever recorded: no query
        self._insert()
        for start in range(0, len(keys), 500):  # (SQLite's limit on the parameters of one statement)
            chunk = keys[start : start + 500]
            found = self._db.execute(f"SELECT 1 FROM doses WHERE patient IN ({','.join('?' * len(chunk))}) LIMIT 1",
                                     chunk).fetchone()
            if found is not None:
                return True
        return False

    def record_all(self, records: Iterable[tuple[tuple[str, ...], list[Dose]]]) -> None:
        """`record` for each (patient, doses)."""
        for patient, doses in records:
            self.record(patient, doses)

    def _insert(self) -> None:
        if not self._rows:
            return
        self._db.executemany("INSERT INTO doses VALUES (?, ?, ?, ?, ?, ?, ?)", self._rows)
        self._pending += len(self._rows)
        self._rows = []
        if self._pending >= _COMMIT_EVERY:
            self._db.commit()
            self._pending = 0

    def _key(self, patient: tuple[str, ...]) -> int:
        # A claim's patient is asked for, then recorded: hash them once.
        last = self._last
        if last is not None and last[0] == patient:
            return last[1]
        key = _patient(patient)
        self._last = (patient, key)
        return key

    def _maybe_recorded(self, key: int) -> bool:
        recorded = self._recorded
        first, second, third = _bloom_bits(key)
        return bool(recorded[first >> 3] & (1 << (first & 7)) and recorded[second >> 3] & (1 << (second & 7))
                    and recorded[third >> 3] & (1 << (third & 7)))

    @property
    def _db(self) -> sqlite3.Connection:
        db = self._database
        if db is None:
            db = self._database = _open_database()
        return db

    def close(self) -> None:
        if self._database is not None:
            self._database.close()


class LocalHistory(RunHistory):
    """The history of one part of a run alone (a transaction set, a file) scrubbed in a worker: it
    remembers whose earlier doses were asked for and what was recorded, so the main process can
    tell whether the part's findings hold against the whole run's history (output/by_sets.py,
    output/by_files.py), and record the part's doses there. Both are kept as the run's history
    stores them (patients' keys, rows): the main process then neither hashes the patients again
    nor rebuilds the doses (0.06-0.1 s of the main process's splices at 10,000 claims)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: set[int] = set()  # the keys of the patients whose earlier doses were asked for
        self.keys: list[int] = []  # the keys of the patients recorded, in order
        self.rows: list[Row] = []  # their doses, as stored

    def doses(self, patient: tuple[str, ...]) -> list[Dose]:
        self.asked.add(self._key(patient))
        return super().doses(patient)

    def record_rows(self, keys: Iterable[int], rows: list[Row]) -> None:
        keys = list(keys)
        self.keys.extend(keys)
        self.rows.extend(rows)
        super().record_rows(keys, rows)

    def part(self) -> PartHistory:
        return PartHistory(self.asked, self.keys, self.rows)


class PartHistory(NamedTuple):
    """What a LocalHistory hands to the main process (pickled): see RunHistory.take_part."""

    asked: set[int]
    keys: list[int]
    rows: list[Row]
