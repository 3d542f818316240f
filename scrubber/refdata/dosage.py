"""A HCPCS code's billing unit, read from CMS's dosage text ("10 MG", "0.1 MG", "1 MICROGRAM")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

# CMS spells one unit many ways across its files ("MG", "1MG", "gm", "CC", "MICROGRAM", "IU").
_UNITS = {
    "MG": "mg", "MILLIGRAM": "mg", "MILLIGRAMS": "mg",
    "MCG": "mcg", "MICROGRAM": "mcg", "MICROGRAMS": "mcg",
    "G": "g", "GM": "g", "GRAM": "g", "GRAMS": "g",
    "UNIT": "units", "UNITS": "units", "IU": "units",
    "ML": "mL", "CC": "mL",
    "MEQ": "mEq",
    "MCI": "mCi", "MILLICURIE": "mCi", "MILLICURIES": "mCi",  # radiopharmaceuticals (A9xxx)
    "UCI": "uCi", "MICROCURIE": "uCi", "MICROCURIES": "uCi",
}
_DOSAGE = re.compile(r"^(?P<up_to>UP TO\s+)?(?P<amount>\d*\.?\d+)\s*(?P<unit>[A-Z]+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Dosage:
    """One billing unit of a code: `amount` of `unit`; `up_to` for CMS's "UP TO 80 MG" (one unit
    covers any dose up to the amount, so a dose does not divide into units)."""

    amount: Decimal
    unit: str  # mg, mcg, g, units, mL, mEq, mCi, uCi
    up_to: bool = False

    def __str__(self) -> str:
        text = f"{self.amount.normalize():f} {self.unit}"
        return f"up to {text}" if self.up_to else text


def parse_dosage(text: str | None) -> Dosage | None:
    """The billing unit a dosage text names, or None when it names no single amount and unit
    (combinations such as "10 MG/3MG", ranges, "Per 3.2 MG single-use applicator")."""
    if not text:
        return None
    match = _DOSAGE.match(" ".join(text.split()))
    if match is None:
        return None
    unit = _UNITS.get(match["unit"].upper())
    try:
        amount = Decimal(match["amount"])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal numbers
        return None
    if unit is None or amount <= 0:
        return None
    return Dosage(amount, unit, up_to=bool(match["up_to"]))
