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
    # explains(pyx12_only, ours_only): True when this difference accounts for both lists
    explains: Callable[[list[Finding], list[Finding]], bool]


DIFFERENCES: tuple[Difference, ...] = ()


def explained(pyx12_only: list[Finding], ours_only: list[Finding]) -> Difference | None:
    """The listed difference that accounts for what only one validator reported, if any."""
    for difference in DIFFERENCES:
        if difference.explains(pyx12_only, ours_only):
            return difference
    return None
