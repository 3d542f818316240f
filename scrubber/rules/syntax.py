"""S001-S003: the structural findings (implementation-guide errors from pyx12, bytes outside ASCII,
empty segments) made into findings of the claims they stand in the way of, like every other rule.

The pipeline finds the errors (pyx12 and the raw-input look in its first pass) and, as each claim
is read, calls `syntax_finding` for every error that reaches it, saying where the error sits
relative to the claim (`where`: "" in the claim's own loops, else which shared loop).
"""

from __future__ import annotations

import bisect

from ..model.claim import Claim
from ..x12.structural import TOO_MANY_ERRORS, StructuralError
from .findings import Finding
from .ruleset import RuleSet

RULES = ("S001", "S002", "S003")

# A claim's structural errors listed one by one; past this, one finding gives the count. A claim of
# 100,000 bad segments would otherwise carry 100,000 findings into every report (the 999, made from
# the errors themselves, still names each).
LISTED_ERRORS = 100


def syntax_findings(errors: list[tuple[StructuralError, str]], claim: Claim, rules: RuleSet) -> list[Finding]:
    """The findings the structural errors reaching `claim` make, each with where it sits."""
    found = [syntax_finding(error, where, claim, rules) for error, where in errors[:LISTED_ERRORS]]
    if len(errors) > LISTED_ERRORS:
        found.append(_more_errors(errors[LISTED_ERRORS], len(errors) - LISTED_ERRORS, rules))
    return found


def syntax_finding(error: StructuralError, where: str, claim: Claim, rules: RuleSet) -> Finding:
    """The finding an implementation-guide or raw-input error makes on `claim`."""
    if error.code == "S002":
        rule = rules.rule("S002")
        message = rule.format(byte=error.byte, offset=error.offset)
    elif error.code == "S003":
        rule = rules.rule("S003")
        message = rule.format(offset=error.offset)
    elif error.code == TOO_MANY_ERRORS:
        rule = rules.rule("S001")  # (it says which set: no loop to name)
        message = rule.format(where="", detail=shown(error.message))
    else:
        rule = rules.rule("S001")
        message = rule.format(where=where, detail=_detail(error))
    # S001-S003 are locked (ruleset._LOCKED): their catalog severity always holds.
    return Finding(rule=rule, severity=rule.severity, message=message, line=_line_at(claim, error.segment),
                   segment=error.segment, seg_id=shown(error.seg_id) or None, element=error.element, value=None)


def shown(text: str) -> str:
    """A segment id or value from the input, safe to put in a message: no line breaks or other
    control characters (they would start a new line, or drive a terminal), no edge spaces."""
    text = text.strip()
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _detail(error: StructuralError) -> str:
    detail = shown(error.message)
    seg_id = shown(error.seg_id)
    if seg_id and seg_id not in detail:
        detail = f"{seg_id}: {detail}"
    return detail


def _more_errors(first: tuple[StructuralError, str], count: int, rules: RuleSet) -> Finding:
    rule = rules.rule("S001")
    error, where = first
    # (The 999 cannot name them all: an IK3 names a segment only by an id in X12's code list, RFI
    # 1257, so a flood of unknown segments is one IK5 code there.)
    detail = (f"{count:,} more implementation-guide errors in this claim, from segment {error.segment} on "
              f"(the first {LISTED_ERRORS} are listed: fix them and scrub again for the rest; the 999 names "
              "each segment in error whose id X12 knows)")
    return Finding(rule=rule, severity=rule.severity, message=rule.format(where=where, detail=detail), line=None,
                   segment=error.segment, seg_id=shown(error.seg_id) or None, element=None, value=None)


def _line_at(claim: Claim, segment: int) -> int | None:
    """The number of the service line holding the segment at file index `segment`, if any."""
    lines = claim.lines
    if not lines or not claim.segments:
        return None
    position = segment - claim.segments[0].index + claim.first
    # Lines are in segment order: a bisection, so a claim with many lines and many errors stays linear.
    at = bisect.bisect_right(lines, position, key=lambda line: line.first) - 1
    if at < 0:
        return None
    line = lines[at]
    return line.line_number if position < (line.end or claim.end) else None
