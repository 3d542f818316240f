"""The implementation-guide versions the scrubber reads, and names for the ones it does not."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GuideVersion:
    kind: str  # "837P" or "837I"
    found: str  # GS08 as found
    read_as: str  # the guide we validate against (pyx12 has maps for these two)


# Later errata read as the guide pyx12 has a map for: the segments and loops the scrubber
# uses are the same in each.
_READ_AS = {
    "005010X222A1": ("837P", "005010X222A1"),
    "005010X222A2": ("837P", "005010X222A1"),
    "005010X223A1": ("837I", "005010X223A2"),
    "005010X223A2": ("837I", "005010X223A2"),
    "005010X223A3": ("837I", "005010X223A2"),
}

SUPPORTED = "837P 005010X222A1 (or X222A2) and 837I 005010X223A2 (or X223A1, X223A3)"

# Only to name what a refused file is.
_KNOWN_OTHERS = {
    "005010X224A2": "837D (dental) 5010",
    "005010X224A3": "837D (dental) 5010",
    "005010X222": "837P 5010 without the A1 errata",
    "005010X223": "837I 5010 without the errata",
    "004010X098A1": "837P 4010",
    "004010X096A1": "837I 4010",
    "004010X097A1": "837D 4010",
    "005010X221A1": "835 (payment/remittance) 5010",
    "005010X231A1": "999 (acknowledgment) 5010",
    "005010X214": "277CA (claim acknowledgment) 5010",
}

_FUNCTIONAL_GROUPS = {
    "HC": "health care claims (837)",
    "HP": "claim payments (835)",
    "FA": "functional acknowledgments (997/999)",
    "HN": "claim status notifications (277)",
    "BE": "benefit enrollment (834)",
}


def guide_version(gs08: str) -> GuideVersion | None:
    found = _READ_AS.get(gs08)
    if found is None:
        return None
    return GuideVersion(kind=found[0], found=gs08, read_as=found[1])


def describe_version(gs08: str) -> str:
    name = _KNOWN_OTHERS.get(gs08)
    return f"{gs08} ({name})" if name else repr(gs08)


def describe_group(gs01: str) -> str:
    name = _FUNCTIONAL_GROUPS.get(gs01)
    return f"{gs01} ({name})" if name else repr(gs01)
