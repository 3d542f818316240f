"""Balancing (SNIP 3): the claim's total charge against its service lines."""

from __future__ import annotations

from decimal import Decimal

from ..model.claim import Claim
from .findings import Findings
from .ruleset import RuleSet

RULES = ("B001", "B002")


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    check_amount_limits(claim, out)
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


def check_amount_limits(claim: Claim, out: Findings) -> None:
    """A payer's largest dollar amount on a professional claim (Medicare: 99,999.99)."""
    limit = out.policy.max_professional_amount
    if limit is None or claim.is_institutional:
        return
    amounts = [(claim.total_charge, None)] + [(line.charge, line) for line in claim.lines]
    for amount, line in amounts:
        value = amount.decimal() if amount is not None else None
        if value is not None and value > limit:
            out.add("B002", amount, line, payer=out.policy.name, amount=amount.value, element=amount.ref,
                    limit=f"{limit:,}")
