"""S001-S003: the structural findings (implementation-guide errors from pyx12, bytes outside ASCII,
empty segments) made into findings of the claims they stand in the way of, like every other rule.

The pipeline finds the errors (pyx12 and the raw-input look) and calls `syntax_finding` for each
claim an error belongs to.
"""

from __future__ import annotations

from ..model.build import TransactionLayout
from ..model.claim import Claim
from ..x12.ig import StructuralError
from .findings import Finding
from .ruleset import RuleSet

RULES = ("S001", "S002", "S003")


def syntax_finding(error: StructuralError, layout: TransactionLayout, position: int, claim: Claim,
                   rules: RuleSet) -> Finding:
    """The finding an implementation-guide or raw-input error makes on `claim`; `position` is the
    error's segment in the transaction set (outside it: the interchange or group header)."""
    if error.code == "S002":
        rule = rules.rule("S002")
        message = rule.format(byte=error.byte, offset=error.offset)
    elif error.code == "S003":
        rule = rules.rule("S003")
        message = rule.format(offset=error.offset)
    else:
        rule = rules.rule("S001")
        message = rule.format(where=_where(layout, position, claim), detail=_detail(error))
    line = next((c.line_number for c in claim.lines if c.first <= position < (c.end or claim.end)), None)
    # S001-S003 are locked (ruleset._LOCKED): their catalog severity always holds.
    return Finding(rule=rule, severity=rule.severity, message=message, line=line, segment=error.segment,
                   seg_id=error.seg_id or None, element=error.element, value=None)


def _where(layout: TransactionLayout, position: int, claim: Claim) -> str:
    inside = 0 <= position < len(layout.transaction.segments)
    if inside and layout.owner_at(position) is claim:
        return ""
    if inside:
        return f"in the {layout.loop_of(position)}, shared with other claims: "
    return "in the interchange or group header, shared by every claim in it: "


def _detail(error: StructuralError) -> str:
    detail = error.message
    if error.seg_id and error.seg_id not in detail:
        detail = f"{error.seg_id}: {detail}"
    return detail
