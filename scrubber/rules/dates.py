"""Dates of service against the calendar: not in the future, not after the claim was created."""

from __future__ import annotations

from ..model.claim import Claim, parse_date
from .findings import Findings
from .ruleset import RuleSet

RULES = ("S004", "S005")


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    today = out.context.today
    created = claim.transaction.creation_date
    created_on = parse_date(created.value) if created is not None else None
    periods = [(line, line.service_date) for line in claim.lines if line.service_date and line.service_date.start]
    if not periods and claim.statement_dates is not None and claim.statement_dates.start is not None:
        periods = [(None, claim.statement_dates)]  # an 837I without line dates: the statement period
    for line, period in periods:
        last = period.end or period.start
        if last > today:
            out.add("S004", period.field, line, date=last.isoformat(), today=today.isoformat())
        elif created_on is not None and last > created_on:
            out.add("S005", period.field, line, date=last.isoformat(), created=created_on.isoformat())
