"""Checks across a patient's claims in the run: quantity over a window, cycle frequency."""

from __future__ import annotations

import bisect
import datetime as dt
from decimal import Decimal
from typing import ClassVar

from ..model.claim import Claim
from .findings import Findings
from .history import Dose
from .lines import DrugLine, day, drug_lines_of
from .ruleset import RuleSet

RULES = ("U008", "U009", "U015")


class _LastDoses:
    """The doses of the claim asked last: its checks across claims, then the history that records
    it, ask for the same claim in a row."""

    claim: ClassVar[Claim | None] = None
    rules: ClassVar[RuleSet | None] = None
    doses: ClassVar[list[Dose]] = []


def doses_of(claim: Claim, rules: RuleSet, items: list[DrugLine] | None = None) -> list[Dose]:
    """The doses of a claim that the run remembers (profiled drugs with a date and units), found
    once a claim (do not change the list); `items` are its profiled lines when the caller has them."""
    last = _LastDoses
    if last.claim is claim and last.rules is rules:
        return last.doses
    doses = []
    for item in items if items is not None else drug_lines_of(claim, rules):
        units = item.units
        if item.date is not None and units is not None and units > 0:
            modifiers = ":".join(sorted(item.line.modifier_codes))
            doses.append(Dose(item.drug.name, item.code.hcpcs, item.date, units, claim.id, modifiers))
    last.claim, last.rules, last.doses = claim, rules, doses
    return doses


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    mine = doses_of(claim, rules, out.drug_lines)
    if not mine:
        return
    before = out.context.history.doses(claim.patient_key)
    _quantity_limits(claim, rules, out, before, mine)
    _cycles(claim, rules, out, before, mine)
    _duplicates(claim, rules, out, before)


def _duplicates(claim: Claim, rules: RuleSet, out: Findings, before: list[Dose]) -> None:
    """The same drug line (code, date, units, modifiers) on an earlier claim of the run for the
    same patient: billed twice, most often a claim sent again."""
    if not before:
        return  # a patient's first claim in the run (most claims): nothing to be billed twice against
    earlier = {(d.code, d.date, d.units, d.modifiers): d.claim_id for d in before}
    for item in out.drug_lines:
        units = item.units
        if item.date is None or units is None:
            continue
        key = (item.code.hcpcs, item.date, units, ":".join(sorted(item.line.modifier_codes)))
        if key in earlier:
            out.add("U015", item.line.units, item.line, code=item.code.hcpcs, date=day(item.date),
                    units=f"{units.normalize():f}", other=earlier[key])


class _Window:
    """Doses of one code or drug sorted by date, to sum or count a window of days by bisection:
    a claim with many lines is checked in time linear in its lines, not quadratic."""

    def __init__(self, doses: list[Dose]) -> None:
        doses = sorted(doses, key=lambda d: d.date)
        self.doses = doses
        self.dates = [d.date for d in doses]
        self._totals: list[Decimal] | None = None  # running sums of units, made when first asked
        self.days = sorted(set(self.dates))

    @property
    def totals(self) -> list[Decimal]:
        # Only quantity limits sum units: cycles count days, and most windows are for cycles.
        if self._totals is None:
            totals = self._totals = [Decimal(0)]
            for dose in self.doses:
                totals.append(totals[-1] + dose.units)
        return self._totals

    def within(self, start: dt.date, end: dt.date) -> tuple[int, int]:
        return bisect.bisect_left(self.dates, start), bisect.bisect_right(self.dates, end)

    def units(self, start: dt.date, end: dt.date) -> Decimal:
        low, high = self.within(start, end)
        return self.totals[high] - self.totals[low]

    def day_count(self, start: dt.date, end: dt.date) -> int:
        return bisect.bisect_right(self.days, end) - bisect.bisect_left(self.days, start)


def _quantity_limits(claim: Claim, rules: RuleSet, out: Findings, before: list[Dose], mine: list[Dose]) -> None:
    limits = out.policy.quantity_limits
    if not limits:
        return  # most payers set none: no windows to build
    items = {id(i.line): i for i in out.drug_lines}
    codes = {i.code.hcpcs for i in items.values()}
    for limit in limits:
        if limit.code not in codes:
            continue  # no line of the claim bills the code: nothing to hold against the limit
        earlier = _Window([d for d in before if d.code == limit.code])
        together = _Window([d for d in before + mine if d.code == limit.code])
        for item in items.values():
            if item.code.hcpcs != limit.code or item.date is None:
                continue
            start = item.date - dt.timedelta(days=limit.days - 1)
            # Units of the code for this patient from the window's first day to this line's date,
            # on earlier claims and on this claim's lines.
            total = together.units(start, item.date)
            if total > limit.units:
                low, high = earlier.within(start, item.date)
                claims = sorted({d.claim_id for d in earlier.doses[low:high]})
                out.add("U008", item.line.units, item.line, payer=out.policy.name, code=limit.code,
                        total=f"{total.normalize():f}", limit=limit.units, days=limit.days,
                        start=start.isoformat(), end=item.date.isoformat(),
                        claims=", ".join(claims) if claims else "this claim alone")
                return  # one finding per limit and claim


def _cycles(claim: Claim, rules: RuleSet, out: Findings, before: list[Dose], mine: list[Dose]) -> None:
    doses_known = len(before) + len(mine)
    windows: dict[str, _Window | None] = {}
    for item in out.drug_lines:
        drug = item.drug
        if drug.cycle_days is None or drug.administration_days_per_cycle is None or item.date is None:
            continue
        if item.is_discard:
            continue  # a discard line is not another administration
        if doses_known <= drug.administration_days_per_cycle:
            continue  # fewer doses than a cycle allows days (a patient's first claim, most often): no window
        if drug.name in windows:
            window = windows[drug.name]
        else:
            doses = [d for d in before + mine if d.drug == drug.name]
            # A cycle cannot hold more administration days than the doses have dates: most claims
            # (a patient's first in the run, one date) are settled here, with no window to sort.
            enough = len({d.date for d in doses}) > drug.administration_days_per_cycle
            window = windows[drug.name] = _Window(doses) if enough else None
        if window is None:
            continue
        start = item.date - dt.timedelta(days=drug.cycle_days - 1)
        count = window.day_count(start, item.date)
        if count > drug.administration_days_per_cycle:
            out.add("U009", item.line.code, item.line, drug=drug.name, count=count, cycle=drug.cycle_days,
                    allowed=drug.administration_days_per_cycle, start=start.isoformat(), end=day(item.date))
            return
