"""The structural error (an implementation-guide finding tied to its segment) and the codes both
validators share. Kept apart from ig.py, which drives pyx12: the default, compiled validator and
every output use these, and importing pyx12 for them cost every run about 30 ms.
"""

from __future__ import annotations

from dataclasses import dataclass

_MAP_FILES = {
    "005010X222A1": "837.5010.X222.A1.xml",
    "005010X223A2": "837Q3.I.5010.X223.A1.xml",
}

# IK3 codes for something missing: pyx12 notices it at the next segment it reads, but the
# gap is in the loop of the segment before.
_MISSING = {"3", "I6", "I7"}

# IK304 8 "segment has data element errors": what we report for a segment pyx12 raised on.
_UNREADABLE = "8"

# Envelope problems the envelope reader already handles: control numbers that do not match are
# fatal there, and counts are recomputed by the writer.
_HANDLED_ELSEWHERE = {("isa", "001"), ("isa", "021"), ("isa", "024"), ("isa", "023"),
                      ("gs", "3"), ("gs", "4"), ("gs", "5"),
                      ("st", "2"), ("st", "3"), ("st", "4")}


@dataclass(frozen=True, slots=True)
class StructuralError:
    """One implementation-guide error, tied to the segment it belongs to."""

    segment: int  # file index of the segment whose loop holds the problem
    seg_id: str  # the segment the error is about (for a missing segment, the missing one)
    element: str | None  # reference designator, e.g. "SV104" or "HI01-02"
    code: str  # pyx12's code (IK3 / IK4 / envelope code), or the rule id of a raw-input check
    level: str  # "isa", "gs", "st", "seg", "ele", or "raw" for the checks made before pyx12
    message: str
    offset: int | None = None  # byte offset, for raw-input problems
    byte: int | None = None  # the offending byte, for S002

    def __reduce__(self) -> tuple[type, tuple]:
        # Every error of a set is pickled into pass 1's log and read back in pass 2. The state
        # functions dataclasses gives a frozen slotted class call fields() for each object: a
        # set of 300,000 errors (a flood of unknown segments) spent 5 s there, against 1 s now.
        return (StructuralError, (self.segment, self.seg_id, self.element, self.code, self.level,
                                  self.message, self.offset, self.byte))


# The errors of one transaction set kept at most. A set's errors are held until its claims are
# judged (about 1 KB each along the way, with the segments the 999 names), and one byte of input
# can make one (an empty segment): without a bound, a file of 483 KB of them took 403 MB, and
# memory grew with the file. Past this many, the rest are only counted, and every claim of the set
# is rejected (pipeline.within_limit): a set's errors cost at most about 200 MB. The limit leaves
# room for what the scrubber still judges claim by claim: a claim of 100,000 service lines (issue
# 11) has 99,950 errors, one for each line past the guide's 50.
SET_ERROR_LIMIT = 200_000

# The code of the error that stands for those not kept (level "model": the 999 names the others).
TOO_MANY_ERRORS = "LIMIT"


class SetErrors(list):
    """A validator's errors of one transaction set: the first SET_ERROR_LIMIT kept, the rest only
    counted (`dropped`). Only an error costs the check: a clean segment appends nothing."""

    # No __init__ and no __slots__: a validator makes an empty one whenever its errors are taken,
    # and a Python __init__ made that 4x dearer (0.24 against 0.06 us), a segment's worth of work
    # for a caller that takes them after every segment (bench/run.py's compiled mode). `dropped`
    # is the class's 0 until an error is dropped.
    dropped = 0

    def append(self, error: StructuralError) -> None:
        if len(self) < SET_ERROR_LIMIT:
            super().append(error)
        else:
            self.dropped += 1

    def extend(self, errors: object) -> None:
        for error in errors:  # type: ignore[attr-defined]
            self.append(error)
