"""Modifiers on service lines: JW/JZ for Medicare, route, effective dates, repeats, payer
requirements (KX, 340B) and the four-modifier limit."""

from __future__ import annotations

import datetime as dt

from ..model.claim import Claim, ServiceLine
from .findings import Findings
from .lines import DrugLine, day, is_hcpcs
from .ruleset import RuleSet

RULES = ("M001", "M002", "M003", "M004", "M005", "M006", "M007", "M008", "M009", "M010", "M011", "M012")

MAX_MODIFIERS = 4  # SV101-03..06 / SV202-03..06


def check(claim: Claim, rules: RuleSet, out: Findings) -> None:
    for line in claim.lines:
        if not is_hcpcs(line):
            continue
        codes = line.modifier_codes
        if line.procedure in out.policy.kx_required_codes and "KX" not in codes:
            out.add("M006", line.code, line, payer=out.policy.name, code=line.procedure)
        if not line.modifiers:
            continue
        _repeats(line, out)
        _fifth(line, out)
        if "JW" in codes and "JZ" in codes:
            out.add("M002", line.modifiers[codes.index("JZ")], line, code=line.procedure)
        if "GA" in codes and "GZ" in codes:
            out.add("M012", line.modifiers[codes.index("GZ")], line, code=line.procedure)
        date = claim.line_date(line)
        for modifier in line.modifiers:
            known = rules.modifiers.get(modifier.value)
            if known is None:
                continue
            if date is not None and not known.valid_on(date):
                instead = f"; report {known.replaced_by} instead" if known.replaced_by and known.valid_to \
                    and date > known.valid_to else ""
                out.add("M004", modifier, line, modifier=modifier.value, date=day(date), valid=known.dates,
                        instead=instead)
            if known.kind == "340b" and not out.policy.asks_340b(date):
                out.add("M007", modifier, line, modifier=modifier.value, code=line.procedure, payer=out.policy.name)
    _route(claim, rules, out)
    _discard_modifiers(claim, rules, out)
    _jw_jz_required(claim, rules, out)
    _340b_missing(claim, rules, out)


def _repeats(line: ServiceLine, out: Findings) -> None:
    seen: list[str] = []
    for modifier in line.modifiers:
        if modifier.value in seen:
            kept = list(dict.fromkeys(line.modifier_codes))
            d = out.delimiters
            parts = modifier.segment.text.split(d.element)[modifier.element].split(d.component)
            # Rebuild the composite: qualifier, code, the modifiers once each, then the rest.
            rebuilt = parts[:2] + kept + [""] * (4 - len(kept)) + parts[6:]
            while rebuilt and rebuilt[-1] == "":
                rebuilt.pop()
            value = d.component.join(rebuilt)
            fix = out.set_element(modifier.segment, modifier.element, value, shown=value)
            out.add("M005", modifier, line, fix=fix, modifier=modifier.value, code=line.procedure)
            return
        seen.append(modifier.value)


def _fifth(line: ServiceLine, out: Findings) -> None:
    """A fifth modifier has no element of its own: it lands in the description (SV101-07)."""
    extra = line.description
    if len(line.modifiers) == MAX_MODIFIERS and extra is not None and len(extra.value) == 2 \
            and extra.value.isalnum() and extra.value.isupper():
        out.add("M008", extra, line, code=line.procedure, modifiers=":".join([*line.modifier_codes, extra.value]))


def _route(claim: Claim, rules: RuleSet, out: Findings) -> None:
    for item in out.drug_lines:
        if not item.drug.route:
            continue  # no route on file for this drug: nothing to hold the modifier against
        for modifier in item.line.modifiers:
            known = rules.modifiers.get(modifier.value)
            if known and known.kind == "route" and known.route not in item.drug.route:
                out.add("M003", modifier, item.line, modifier=modifier.value, meaning=known.meaning.lower(),
                        code=item.line.procedure, routes="/".join(item.drug.route))


def _discard_modifiers(claim: Claim, rules: RuleSet, out: Findings) -> None:
    """JZ on one line and JW on another for the same drug and date contradict each other (M010);
    JW on a drug known not to come in single-dose containers is not payable (M011)."""
    items = out.drug_lines
    jz_days = {(i.drug.name, i.date) for i in items if "JZ" in i.line.modifier_codes and not i.is_discard}
    for item in items:
        if not item.is_discard:
            continue
        if (item.drug.name, item.date) in jz_days:
            out.add("M010", item.line.code, item.line, code=item.line.procedure, date=day(item.date))
        if item.drug.single_dose_known and not item.drug.single_dose:
            jw = item.line.modifiers[item.line.modifier_codes.index("JW")]
            out.add("M011", jw, item.line, code=item.line.procedure, drug=item.drug.name)


def _jw_jz_applies(claim: Claim, item: DrugLine, required_from: dt.date, bill_types: tuple[str, ...]) -> bool:
    """JW/JZ apply to separately payable single-dose drugs on the 837P, and on the 837I only on
    the bill types the payer names (outpatient 13x, 85x: not inpatient 11x or RHC/FQHC 71x, 77x)."""
    if not item.drug.single_dose or item.date is None or item.date < required_from:
        return False
    if item.code.packaged_on(item.date):
        return False
    if not claim.is_institutional:
        return True
    bill_type = claim.type_of_bill
    return bill_type is not None and bill_type[:2] in bill_types


def _jw_jz_required(claim: Claim, rules: RuleSet, out: Findings) -> None:
    required_from = out.policy.jw_jz_required_from
    if required_from is None:
        return
    bill_types = out.policy.jw_jz_bill_types
    items = [i for i in out.drug_lines if _jw_jz_applies(claim, i, required_from, bill_types)]
    # Per drug and date of service: a JW line on day 1 does not excuse day 2.
    discarded = {(item.drug.name, item.date) for item in items if item.is_discard}
    for item in items:
        codes = item.line.modifier_codes
        if "JW" in codes or "JZ" in codes or (item.drug.name, item.date) in discarded:
            continue
        out.add("M001", item.line.code, item.line, payer=out.policy.name, code=item.line.procedure,
                date=day(item.date))


def _340b_missing(claim: Claim, rules: RuleSet, out: Findings) -> None:
    """A 340B covered entity (a site setting: the claim cannot show how a drug was bought) reports
    TB on separately payable drug lines for payers that ask for it. A warning: the site setting
    says the entity is in the programme, not that this drug was bought under it."""
    if not rules.covered_entity_340b:
        return
    for item in out.drug_lines:
        if not out.policy.asks_340b(item.date) or item.code.packaged_on(item.date):
            continue
        if any(rules.modifiers.get(m) is not None and rules.modifiers[m].kind == "340b"
               for m in item.line.modifier_codes):
            continue
        out.add("M009", item.line.code, item.line, payer=out.policy.name, code=item.line.procedure,
                date=day(item.date))
