"""Where the compiled validator reports otherwise than pyx12, on purpose: each difference with the
implementation guide's text that says why ours is right. tests/test_guide_differential.py reads
this table (a difference between the two validators that no entry explains fails it), and the
README's section "The compiled validator" lists the same entries by name.

The loop state machine reproduces pyx12's walker and reader exactly, quirks included (see the
README): no entry is about the walk. The element checks' differences belong to segments.py (its
DIFFERENCES); an entry here is what the validator as a whole reports differently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Finding = tuple  # (segment, seg_id, element, code, level)


@dataclass(frozen=True)
class Difference:
    name: str  # as the README names it
    pyx12: str  # what pyx12 reports
    ours: str  # what we report
    guide: str  # the guide's text (or the X12 standard's) that says why
    # explains(pyx12_only, ours_only, common): True when this difference accounts for the first two
    # lists (`common`: what both reported)
    explains: Callable[[list[Finding], list[Finding], list[Finding]], bool]


def _date_range_with_extra_hyphen(pyx12_only: list[Finding], ours_only: list[Finding], _common: list[Finding]) -> bool:
    """pyx12 raises on the DTP (the driver reports the segment unreadable); we name DTP03 as an invalid date."""
    return (len(pyx12_only) == len(ours_only) == 1
            and pyx12_only[0][1] == ours_only[0][1] == "DTP" and pyx12_only[0][0] == ours_only[0][0]
            and pyx12_only[0][2:] == (None, "8", "seg") and ours_only[0][2:] == ("DTP03", "8", "ele"))


def _composite_with_extra_components(pyx12_only: list[Finding], ours_only: list[Finding],
                                     common: list[Finding]) -> bool:
    """pyx12 raises on the segment after placing it; its walker then searches from the loop before,
    so each segment after it, one after another, is "not found" (code 1). Both report the segment's
    error 8; we place the rest."""
    if ours_only or not pyx12_only or any(f[2:] != (None, "1", "seg") for f in pyx12_only):
        return False
    first = pyx12_only[0][0]
    run = [f[0] for f in pyx12_only]
    return (run == list(range(first, first + len(run)))
            and any(f[0] == first - 1 and f[2:] == (None, "8", "seg") for f in common))


def _hl_parent_cascade(pyx12_only: list[Finding], ours_only: list[Finding], common: list[Finding]) -> bool:
    """pyx12 empties its stack of open HL levels at an HL02 it does not know, so the later HLs of
    the set are "not a valid parent" too; we report that HL only. Both report the first one. (An
    HL the walk cannot place has its reader's errors reported on the next segment placed, as pyx12
    does: the finding's segment id is that segment's.)"""
    if ours_only or not pyx12_only or any(f[2:] != _HL_PARENT for f in pyx12_only):
        return False
    first = min(f[0] for f in pyx12_only)
    return any(f[2:] == _HL_PARENT and f[0] <= first for f in common)  # (<=: both may wait for one segment)


_HL_PARENT = (None, "HL2", "seg")  # (element, code, level) of "HL parent (N) is not a valid parent"


DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        name="A date range with more than one hyphen",
        pyx12="raises ValueError in its date check; the pyx12 validator reports the DTP unreadable (IK304 8)",
        ours="IK4 8 (invalid date) on DTP03, the element that is wrong",
        guide="Data element 1250, code RD8: \"Range of Dates Expressed in Format CCYYMMDD-CCYYMMDD\"",
        explains=_date_range_with_extra_hyphen,
    ),
    Difference(
        name="A composite with more components than its definition",
        pyx12=("raises IndexError after placing the segment; the walk goes on from the loop before, so every "
               "later segment of the claim is reported not found (IK304 1)"),
        ours="segment error 8 on that segment only; the segments after it are placed as usual",
        guide=("X12.6 (Application Control Structure), composite data structure: a composite holds only the "
               "component data elements its definition lists; the 999 reports more as IK403 13 "
               "(too many components)"),
        explains=_composite_with_extra_components,
    ),
    Difference(
        name="An HL02 that names no open level",
        pyx12=("reports the HL (HL parent is not a valid parent), then empties its stack of open levels, so every "
               "later HL of the transaction set is reported the same way and every later claim is rejected"),
        ours=("that HL only; the levels open above it stay open, and each later HL is checked against them (the "
              "claim model rejects the claims under the wrong HL: their place in the hierarchy is not known)"),
        guide=("HL02, Hierarchical Parent ID Number: \"Identification number of the next higher hierarchical data "
               "structure that the data being described is subordinate to\": each HL names its own parent, so a "
               "wrong HL02 says nothing of the next HL's"),
        explains=_hl_parent_cascade,
    ),
)


def explained(pyx12_only: list[Finding], ours_only: list[Finding], common: list[Finding]) -> Difference | None:
    """The listed difference that accounts for what only one validator reported, if any."""
    for difference in DIFFERENCES:
        if difference.explains(pyx12_only, ours_only, common):
            return difference
    return None
