"""Balancing (SNIP 3): the claim's total charge against its service lines."""

from __future__ import annotations

from decimal import Decimal

from ..model.claim import Claim
from .findings import Findings
from .ruleset import RuleSet

RULES = ("B001",)


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    total = claim.total_charge.decimal() if claim.total_charge else None
    charges = [line.charge.decimal() if line.charge else None for line in claim.lines]
    # An unreadable amount is an implementation-guide error already; balancing needs them all.
    if total is None or not charges or any(c is None for c in charges):
        return
    lines = sum(charges, Decimal(0))
    if total != lines:
        # Written with as many decimals as the line charges use: 10494.80, not 10494.8.
        places = max(-c.as_tuple().exponent for c in charges)  # type: ignore[operator, union-attr]
        fixed = f"{lines:.{max(places, 0)}f}"
        out.add("B001", claim.total_charge, fix=out.set_value(claim.total_charge, fixed),
                total=claim.total_charge.value, lines=fixed)
