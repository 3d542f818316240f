"""What the run has seen so far: the drug doses of the claims that went out, per patient.

Quantity limits over a window (U008) and cycle frequency (U009) look across claims. Claims are
checked in input order, so a claim is held against the ones before it, in this file and in the
files before it in the same run. Only claims that go out count: a rejected claim is not billed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Dose:
    drug: str
    code: str
    date: dt.date
    units: Decimal
    claim_id: str


class RunHistory:
    def __init__(self) -> None:
        self._doses: dict[tuple[str, ...], list[Dose]] = defaultdict(list)

    def doses(self, patient: tuple[str, ...]) -> list[Dose]:
        return self._doses.get(patient, [])

    def record(self, patient: tuple[str, ...], doses: list[Dose]) -> None:
        if doses:
            self._doses[patient].extend(doses)
