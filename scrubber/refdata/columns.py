"""What the store keeps of each kind of CMS file, and the flags of a crosswalk row: the names the
lookups need, apart from the readers of CMS's files (sources.py), so that a lookup loads neither."""

from __future__ import annotations

import csv
from decimal import Decimal, InvalidOperation

# The kinds of file, with what they are called in messages and listings.
KINDS = {
    "asp_crosswalk": "ASP NDC-HCPCS crosswalk",
    "asp_pricing": "ASP pricing",
    "hcpcs": "HCPCS file",
    "opps_addendum_b": "OPPS Addendum B",
    "mue": "MUE table",
}
SETTINGS = {"practitioner": "practitioner services", "outpatient_hospital": "outpatient hospital services"}

# What the store keeps of each kind: only what the checks need. Addendum B keeps no descriptor at
# all (its CPT descriptors are the AMA's) and only HCPCS Level II rows.
COLUMNS = {
    "asp_crosswalk": ("hcpcs", "ndc", "labeler", "drug_name", "dosage", "pkg_size", "pkg_qty", "billunits",
                      "billunitspkg", "flags"),
    "asp_pricing": ("hcpcs", "short_description", "dosage", "payment_limit"),
    "hcpcs": ("code", "short_description", "long_description", "added", "action_effective", "terminated",
              "action"),
    "opps_addendum_b": ("hcpcs", "status_indicator", "apc", "payment_rate", "pass_through_expires"),
    "mue": ("code", "mue", "mai", "rationale"),
}

# A whole item of a drug holding a tenth of a billing unit or less is not what CMS meant
# (Zemaira's 1,000 mg vial as 0.1 units of "10 mg"): flagged, never used to drive an error.
IMPLAUSIBLE_BILLUNITS = Decimal("0.1")

# The flags that make a row inconsistent (`scrubber data check`); "not-an-ndc" only says the row
# cannot be matched by NDC (CMS lists some products by a catalogue number or UPC).
INCONSISTENT = ("arithmetic", "implausible", "unreadable")
FLAG_TEXT = {
    "not-an-ndc": "NDC2 is not an NDC in 5-4-2 form",
    "unreadable": "BILLUNITS, PKG QTY or BILLUNITSPKG is not a positive number",
    "arithmetic": "BILLUNITS x PKG QTY differs from BILLUNITSPKG by more than CMS's rounding to whole units",
    "implausible": f"BILLUNITS of {IMPLAUSIBLE_BILLUNITS} or less for a whole item",
}


def to_decimal(value: str) -> Decimal | None:
    """A number as CMS prints it ("1,000", "$52.474"), or None when it is none ("N/A")."""
    try:
        number = Decimal(value.replace(",", "").replace("$", "").strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def ndc_of_line(line: str) -> str:
    """The NDC cell of a crosswalk table line (the second), as CMS prints it."""
    rest = line.split(",", 1)[1]
    return next(csv.reader([rest]))[0] if rest.startswith('"') else rest.split(",", 1)[0]


def ndc11(text: str) -> str | None:
    """An NDC as 11 digits (5-4-2), from 11 digits or a hyphenated 10- or 11-digit form."""
    text = text.strip()
    if len(text) == 13 and text[5] == "-" and text[10] == "-":  # CMS's 5-4-2, the common case: fast
        digits = text[:5] + text[6:10] + text[11:]
        return digits if digits.isdigit() else None
    if len(text) == 11 and text.isdigit():
        return text
    parts = text.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        lengths = tuple(len(p) for p in parts)
        if lengths in ((5, 4, 2), (4, 4, 2), (5, 3, 2), (5, 4, 1)):
            return parts[0].zfill(5) + parts[1].zfill(4) + parts[2].zfill(2)
    return None
