"""What the run has seen so far: the drug doses of the claims that went out, per patient.

Quantity limits over a window (U008) and cycle frequency (U009) look across claims. Claims are
checked in input order, so a claim is held against the ones before it, in this file and in the
files before it in the same run. Only claims that go out count: a rejected claim is not billed.

The doses live in a private temporary SQLite database (on disk once it outgrows a small cache),
not in Python objects: a file of 100,000 patients would otherwise make memory grow with the file,
where the scrub keeps it to one transaction set.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

_COMMIT_EVERY = 2000


@dataclass(frozen=True, slots=True)
class Dose:
    drug: str
    code: str
    date: dt.date
    units: Decimal
    claim_id: str
    modifiers: str = ""  # the line's modifiers, sorted and joined: what makes two lines the same


def _patient(key: tuple[str, ...]) -> int:
    """A compact, stable number for a patient (the first 8 bytes of a hash of who they are)."""
    digest = hashlib.blake2b("\x1f".join(key).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class RunHistory:
    def __init__(self) -> None:
        # "" opens a private temporary database, deleted when closed; it spills to disk past its cache.
        self._db = sqlite3.connect("", check_same_thread=False)
        self._db.execute("PRAGMA cache_size = -4096")  # KiB: 4 MiB of pages in memory at most
        self._db.execute("CREATE TABLE doses (patient INTEGER, drug TEXT, code TEXT, day INTEGER, units TEXT, "
                         "claim TEXT, modifiers TEXT)")
        self._db.execute("CREATE INDEX doses_by_patient ON doses (patient)")
        self._pending = 0

    def doses(self, patient: tuple[str, ...]) -> list[Dose]:
        rows = self._db.execute("SELECT drug, code, day, units, claim, modifiers FROM doses WHERE patient = ?",
                                (_patient(patient),)).fetchall()
        return [Dose(drug, code, dt.date.fromordinal(day), Decimal(units), claim, modifiers)
                for drug, code, day, units, claim, modifiers in rows]

    def record(self, patient: tuple[str, ...], doses: list[Dose]) -> None:
        if not doses:
            return
        key = _patient(patient)
        self._db.executemany("INSERT INTO doses VALUES (?, ?, ?, ?, ?, ?, ?)",
                             [(key, d.drug, d.code, d.date.toordinal(), str(d.units), d.claim_id, d.modifiers)
                              for d in doses])
        self._pending += len(doses)
        if self._pending >= _COMMIT_EVERY:
            self._db.commit()
            self._pending = 0

    def knows_any(self, patients: Iterable[tuple[str, ...]]) -> bool:
        """Whether any of these patients has doses recorded (one query for many patients)."""
        keys = list({_patient(patient) for patient in patients})
        for start in range(0, len(keys), 500):  # (SQLite's limit on the parameters of one statement)
            chunk = keys[start : start + 500]
            found = self._db.execute(f"SELECT 1 FROM doses WHERE patient IN ({','.join('?' * len(chunk))}) LIMIT 1",
                                     chunk).fetchone()
            if found is not None:
                return True
        return False

    def record_all(self, records: Iterable[tuple[tuple[str, ...], list[Dose]]]) -> None:
        """`record` for each (patient, doses), in one statement."""
        rows = [(_patient(patient), d.drug, d.code, d.date.toordinal(), str(d.units), d.claim_id, d.modifiers)
                for patient, doses in records for d in doses]
        if not rows:
            return
        self._db.executemany("INSERT INTO doses VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        self._pending += len(rows)
        if self._pending >= _COMMIT_EVERY:
            self._db.commit()
            self._pending = 0

    def close(self) -> None:
        self._db.close()
