"""The shape of a drug line: billed in units, one date of service, once, with what an unclassified
code needs, at a place of service where the drug is the biller's; and line dates on 837I
outpatient claims."""

from __future__ import annotations

from ..model.claim import Claim, ServiceLine
from .findings import Findings
from .lines import bills_a_drug, day, is_hcpcs
from .ruleset import RuleSet

RULES = ("U012", "U013", "U014", "C011", "C012", "S007")


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    seen: dict[tuple[object, ...], ServiceLine] = {}
    for line in claim.lines:
        if is_hcpcs(line) and line.procedure in rules.hcpcs.unclassified:
            _unclassified(line, out)
        if not bills_a_drug(line, rules):
            continue
        code = line.procedure or "the drug"
        if line.unit_basis is not None and line.unit_basis.value != "UN":
            out.add("U012", line.unit_basis, line, code=code, basis=line.unit_basis.value)
        span = line.service_date
        if span is not None and span.start is not None and span.end is not None and span.end > span.start:
            out.add("U013", span.field, line, code=code, start=day(span.start), end=day(span.end))
        key = (line.procedure, claim.line_date(line), line.units.value if line.units else None,
               tuple(sorted(line.modifier_codes)))
        if key in seen:
            out.add("U014", line.code or line.units, line, code=code, date=day(key[1]), units=key[2] or "",
                    first=seen[key].line_number or "?")
        else:
            seen[key] = line
    _place_of_service(claim, rules, out)
    _line_dates(claim, out)


def _unclassified(line: ServiceLine, out: Findings) -> None:
    """An unclassified code (J3490, J9999, C9399 ...) names no drug: the payer needs the drug's
    name (SV101-07 / SV202-07) and its NDC to price it."""
    missing = [what for what, present in (("a description (SV101-07 / SV202-07)", line.description),
                                          ("an NDC (loop 2410)", line.ndc)) if present is None]
    if missing:
        out.add("C011", line.code, line, code=line.procedure, missing=" and ".join(missing))


def _place_of_service(claim: Claim, rules: RuleSet, out: Findings) -> None:
    place = claim.place_of_service
    facility = rules.facility_places_of_service
    if place not in facility:
        return
    for line in claim.lines:
        if is_hcpcs(line) and bills_a_drug(line, rules):
            out.add("C012", claim.facility_code, line, code=line.procedure, place=place, name=facility[place])


def _line_dates(claim: Claim, out: Findings) -> None:
    bill_type = claim.type_of_bill
    if bill_type is None or bill_type[:2] not in out.policy.line_dates_bill_types:
        return
    for line in claim.lines:
        if line.service_date is None or line.service_date.start is None:
            at = line.procedure_segment
            out.add("S007", None, line, segment=at, seg_id=line.procedure_seg_id, code=line.procedure or "the line",
                    bill_type=bill_type, payer=out.policy.name)
