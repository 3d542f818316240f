"""HL loops that end holding no claim, as a transaction set's report gives them.

A subscriber loop whose CLM, and everything after it, is missing from the input (an export that
dropped the claim, a hand edit) holds no claim: no writer writes it, since a loop goes out only
above a claim, so it is in neither 837. The guide's errors in its segments are in the 999 all the
same. The report says which loops they are, where, and with which errors, so that the billing
office can look for the claim that belongs there.

Only a loop with no claim and no loop below it is named (TransactionReader.empty_loop): a loop
above it holds no claim either, but naming the innermost is enough to find the place, and such a
loop lives within one chunk of a set scrubbed in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model.build import HLNode
from ..rules.syntax import shown
from ..x12.structural import StructuralError

# Loops described in the set's report, and errors named per loop; the others are counted. A
# sender's file of a million empty loops must not make a report, or a memory, of a million.
SHOWN_LOOPS = 3
SHOWN_ERRORS = 3


def loop_name(node: HLNode) -> str:
    name = {"20": "billing provider", "22": "subscriber", "23": "patient"}.get(node.level, "HL")
    return f"{name} loop (HL {shown(node.number)})"


@dataclass
class LoopsWithoutClaims:
    """The loops of one transaction set (or of a chunk of it) that ended holding no claim: the
    first SHOWN_LOOPS described, every one counted. A set scrubbed in chunks adds its chunks' up,
    in input order (`extend`), to what one reader of the whole set finds."""

    described: list[str] = field(default_factory=list)
    count: int = 0
    segment: int = 0  # the first one's HL: its segment number and byte offset
    offset: int = 0

    def add(self, node: HLNode) -> None:
        """`node` ended with no claim in it and no loop below it (its errors are all handed to it)."""
        self.count += 1
        hl = node.segments[0]
        if self.count == 1:
            self.segment, self.offset = hl.index, hl.offset
        if len(self.described) < SHOWN_LOOPS:
            errors: list[StructuralError] = [error for error, _where in node.errors]  # type: ignore[misc]
            text = f"the {loop_name(node)} at segment {hl.index}"
            if errors:
                named = ", ".join(f"segment {e.segment} {shown(e.seg_id)}: {shown(e.message)}"
                                  for e in errors[:SHOWN_ERRORS])
                more = f" and {len(errors) - SHOWN_ERRORS} more" if len(errors) > SHOWN_ERRORS else ""
                text += f" (implementation-guide errors in it: {named}{more})"
            self.described.append(text)

    def extend(self, other: LoopsWithoutClaims) -> None:
        if not other.count:
            return
        if not self.count:
            self.segment, self.offset = other.segment, other.offset
        self.count += other.count
        self.described.extend(other.described[:SHOWN_LOOPS - len(self.described)])

    def as_error(self) -> dict[str, Any]:
        """The set's file-level entry (the report's `errors`). Not fixed: the claim that belongs
        there, if one does, is not in the input."""
        if self.count == 1:
            head = ("an HL loop holds no claim (no CLM in it or in a loop below it): it is in neither 837 "
                    "written, and if a claim belongs there, that claim is missing from the input: ")
        else:
            head = (f"{self.count} HL loops hold no claim (no CLM in them or in loops below them): they are in "
                    "neither 837 written, and if claims belong there, those claims are missing from the input: ")
        more = f" (and {self.count - len(self.described)} more)" if self.count > len(self.described) else ""
        return {"code": "loop.no_claims", "message": head + "; ".join(self.described) + more,
                "segment": self.segment, "offset": self.offset, "fixed": False}
